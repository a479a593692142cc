//! Kernel cotangent of a stride-1 k×k "same" convolution, NHWC input x [B,H,W,C], output cotangent
//! g [B,H,W,O], as GEMMs over the zero-padded grid: with xp = x padded to [B,Hp,Wp,C] (plus k·Wp rows of
//! slack) and gp = g placed in the same padded grid, row r of the flattened grids is one output position,
//! and the input row that tap (i, j) reads for it is r + i·Wp + j. So for each kernel row i the taps
//! j = 0..k form one matrix with k·C columns whose rows start C apart: dK_i[o, (j, c)] = Σ_r gp[r, o] ·
//! xp[r + i·Wp, j·C + c], one GEMM with m = O, n = k·C, and the whole padded grid as the contraction.
//! Positions in the padding carry zero cotangent, so they add nothing. Threads split the contraction.
//!   cargo run --release -- B C O HW K THREADS
use std::time::Instant;

fn kgrad(xp: &[f32], gp: &[f32], npad: usize, wp: usize, c: usize, o: usize, k: usize, threads: usize) -> Vec<f32> {
    let chunk = npad.div_ceil(threads);
    let mut parts = vec![vec![0f32; k * o * k * c]; threads];
    std::thread::scope(|s| {
        for (t, part) in parts.iter_mut().enumerate() {
            let (r0, r1) = (t * chunk, ((t + 1) * chunk).min(npad));
            s.spawn(move || {
                for i in 0..k {
                    // SAFETY: every index stays inside xp (npad + slack rows), gp (npad rows) and part.
                    unsafe {
                        gemm::gemm(
                            o, k * c, r1 - r0,
                            part.as_mut_ptr().add(i * o * k * c), 1, (k * c) as isize, false,
                            gp.as_ptr().add(r0 * o), o as isize, 1,
                            xp.as_ptr().add((r0 + i * wp) * c), 1, c as isize,
                            0.0, 1.0, false, false, false, gemm::Parallelism::None,
                        );
                    }
                }
            });
        }
    });
    let mut out = vec![0f32; k * o * k * c];
    for p in &parts {
        out.iter_mut().zip(p).for_each(|(a, b)| *a += b);
    }
    out
}

fn main() {
    let a: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("B C O HW K THREADS")).collect();
    let (b, c, o, hw, k, threads) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let wp = hw + k - 1;
    let npad = b * wp * wp;
    let xp: Vec<f32> = (0..(npad + k * wp) * c).map(|i| ((i * 7919) % 1000) as f32 * 1e-3).collect();
    let gp: Vec<f32> = (0..npad * o).map(|i| ((i * 104729) % 1000) as f32 * 1e-3).collect();
    let flops = 2.0 * (b * hw * hw * c * o * k * k) as f64;
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        std::hint::black_box(kgrad(&xp, &gp, npad, wp, c, o, k, threads));
        times.push(t.elapsed().as_secs_f64());
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!("kgrad gemm B={b} C={c} O={o} HW={hw} k={k} threads={threads}: median {:.2} ms, {:.1} GFLOP/s of useful work",
             med * 1e3, flops / med / 1e9);
}
