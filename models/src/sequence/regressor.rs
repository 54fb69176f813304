//! A recurrent regressor: one recurrent layer over a sequence, a linear read-out of its
//! final state, the squared error against a target. The adding problem and the forecaster
//! are this network on different data.

use crate::registry::{ModelOption, OptionValues};
use simdnn_layers::ops::{Cell, Linear, MeanSquaredError, RecurrentSpec, Reshape};
use simdnn_layers::{GraphBuilder, Init, LayerError, Model};

/// The inputs: the sequence `x` (`[T, N, features]`) and `target` (`[N, 1]`).
pub const X: &str = "x";
pub const TARGET: &str = "target";

/// The `--cell` option of the regressor's models.
pub const CELL_OPTION: ModelOption = ModelOption {
    name: "cell",
    help: "Recurrent cell (rnn: the simple tanh cell)",
    values: OptionValues::OneOf(&["lstm", "gru", "rnn"]),
    default: "lstm",
};

#[derive(Clone, Copy, Debug)]
pub struct Regressor {
    pub cell: Cell,
    pub features: usize,
    pub hidden: usize,
}

impl Regressor {
    /// The cell an option names: `rnn` (the simple tanh cell), `gru`, else `lstm`.
    pub fn cell_named(name: &str) -> Cell {
        match name {
            "rnn" => Cell::Tanh,
            "gru" => Cell::Gru,
            _ => Cell::Lstm,
        }
    }

    /// The names of the initial-state inputs (`with_state`) and final-state outputs.
    pub fn states(&self) -> &'static [(&'static str, &'static str)] {
        if self.cell == Cell::Lstm {
            &[("h0", "h_n"), ("c0", "c_n")]
        } else {
            &[("h0", "h_n")]
        }
    }

    /// Declares the network for batches of `batch` and sequences of `seq` (any other length
    /// runs too); `with_state` takes the initial states as inputs `h0` (and `c0`) instead of
    /// zeros. Outputs `loss`, `prediction` (`[N, 1]`) and the final states.
    pub fn declare(&self, g: &mut GraphBuilder, batch: usize, seq: usize, with_state: bool) {
        let recurrent = RecurrentSpec::new(self.cell, self.features, self.hidden);
        let recurrent = if self.cell == Cell::Lstm { recurrent.forget_bias(1.0) } else { recurrent };
        g.input(X, &[seq, batch, self.features]).input(TARGET, &[batch, 1]);
        let mut inputs = vec![X];
        for (k, (state_in, state_out)) in self.states().iter().enumerate() {
            if with_state {
                g.input(state_in, &[1, batch, self.hidden]);
                inputs.push(state_in);
            }
            g.output(state_out, &format!("rnn:{}", k + 1));
        }
        g.layer("rnn", |p| recurrent.build(p), &inputs)
            .add("last", Reshape::inferred(&[-1, self.hidden as isize]), &["rnn:1"])
            .layer("head", |p| Linear::new(p, self.hidden, 1, Init::Glorot), &["last"])
            .add("loss", MeanSquaredError::new(), &["head", TARGET])
            .output("loss", "loss")
            .output("prediction", "head");
    }

    pub fn build(&self, batch: usize, seq: usize, seed: u64) -> Result<Model, LayerError> {
        let mut g = GraphBuilder::new(seed);
        self.declare(&mut g, batch, seq, false);
        g.build()
    }
}
