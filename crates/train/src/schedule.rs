//! Learning-rate schedules, per step.
//!
//! `s` is the 0-based index of the update (the number of updates already done), so the first
//! update uses `lr(0)`. With peak rate `L`, `W` warmup steps and `T` total steps:
//! ```text
//! constant:        lr(s) = L
//! warmup + cosine: lr(s) = L · (s + 1) / W                          for s < W
//!                  lr(s) = L · ½ · (1 + cos(π · (s − W) / (T − W)))   for W ≤ s < T
//!                  lr(s) = 0                                         for s ≥ T
//! ```
//! The warmup reaches `L` at its last step (`s = W − 1`), the cosine starts at `L` (`s = W`) and
//! would reach 0 at `s = T`, one past the last update, so every update has a positive rate.
//! The value is computed in `f64` and rounded to `f32` once. The JAX export uses the same formula.

/// A learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant {
        lr: f64,
    },
    /// Linear warmup over `warmup_steps`, then cosine decay to 0 at `total_steps`.
    WarmupCosine {
        peak: f64,
        warmup_steps: u64,
        total_steps: u64,
    },
}

impl Schedule {
    /// Warmup and length given in epochs of `steps_per_epoch` steps.
    pub fn warmup_cosine_epochs(
        peak: f64,
        warmup_epochs: u64,
        epochs: u64,
        steps_per_epoch: u64,
    ) -> Schedule {
        Schedule::WarmupCosine {
            peak,
            warmup_steps: warmup_epochs * steps_per_epoch,
            total_steps: epochs * steps_per_epoch,
        }
    }

    /// The rate of update `step` (0-based; see the module doc).
    pub fn lr(&self, step: u64) -> f32 {
        match *self {
            Schedule::Constant { lr } => lr as f32,
            Schedule::WarmupCosine {
                peak,
                warmup_steps: w,
                total_steps: t,
            } => {
                let v = if step < w {
                    peak * (step + 1) as f64 / w as f64
                } else if step < t {
                    let frac = (step - w) as f64 / (t - w) as f64;
                    peak * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
                } else {
                    0.0
                };
                v as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_constant() {
        let s = Schedule::Constant { lr: 0.1 };
        assert_eq!(s.lr(0), 0.1f32);
        assert_eq!(s.lr(1_000_000), 0.1f32);
    }

    #[test]
    fn warmup_cosine_at_known_steps() {
        // W = 4, T = 12: warmup 0.25L, 0.5L, 0.75L, L; cosine over 8 steps from s = 4.
        let s = Schedule::WarmupCosine {
            peak: 1e-3,
            warmup_steps: 4,
            total_steps: 12,
        };
        let want = [
            (0, 0.25e-3),
            (1, 0.5e-3),
            (3, 1e-3),
            (4, 1e-3),
            // s = 6: frac = 2/8, ½(1 + cos(π/4)) = 0.853553390593…
            (6, 1e-3 * 0.853_553_390_593_273_8),
            // s = 8: frac = 1/2, cos = 0 → L/2.
            (8, 0.5e-3),
            // s = 11: frac = 7/8, ½(1 + cos(7π/8)) = 0.038060233744…
            (11, 1e-3 * 0.038_060_233_744_356_6),
            (12, 0.0),
            (1000, 0.0),
        ];
        for (step, v) in want {
            assert_eq!(s.lr(step), v as f32, "step {step}");
        }
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let s = Schedule::warmup_cosine_epochs(0.1, 0, 2, 5);
        assert_eq!(s.lr(0), 0.1f32);
        assert!(s.lr(9) > 0.0 && s.lr(9) < 0.01);
        assert_eq!(s.lr(10), 0.0);
    }
}
