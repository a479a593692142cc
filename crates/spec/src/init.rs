//! Deterministic initialisation, bit-identical on every platform.
//!
//! Each tensor gets its own random stream, so a tensor's values depend only on the seed and the
//! tensor's name (not on the other tensors):
//! * stream state = `seed XOR fnv1a64(name)` (FNV-1a, 64-bit, over the UTF-8 bytes of the name);
//! * generator = SplitMix64 ([`SplitMix64`]);
//! * uniforms in [−1, 1): `u = (next() >> 11) · 2⁻⁵³ · 2 − 1`;
//! * normals by Marsaglia's polar method: draw `u, v` until `0 < s = u² + v² < 1`, then
//!   `z₁ = u·√(−2·ln s / s)`, `z₂ = v·√(−2·ln s / s)` (both used, `z₁` first). The logarithm is
//!   computed here with +, −, ×, ÷ only ([`ln`]), because the platform's `ln` may differ in the last
//!   bit between systems; every other step is an exactly rounded IEEE operation.
//! * value = `(std · z) as f32`, computed in f64.
//!
//! Per [`Init`]: `HeNormal { fan_in }` → std √(2/fan_in); `Normal { std }` → std; `Zeros` → 0;
//! `Ones` → 1; `Constant { value }` → value. BN running mean/var (buffers) are `Zeros`/`Ones`.

use crate::analyze::{buffers, params, Init, ParamSpec};
use crate::ast::NetSpec;
use crate::error::SpecError;

/// SplitMix64 (Steele, Lea, Flood 2014): `state += 0x9E3779B97F4A7C15`, then the output mix.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [−1, 1) with 53 random bits.
    fn next_signed_unit(&mut self) -> f64 {
        let u = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        2.0 * u - 1.0
    }
}

/// A pair-generating standard normal sampler (Marsaglia polar method).
struct Normals {
    rng: SplitMix64,
    spare: Option<f64>,
}

impl Normals {
    fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = self.rng.next_signed_unit();
            let v = self.rng.next_signed_unit();
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

/// Natural logarithm for positive, normal `x`, from exactly rounded operations only:
/// `x = m·2ᵉ` with `m ∈ [√½, √2)`, `ln x = e·ln 2 + 2·atanh(t)`, `t = (m − 1)/(m + 1)`,
/// `|t| ≤ 0.1716`; the atanh series to `t²⁹` is accurate to ~1e-16 relative.
pub(crate) fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_normal());
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // Horner on t²: Σ_{n=0}^{14} t^{2n}/(2n+1), highest term first.
    let mut sum = 0.0;
    for n in (0..15).rev() {
        sum = sum * t2 + 1.0 / (2 * n + 1) as f64;
    }
    e as f64 * std::f64::consts::LN_2 + 2.0 * t * sum
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The initial values of one tensor (see the module doc for the exact procedure).
pub fn init_tensor(p: &ParamSpec, seed: u64) -> Vec<f32> {
    let n = p.numel();
    let normal = |std: f64| {
        let mut g = Normals {
            rng: SplitMix64::new(seed ^ fnv1a64(p.name.as_bytes())),
            spare: None,
        };
        (0..n).map(|_| (std * g.next()) as f32).collect()
    };
    match p.init {
        Init::HeNormal { fan_in } => normal((2.0 / fan_in as f64).sqrt()),
        Init::Normal { std } => normal(std as f64),
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Constant { value } => vec![value; n],
    }
}

/// Initial parameter values, in ABI order (one `Vec` per [`crate::params`] entry).
pub fn init(spec: &NetSpec, seed: u64) -> Result<Vec<Vec<f32>>, SpecError> {
    Ok(params(spec)?.iter().map(|p| init_tensor(p, seed)).collect())
}

/// Initial BN running statistics, in ABI order: mean 0, var 1.
pub fn init_buffers(spec: &NetSpec) -> Result<Vec<Vec<f32>>, SpecError> {
    Ok(buffers(spec)?.iter().map(|p| init_tensor(p, 0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std_closely() {
        let mut r = SplitMix64::new(7);
        for _ in 0..10_000 {
            let x = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + 1e-300;
            let (a, b) = (ln(x), x.ln());
            assert!(
                (a - b).abs() <= 4e-16 * b.abs().max(1.0),
                "ln({x}) = {a}, std {b}"
            );
        }
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (published reference sequence).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut g = Normals {
            rng: SplitMix64::new(42),
            spare: None,
        };
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| g.next()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }
}
