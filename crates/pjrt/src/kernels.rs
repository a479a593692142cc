//! Kernels netspec's custom-call handlers run themselves (the products and convolutions are oneDNN's,
//! `onednn.rs`): plain loops that the compiler vectorises, built once per instruction set and chosen at
//! run time (AVX-512, AVX2, the baseline), since the release build targets the baseline x86-64.

/// One Adam update of a span, in place: `graph::AdamCall`'s expansion operation by operation in f32,
/// so that the results equal XLA's fusions of it. `k` = `[β₁, β₂, ε, λ, lr, r1, r2]`; the `1 − β`
/// factors are rounded from f64 as the expansion's constants are.
pub fn adam(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 7]) {
    let _flush = FlushDenormals::new();
    #[cfg(target_arch = "x86_64")]
    {
        let cap = max_isa();
        if cap >= 2 && std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function was built for.
            return unsafe { adam_avx512(w, m, v, g, k) };
        }
        if cap >= 1 && std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { adam_avx2(w, m, v, g, k) };
        }
    }
    adam_span(w, m, v, g, k)
}

/// The widest instruction set the kernels may use: 2 = AVX-512, 1 = AVX2, 0 = the baseline; capped by
/// `NETSPEC_MAX_ISA=avx2|baseline` (benchmarks that emulate an older CPU, as `ONEDNN_MAX_CPU_ISA` does
/// for oneDNN).
#[cfg(target_arch = "x86_64")]
fn max_isa() -> u8 {
    static CAP: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *CAP.get_or_init(|| match std::env::var("NETSPEC_MAX_ISA").as_deref() {
        Ok("avx2") => 1,
        Ok("baseline") => 0,
        _ => 2,
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adam_avx512(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 7]) {
    adam_span(w, m, v, g, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn adam_avx2(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 7]) {
    adam_span(w, m, v, g, k)
}

#[inline(always)]
fn adam_span(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 7]) {
    let [b1, b2, eps, decay, lr, r1, r2] = k;
    let ob1 = (1.0 - b1 as f64) as f32;
    let ob2 = (1.0 - b2 as f64) as f32;
    let n = w.len().min(m.len()).min(v.len()).min(g.len());
    let (w, m, v, g) = (&mut w[..n], &mut m[..n], &mut v[..n], &g[..n]);
    if decay != 0.0 {
        for i in 0..n {
            let mi = m[i] * b1 + g[i] * ob1;
            let vi = v[i] * b2 + (g[i] * g[i]) * ob2;
            let u = (mi * r1) / ((vi * r2).sqrt() + eps) + w[i] * decay;
            m[i] = mi;
            v[i] = vi;
            w[i] -= lr * u;
        }
    } else {
        for i in 0..n {
            let mi = m[i] * b1 + g[i] * ob1;
            let vi = v[i] * b2 + (g[i] * g[i]) * ob2;
            let u = (mi * r1) / ((vi * r2).sqrt() + eps);
            m[i] = mi;
            v[i] = vi;
            w[i] -= lr * u;
        }
    }
}

/// Denormal inputs read as zero and denormal results flush to zero while it lives (x86 MXCSR DAZ and
/// FTZ), as in XLA's own kernels: the moments of a converged parameter decay into the denormal range,
/// where the hardware is some hundred times slower.
struct FlushDenormals(#[allow(dead_code)] u32);

impl FlushDenormals {
    #[allow(deprecated)] // the MXCSR intrinsics: no replacement in `core::arch` yet
    fn new() -> FlushDenormals {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            // SAFETY: SSE is baseline on x86-64; only the DAZ (bit 6) and FTZ (bit 15) bits change.
            unsafe {
                let old = _mm_getcsr();
                _mm_setcsr(old | (1 << 15) | (1 << 6));
                FlushDenormals(old)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals(0)
    }
}

impl Drop for FlushDenormals {
    #[allow(deprecated)]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: restores the value read in `new`.
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.0)
        }
    }
}
