//! Weight initialisation, seeded and deterministic (`rand_xoshiro`).

use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
pub use rand_xoshiro::Xoshiro256PlusPlus as Rng;

/// How a weight tensor is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// He (Kaiming) uniform, `U(-b, b)` with `b = sqrt(6 / fan_in)`: keeps the variance of
    /// activations through ReLU layers (He et al., 2015).
    He,
    /// Glorot (Xavier) uniform, `b = sqrt(6 / (fan_in + fan_out))`: for tanh and sigmoid
    /// (Glorot & Bengio, 2010).
    Glorot,
    /// Small: `U(-b, b)` with standard deviation 0.01 (`b = 0.01 sqrt(3)`) whatever the
    /// fans, for a last layer that should start near zero (SqueezeNet's classifier
    /// convolution, drawn N(0, 0.01) in its reference implementation: a ReLU follows it,
    /// and large initial class maps die under it).
    Small,
    /// `U(-b, b)` with `b = 1 / sqrt(fan_in)`: PyTorch's default for every weight and bias of
    /// its recurrent layers, with the hidden size as `fan_in` (`torch.nn.LSTM` documentation).
    InverseSqrt,
}

impl Init {
    /// The bound `b` of the uniform distribution.
    pub fn bound(self, fan_in: usize, fan_out: usize) -> f32 {
        match self {
            Init::He => (6.0 / fan_in.max(1) as f32).sqrt(),
            Init::Glorot => (6.0 / (fan_in + fan_out).max(1) as f32).sqrt(),
            Init::Small => 0.01 * 3f32.sqrt(),
            Init::InverseSqrt => 1.0 / (fan_in.max(1) as f32).sqrt(),
        }
    }

    /// Fills `w` from `U(-b, b)`.
    pub fn fill(self, fan_in: usize, fan_out: usize, w: &mut [f32], rng: &mut Rng) {
        let b = self.bound(fan_in, fan_out);
        w.iter_mut().for_each(|v| *v = (2.0 * uniform(rng) - 1.0) * b);
    }
}

/// A generator from a seed.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Uniform in `[0, 1)` with 24 random bits (every value exactly representable in f32).
pub fn uniform(rng: &mut Rng) -> f32 {
    (rng.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// A uniform index in `0..n` (`n > 0`), by the multiply-shift method (Lemire, 2019).
pub fn index(rng: &mut Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// Fisher-Yates shuffle (Knuth, TAOCP vol. 2, Algorithm P).
pub fn shuffle<T>(rng: &mut Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        v.swap(i, index(rng, i + 1));
    }
}
