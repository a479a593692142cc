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
        let cap = isa();
        if cap >= 2 {
            // SAFETY: the CPU has the features the function was built for.
            return unsafe { adam_avx512(w, m, v, g, k) };
        }
        if cap >= 1 {
            // SAFETY: as above.
            return unsafe { adam_avx2(w, m, v, g, k) };
        }
    }
    adam_span(w, m, v, g, k)
}

/// The widest instruction set the kernels (netspec's and oneDNN's) use on this CPU: 2 = AVX-512 (F,
/// BW, VL, DQ: oneDNN's `avx512_core`), 1 = AVX2 with FMA, 0 = the baseline. Capped by
/// `NETSPEC_MAX_ISA=avx2|baseline` and by oneDNN's own `ONEDNN_MAX_CPU_ISA` (benchmarks that hold an
/// AVX-512 CPU to an older instruction set).
pub(crate) fn isa() -> u8 {
    static ISA: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let cpu = if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
        {
            2
        } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            1
        } else {
            0
        };
        #[cfg(not(target_arch = "x86_64"))]
        let cpu = 0;
        capped(
            cpu,
            std::env::var("NETSPEC_MAX_ISA").ok().as_deref(),
            std::env::var("ONEDNN_MAX_CPU_ISA").ok().as_deref(),
        )
    })
}

/// The CPU's level `cpu` held to `NETSPEC_MAX_ISA` (`avx2`, `baseline`) and `ONEDNN_MAX_CPU_ISA`
/// (oneDNN's names: `AVX512_*`, `AVX10_*`, `ALL` and `DEFAULT` allow AVX-512, `AVX2*` AVX2, the rest
/// less).
fn capped(cpu: u8, ours: Option<&str>, onednn: Option<&str>) -> u8 {
    let ours = match ours {
        Some("avx2") => 1,
        Some("baseline") => 0,
        _ => 2,
    };
    let onednn = match onednn.map(str::to_ascii_uppercase) {
        None => 2,
        Some(v)
            if v.starts_with("AVX512")
                || v.starts_with("AVX10")
                || v == "ALL"
                || v == "DEFAULT" =>
        {
            2
        }
        Some(v) if v.starts_with("AVX2") => 1,
        Some(_) => 0,
    };
    cpu.min(ours).min(onednn)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn adam_avx512(w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 7]) {
    adam_span(w, m, v, g, k)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
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

#[cfg(test)]
mod tests {
    #[test]
    fn instruction_set_caps() {
        use super::capped;
        assert_eq!(capped(2, None, None), 2);
        assert_eq!(capped(1, None, None), 1);
        assert_eq!(capped(2, Some("avx2"), None), 1);
        assert_eq!(capped(2, Some("baseline"), None), 0);
        assert_eq!(capped(2, None, Some("AVX2")), 1);
        assert_eq!(capped(2, None, Some("avx2_vnni")), 1);
        assert_eq!(capped(2, None, Some("AVX512_CORE_AMX")), 2);
        assert_eq!(capped(1, None, Some("AVX512_CORE")), 1);
        assert_eq!(capped(2, None, Some("SSE41")), 0);
        assert_eq!(capped(2, Some("avx2"), Some("ALL")), 1);
    }
}
