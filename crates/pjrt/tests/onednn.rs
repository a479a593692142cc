//! netspec's oneDNN kernels (`pjrt::onednn`, the handlers' computation) against plain loops on the
//! host, without XLA: the convolution's three passes over strides, asymmetric padding and non-square
//! kernels; the matrix product's four transpositions split into row tiles; the argument checks.
//! Fails (never skips) when oneDNN is not installed.

use pjrt::onednn::{conv, init, matmul, Geometry};

fn need_onednn() {
    if let Err(e) = init() {
        panic!("oneDNN is unavailable ({e}): run scripts/setup.sh onednn and rebuild");
    }
}

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// y[n, p, q, o] = Σ x[n, p·sh + i − pt, q·sw + j − pl, c] · w[i, j, c, o] (zero outside), and the
/// two cotangents of ⟨y, dy⟩, in f64.
struct Host {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
}

fn host(g: &Geometry, x: &[f32], w: &[f32], dy: &[f32]) -> Host {
    let [n, h, wd, c, o, kh, kw, sh, sw, pt, pb, pl, pr] = g.map(|v| v as usize);
    let (oh, ow) = ((h + pt + pb - kh) / sh + 1, (wd + pl + pr - kw) / sw + 1);
    let xi = |b: usize, r: usize, s: usize, ch: usize| ((b * h + r) * wd + s) * c + ch;
    let wi = |i: usize, j: usize, ch: usize, k: usize| ((i * kw + j) * c + ch) * o + k;
    let yi = |b: usize, p: usize, q: usize, k: usize| ((b * oh + p) * ow + q) * o + k;
    let mut out = Host {
        y: vec![0.0; n * oh * ow * o],
        dx: vec![0.0; x.len()],
        dw: vec![0.0; w.len()],
    };
    for b in 0..n {
        for p in 0..oh {
            for q in 0..ow {
                for i in 0..kh {
                    for j in 0..kw {
                        let (r, s) = (
                            (p * sh + i) as isize - pt as isize,
                            (q * sw + j) as isize - pl as isize,
                        );
                        if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                            continue;
                        }
                        let (r, s) = (r as usize, s as usize);
                        for ch in 0..c {
                            for k in 0..o {
                                let (xv, wv, dv) = (
                                    x[xi(b, r, s, ch)] as f64,
                                    w[wi(i, j, ch, k)] as f64,
                                    dy[yi(b, p, q, k)] as f64,
                                );
                                out.y[yi(b, p, q, k)] += xv * wv;
                                out.dx[xi(b, r, s, ch)] += dv * wv;
                                out.dw[wi(i, j, ch, k)] += xv * dv;
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

fn close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs() / scale;
        assert!(
            err <= 1e-5,
            "{what}[{i}]: got {g}, want {w} ({err:.1e} of the scale {scale:e})"
        );
    }
}

#[test]
fn kernels_equal_host_loops() {
    need_onednn();
    // n h w c o kh kw sh sw pt pb pl pr
    let cases: [Geometry; 6] = [
        [2, 6, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1],
        [2, 7, 5, 4, 6, 3, 3, 2, 2, 1, 1, 1, 1],
        [1, 8, 8, 5, 3, 5, 3, 1, 2, 2, 2, 1, 1],
        [3, 6, 7, 2, 5, 3, 3, 1, 1, 0, 2, 2, 0],
        [2, 9, 9, 16, 8, 3, 3, 2, 2, 1, 1, 1, 1],
        [2, 5, 5, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0],
    ];
    for g in cases {
        let [n, h, wd, c, o, kh, kw, sh, sw, pt, pb, pl, pr] = g.map(|v| v as usize);
        let (oh, ow) = ((h + pt + pb - kh) / sh + 1, (wd + pl + pr - kw) / sw + 1);
        let x = noise(n * h * wd * c, 1);
        let w = noise(kh * kw * c * o, 2);
        let dy = noise(n * oh * ow * o, 3);
        let want = host(&g, &x, &w, &dy);
        let mut y = vec![0f32; dy.len()];
        conv(0, &g, &x, &w, &mut y).unwrap();
        close(&format!("{g:?} forward"), &y, &want.y);
        let mut dx = vec![0f32; x.len()];
        conv(1, &g, &dy, &w, &mut dx).unwrap();
        close(&format!("{g:?} input cotangent"), &dx, &want.dx);
        let mut dw = vec![0f32; w.len()];
        conv(2, &g, &x, &dy, &mut dw).unwrap();
        close(&format!("{g:?} kernel cotangent"), &dw, &want.dw);
    }
}

#[test]
fn bad_arguments_are_errors() {
    need_onednn();
    let g: Geometry = [1, 4, 4, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1];
    let (x, w, mut y) = (vec![0f32; 32], vec![0f32; 54], vec![0f32; 48]);
    let e = conv(0, &g, &x, &w, &mut y[..47]).unwrap_err();
    assert!(e.contains("do not match geometry"), "{e}");
    let e = conv(7, &g, &x, &w, &mut y).unwrap_err();
    assert!(e.contains("unknown convolution pass 7"), "{e}");
    let mut bad = g;
    bad[7] = 0; // stride 0
    let e = conv(0, &bad, &x, &w, &mut y).unwrap_err();
    assert!(!e.is_empty());
    conv(0, &g, &x, &w, &mut y).unwrap();
}

#[test]
fn matmul_tiles_equal_host_loops() {
    need_onednn();
    // (m, k, n): rows that no tile count divides, a row count below one 16-row block, mnist-mlp's
    // largest weight-gradient product, a 10-column classifier head.
    for (m, k, n) in [
        (37, 5, 3),
        (7, 9, 11),
        (784, 128, 512),
        (128, 512, 10),
        (64, 1, 33),
    ] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let a = noise(m * k, 4);
            let b = noise(k * n, 5);
            // op(a)[i, l] and op(b)[l, j] read from the stored (possibly transposed) layouts.
            let av = |i: usize, l: usize| f64::from(if ta { a[l * m + i] } else { a[i * k + l] });
            let bv = |l: usize, j: usize| f64::from(if tb { b[j * k + l] } else { b[l * n + j] });
            let want: Vec<f64> = (0..m * n)
                .map(|ij| (0..k).map(|l| av(ij / n, l) * bv(l, ij % n)).sum())
                .collect();
            for tiles in [1, 2, 3, 64] {
                let mut c = vec![f32::NAN; m * n];
                matmul(ta, tb, (m, k, n), &a, &b, &mut c, tiles).unwrap();
                close(
                    &format!("{m}x{k}x{n} trans ({ta}, {tb}), {tiles} tiles"),
                    &c,
                    &want,
                );
            }
        }
    }
    let (a, b, mut c) = (vec![0f32; 6], vec![0f32; 6], vec![0f32; 4]);
    let e = matmul(false, false, (2, 3, 2), &a, &b, &mut c[..3], 1).unwrap_err();
    assert!(e.contains("do not match"), "{e}");
    let e = matmul(false, false, (2, 3, 2), &a, &b, &mut c, 0).unwrap_err();
    assert!(e.contains("no tiles"), "{e}");
}

#[test]
fn adam_tiles_equal_one_pass() {
    // The Adam kernel split into element ranges gives the same bits as one range, and updates in
    // place: w' = w − lr·(m'·r1/(√(v'·r2)+ε) + λw) with the moments' recurrences (checked in f64 to
    // a few roundings; the graph-level test compares it with XLA's fusions of the definition).
    let n = 1000;
    let (w0, m0, g) = (noise(n, 7), noise(n, 8), noise(n, 9));
    let v0: Vec<f32> = m0.iter().map(|x| x * x).collect();
    let k = [0.9f32, 0.999, 1e-8, 0.01, 1e-3, 1.0 / 0.19, 1.0 / 0.002];
    let run = |tiles| {
        let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
        pjrt::onednn::adam(&mut w, &mut m, &mut v, &g, k, tiles).unwrap();
        (w, m, v)
    };
    let one = run(1);
    for tiles in [2, 3, 7, 1000, 5000] {
        assert_eq!(run(tiles), one, "{tiles} tiles");
    }
    for i in 0..n {
        let (b1, b2) = (0.9f32 as f64, 0.999f32 as f64);
        let (w, m, v, g) = (w0[i] as f64, m0[i] as f64, v0[i] as f64, g[i] as f64);
        let mn = b1 * m + (1.0 - b1) * g;
        let vn = b2 * v + (1.0 - b2) * g * g;
        let wn = w - 1e-3 * ((mn / 0.19) / ((vn / 0.002).sqrt() + 1e-8) + 0.01 * w);
        for (what, got, want, scale) in [
            ("m", one.1[i], mn, m.abs() + g.abs()),
            ("v", one.2[i], vn, vn),
            (
                "w",
                one.0[i],
                wn,
                w.abs() + 1e-3 * (mn / 0.19).abs() / (vn / 0.002).sqrt(),
            ),
        ] {
            assert!(
                (got as f64 - want).abs() <= 1e-6 * scale,
                "{what}[{i}]: {got} vs {want}"
            );
        }
    }
    let (mut w, mut m, mut v) = (vec![0f32; 3], vec![0f32; 3], vec![0f32; 2]);
    let e = pjrt::onednn::adam(&mut w, &mut m, &mut v, &[0.0; 3], k, 1).unwrap_err();
    assert!(e.contains("differ"), "{e}");
}

#[test]
fn adam_product_tiles_equal_the_stored_gradient() {
    // An Adam update whose gradient is a product (`op(a)·op(b)`, computed a tile of rows at a time and
    // never stored) equals the product stored first and the plain update after, for tiles of every
    // row count, both transpositions of each factor and a row count no tile size divides. The
    // factors are multiples of 1/16 with small numerators, so every product and partial sum is exact
    // in f32 and the gradient is the same whatever the summation order.
    need_onednn();
    let (rm, rk, rn) = (37usize, 24usize, 29usize);
    let steps = |n: usize, seed: u64| -> Vec<f32> {
        noise(n, seed)
            .iter()
            .map(|x| (x * 40.0).round() / 16.0)
            .collect()
    };
    let (op_a, op_b) = (steps(rm * rk, 11), steps(rk * rn, 12)); // [m, k], [k, n]
    let n = rm * rn;
    let (w0, m0) = (noise(n, 13), noise(n, 14));
    let v0: Vec<f32> = m0.iter().map(|x| x * x).collect();
    let k = [0.9f32, 0.999, 1e-8, 0.01, 1e-3, 1.0 / 0.19, 1.0 / 0.002];
    let mut g = vec![0f32; n];
    for i in 0..rm {
        for j in 0..rn {
            g[i * rn + j] = (0..rk).map(|l| op_a[i * rk + l] * op_b[l * rn + j]).sum();
        }
    }
    let (mut w1, mut m1, mut v1) = (w0.clone(), m0.clone(), v0.clone());
    pjrt::onednn::adam(&mut w1, &mut m1, &mut v1, &g, k, 1).unwrap();
    let transpose = |x: &[f32], r: usize, c: usize| -> Vec<f32> {
        (0..r * c).map(|i| x[(i % r) * c + i / r]).collect()
    };
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta {
            transpose(&op_a, rm, rk)
        } else {
            op_a.clone()
        };
        let b = if tb {
            transpose(&op_b, rk, rn)
        } else {
            op_b.clone()
        };
        for rows in [1, 5, 16, 36, 37, 100] {
            let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
            pjrt::onednn::adam_product(
                (ta, tb),
                (rm, rk, rn),
                &a,
                &b,
                [&mut w, &mut m, &mut v],
                k,
                rows,
            )
            .unwrap();
            let what = format!("transposed {ta} {tb}, {rows} rows per tile");
            assert_eq!(w, w1, "{what}: parameter");
            assert_eq!(m, m1, "{what}: first moment");
            assert_eq!(v, v1, "{what}: second moment");
        }
    }
    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), vec![0f32; n - 1]);
    let e = pjrt::onednn::adam_product(
        (false, false),
        (rm, rk, rn),
        &op_a,
        &op_b,
        [&mut w, &mut m, &mut v],
        k,
        8,
    )
    .unwrap_err();
    assert!(e.contains("do not match"), "{e}");
}
