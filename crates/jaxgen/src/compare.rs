//! How the oracle compares a netspec tensor with JAX's.
//!
//! For a tensor `a` (netspec) and its reference `b` (JAX) of the same length:
//! * `max_abs = maxᵢ |aᵢ − bᵢ|`;
//! * `max_rel = max_abs / maxᵢ |bᵢ|` — a norm-wise relative error (∞-norm). Element-wise relative
//!   errors are meaningless for gradients, many of whose entries are (nearly) zero;
//! * the tensors agree under `Tolerance { atol, rtol }` iff `max_abs ≤ atol + rtol · maxᵢ |bᵢ|`,
//!   every value is finite and the lengths match.

/// Allowed error: `max_abs ≤ atol + rtol · ‖reference‖∞`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f64,
    pub rtol: f64,
}

/// The outcome of one comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub max_abs: f64,
    pub max_rel: f64,
    /// `‖reference‖∞`.
    pub ref_max: f64,
    /// Index of the element with the largest absolute error.
    pub worst: usize,
    pub ok: bool,
    /// Why it failed (empty when `ok`).
    pub problem: String,
}

/// Compares `got` with `reference` (see the module doc).
pub fn compare_tensor(got: &[f32], reference: &[f32], tol: Tolerance) -> Comparison {
    let mut c = Comparison {
        max_abs: 0.0,
        max_rel: 0.0,
        ref_max: 0.0,
        worst: 0,
        ok: true,
        problem: String::new(),
    };
    if got.len() != reference.len() {
        c.ok = false;
        c.max_abs = f64::INFINITY;
        c.max_rel = f64::INFINITY;
        c.problem = format!("length {} vs reference {}", got.len(), reference.len());
        return c;
    }
    for (i, (&a, &b)) in got.iter().zip(reference).enumerate() {
        let (a, b) = (a as f64, b as f64);
        if !a.is_finite() || !b.is_finite() {
            c.ok = false;
            c.max_abs = f64::INFINITY;
            c.worst = i;
            c.problem = format!("non-finite value at {i}: {a} vs reference {b}");
            break;
        }
        let d = (a - b).abs();
        if d > c.max_abs {
            c.max_abs = d;
            c.worst = i;
        }
        c.ref_max = c.ref_max.max(b.abs());
    }
    if c.problem.is_empty() {
        c.max_rel = if c.ref_max > 0.0 {
            c.max_abs / c.ref_max
        } else if c.max_abs > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        let allowed = tol.atol + tol.rtol * c.ref_max;
        if c.max_abs > allowed {
            c.ok = false;
            c.problem = format!(
                "max abs error {:.3e} at element {} ({} vs reference {}) exceeds {:.3e} = {:e} + {:e}·{:.3e}",
                c.max_abs, c.worst, got[c.worst], reference[c.worst], allowed, tol.atol, tol.rtol, c.ref_max
            );
        }
    }
    c
}

/// Two computations of the same quantity at a low precision (netspec's `got`, JAX's `peer`), each
/// measured against a more precise computation of it (`referee`, the f32 gradient at the same
/// point). The error is the root mean square `‖x − referee‖₂ / √n`: a maximum over a tensor is
/// decided by its one worst element, so the maxima of two equally accurate computations differ by
/// 2–3× now and then (measured, docs/ORACLE.md), while their RMS errors stay within a few tens of
/// percent. `got` is *as accurate as the peer* iff `err ≤ factor · peer_err + atol`: the two
/// low-precision results may differ from each other by their rounding noise, but `got` may not be
/// materially further from the truth. The maxima are reported too.
#[derive(Clone, Debug, PartialEq)]
pub struct RefereeComparison {
    /// RMS error of `got` / of `peer` against the referee.
    pub err: f64,
    pub peer_err: f64,
    /// Largest absolute error of `got` / of `peer` against the referee.
    pub err_max: f64,
    pub peer_err_max: f64,
    /// `factor · peer_err + atol`.
    pub allowed: f64,
    pub ok: bool,
    /// Why it failed (empty when `ok`).
    pub problem: String,
}

/// Compares `got`'s and `peer`'s errors against `referee` (see [`RefereeComparison`]).
pub fn compare_with_referee(
    got: &[f32],
    peer: &[f32],
    referee: &[f32],
    factor: f64,
    atol: f64,
) -> RefereeComparison {
    let mut c = RefereeComparison {
        err: f64::INFINITY,
        peer_err: f64::INFINITY,
        err_max: f64::INFINITY,
        peer_err_max: f64::INFINITY,
        allowed: 0.0,
        ok: false,
        problem: String::new(),
    };
    if got.len() != referee.len() || peer.len() != referee.len() || referee.is_empty() {
        c.problem = format!(
            "lengths {} and {} (peer) vs referee {}",
            got.len(),
            peer.len(),
            referee.len()
        );
        return c;
    }
    // (RMS, max) of x − referee; None if a value is not finite.
    let err = |a: &[f32]| -> Option<(f64, f64)> {
        let (sq, mx) = a
            .iter()
            .zip(referee)
            .try_fold((0f64, 0f64), |(sq, mx), (&x, &r)| {
                let d = (x as f64 - r as f64).abs();
                d.is_finite().then_some((sq + d * d, mx.max(d)))
            })?;
        Some(((sq / referee.len() as f64).sqrt(), mx))
    };
    match (err(got), err(peer)) {
        (Some((e, em)), Some((p, pm))) => {
            c.err = e;
            c.peer_err = p;
            c.err_max = em;
            c.peer_err_max = pm;
            c.allowed = factor * p + atol;
            c.ok = e <= c.allowed;
            if !c.ok {
                c.problem = format!(
                    "RMS error vs referee {e:.3e} exceeds {:.3e} = {factor}·{p:.3e} (peer's) + {atol:.3e}",
                    c.allowed
                );
            }
        }
        _ => c.problem = "a non-finite value".into(),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        atol: 1e-6,
        rtol: 1e-4,
    };

    /// A gradient-like tensor with mixed signs and magnitudes, some zeros.
    fn reference() -> Vec<f32> {
        (0..200)
            .map(|i| {
                if i % 7 == 0 {
                    0.0
                } else {
                    ((i as f32) * 0.37).sin() * 10f32.powi(i % 3 - 2)
                }
            })
            .collect()
    }

    #[test]
    fn identical_tensors_agree() {
        let r = reference();
        let c = compare_tensor(&r, &r, TOL);
        assert!(c.ok, "{}", c.problem);
        assert_eq!(c.max_abs, 0.0);
    }

    #[test]
    fn rounding_noise_is_accepted() {
        // One ulp-ish relative noise on every element, as a different summation order gives.
        let r = reference();
        let g: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + if i % 2 == 0 { 3e-7 } else { -3e-7 }))
            .collect();
        assert!(compare_tensor(&g, &r, TOL).ok);
    }

    // The mutations below are the kinds of bugs a wrong VJP rule produces; each must be caught.

    #[test]
    fn a_scaled_gradient_fails() {
        // A missing or doubled factor (e.g. forgetting the 1/B of a mean): here only 1 %.
        let r = reference();
        let g: Vec<f32> = r.iter().map(|v| v * 1.01).collect();
        let c = compare_tensor(&g, &r, TOL);
        assert!(!c.ok);
        assert!(c.problem.contains("exceeds"), "{}", c.problem);
    }

    #[test]
    fn a_sign_flip_of_one_element_fails() {
        let r = reference();
        let mut g = r.clone();
        let k = 1 + r.iter().skip(1).position(|v| v.abs() > 0.1).unwrap();
        g[k] = -g[k];
        let c = compare_tensor(&g, &r, TOL);
        assert!(!c.ok);
        assert_eq!(c.worst, k);
    }

    #[test]
    fn a_transposed_kernel_gradient_fails() {
        // A 10×20 gradient read back as its transpose (wrong dimension numbers in a VJP).
        let r = reference();
        let g: Vec<f32> = (0..200).map(|i| r[(i % 10) * 20 + i / 10]).collect();
        assert!(!compare_tensor(&g, &r, TOL).ok);
    }

    #[test]
    fn nan_and_length_mismatch_fail() {
        let r = reference();
        let mut g = r.clone();
        g[5] = f32::NAN;
        assert!(!compare_tensor(&g, &r, TOL).ok);
        assert!(!compare_tensor(&r[..199], &r, TOL).ok);
    }

    #[test]
    fn zero_reference_needs_zero_or_atol() {
        let z = vec![0.0f32; 4];
        assert!(compare_tensor(&[0.0, 0.0, 5e-7, 0.0], &z, TOL).ok);
        assert!(!compare_tensor(&[0.0, 0.0, 1e-3, 0.0], &z, TOL).ok);
    }

    /// The referee and two noisy low-precision copies of it (relative noise `n`, different seeds).
    fn noisy(r: &[f32], n: f32, seed: u32) -> Vec<f32> {
        r.iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + n * ((i as f32 * 0.7 + seed as f32 * 1.3).sin())))
            .collect()
    }

    #[test]
    fn as_accurate_as_the_peer_is_accepted() {
        let r = reference();
        let (ours, peer) = (noisy(&r, 0.02, 1), noisy(&r, 0.02, 2));
        // The two copies disagree by ~4 % of the tensor, far outside a direct rtol of 1e-4 …
        assert!(!compare_tensor(&ours, &peer, TOL).ok);
        // … but are equally far from the referee.
        let c = compare_with_referee(&ours, &peer, &r, 2.0, 0.0);
        assert!(c.ok, "{}", c.problem);
        assert!(c.err > 0.0 && c.peer_err > 0.0);
    }

    #[test]
    fn materially_less_accurate_than_the_peer_fails() {
        let r = reference();
        let peer = noisy(&r, 0.01, 2);
        let c = compare_with_referee(&noisy(&r, 0.03, 1), &peer, &r, 2.0, 0.0);
        assert!(!c.ok);
        assert!(c.problem.contains("peer's"), "{}", c.problem);
        // The absolute floor admits it.
        assert!(compare_with_referee(&noisy(&r, 0.03, 1), &peer, &r, 2.0, 1.0).ok);
    }

    #[test]
    fn mutations_fail_against_the_referee() {
        let r = reference();
        let peer = noisy(&r, 0.01, 2);
        let ours = noisy(&r, 0.01, 1);
        let mut flipped = ours.clone();
        let k = 1 + r.iter().skip(1).position(|v| v.abs() > 0.1).unwrap();
        flipped[k] = -flipped[k];
        assert!(!compare_with_referee(&flipped, &peer, &r, 2.0, 0.0).ok);
        let transposed: Vec<f32> = (0..200).map(|i| ours[(i % 10) * 20 + i / 10]).collect();
        assert!(!compare_with_referee(&transposed, &peer, &r, 2.0, 0.0).ok);
        let mut nan = ours.clone();
        nan[3] = f32::NAN;
        assert!(!compare_with_referee(&nan, &peer, &r, 2.0, 0.0).ok);
        assert!(!compare_with_referee(&ours[..199], &peer, &r, 2.0, 0.0).ok);
    }
}
