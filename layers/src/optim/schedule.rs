//! Learning-rate schedules, as a function of the step (batch) count.

/// The learning rate at step `t` of `total`, from a base rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    Constant,
    /// Multiplied by `gamma` every `every` steps.
    Step {
        every: usize,
        gamma: f32,
    },
    /// Cosine annealing from the base rate to `min` over `total` steps (Loshchilov & Hutter,
    /// SGDR, 2017, without restarts).
    Cosine {
        total: usize,
        min: f32,
    },
    /// Cosine annealing restarted every `period` steps, each cycle's peak `decay` times the
    /// previous one's (SGDR, Loshchilov & Hutter, 2017, with equal cycles): every cycle ends
    /// annealed, so the model at each cycle's end (an epoch's, with `period` = its steps) is
    /// as good as a run that stopped there.
    CosineRestarts {
        period: usize,
        decay: f32,
        min: f32,
    },
}

impl LrSchedule {
    pub fn lr(&self, base: f32, t: usize) -> f32 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step { every, gamma } => base * gamma.powi((t / every.max(1)) as i32),
            LrSchedule::Cosine { total, min } => {
                let progress = (t.min(total) as f64) / (total.max(1) as f64);
                min + (base - min) * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
            }
            LrSchedule::CosineRestarts { period, decay, min } => {
                let period = period.max(1);
                let peak = base * decay.powi((t / period) as i32);
                LrSchedule::Cosine { total: period, min }.lr(peak, t % period)
            }
        }
    }
}
