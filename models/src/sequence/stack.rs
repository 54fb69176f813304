//! A stack of recurrent layers in a graph, one node per layer (`rnn0`, `rnn1`, ...) so that
//! dropout can sit between them, each with its initial states as inputs (`h0_0`, `c0_0`,
//! ...) and its final states as outputs (`h_n_0`, `c_n_0`, ...): what the sequence models
//! share, and what lets a step carry state from one batch to the next.

use simdnn_layers::ops::{Cell, Dropout, RecurrentSpec};
use simdnn_layers::{GraphBuilder, LayerError, Tensor};

/// The recurrent part of a sequence model.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    pub cell: Cell,
    pub input: usize,
    pub hidden: usize,
    pub layers: usize,
    /// Dropout after each layer but the last (0: none).
    pub dropout: f32,
}

impl Stack {
    /// The states each layer carries: `h`, and the LSTM's `c`.
    pub fn state_names(&self, layer: usize) -> Vec<(String, String)> {
        let mut names = vec![(format!("h0_{layer}"), format!("h_n_{layer}"))];
        if self.cell == Cell::Lstm {
            names.push((format!("c0_{layer}"), format!("c_n_{layer}")));
        }
        names
    }

    /// Every state as `(input, output)` names, layer by layer.
    pub fn states(&self) -> Vec<(String, String)> {
        (0..self.layers).flat_map(|l| self.state_names(l)).collect()
    }

    /// Adds the stack over value `x` (`[T, N, input]`) for batches of `batch` and returns the
    /// name of its output (`[T, N, hidden]`).
    pub fn declare(&self, g: &mut GraphBuilder, x: &str, batch: usize, seed: u64) -> Result<String, LayerError> {
        let mut prev = x.to_string();
        for l in 0..self.layers {
            let fin = if l == 0 { self.input } else { self.hidden };
            let spec = RecurrentSpec::new(self.cell, fin, self.hidden);
            let spec = if self.cell == Cell::Lstm { spec.forget_bias(1.0) } else { spec };
            let mut inputs = vec![prev.clone()];
            for (k, (state_in, state_out)) in self.state_names(l).into_iter().enumerate() {
                g.input(&state_in, &[1, batch, self.hidden]);
                inputs.push(state_in);
                g.output(&state_out, &format!("rnn{l}:{}", k + 1));
            }
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            g.layer(&format!("rnn{l}"), |p| spec.build(p), &inputs);
            prev = format!("rnn{l}");
            if self.dropout > 0.0 && l + 1 < self.layers {
                g.add(&format!("drop{l}"), Dropout::new(self.dropout, seed.wrapping_add(l as u64))?, &[&prev]);
                prev = format!("drop{l}");
            }
        }
        Ok(prev)
    }
}

/// Carried recurrent state per stream: the final states of a stream's last window, handed to
/// its next window as initial states (truncated backpropagation through time: values only,
/// no gradient crosses the window boundary).
#[derive(Default)]
pub struct Carry {
    /// Per stream: the window the state continues into, and each state's values.
    streams: Vec<Option<(usize, Vec<Vec<f32>>)>>,
}

impl Carry {
    pub fn clear(&mut self) {
        self.streams.clear();
    }

    /// Fills initial state `k` (`[1, B, H]`) of the batch's examples at `(stream, window)`
    /// positions: the carried state where the stream's last window was the one before,
    /// zeros elsewhere.
    pub fn initial(&self, k: usize, positions: &[Option<(usize, usize)>], hidden: usize, t: &mut Tensor) {
        t.resize(&[1, positions.len(), hidden]);
        for (col, dst) in t.data_mut().chunks_exact_mut(hidden).enumerate() {
            let carried = positions[col].and_then(|(s, w)| match self.streams.get(s) {
                Some(Some((next, values))) if *next == w => Some(&values[k]),
                _ => None,
            });
            match carried {
                Some(v) => dst.copy_from_slice(v),
                None => dst.fill(0.0),
            }
        }
    }

    /// Keeps final state `k` of `states` (`[1, B, H]` values) of the batch's streams for
    /// their next windows.
    pub fn keep(
        &mut self,
        k: usize,
        states: usize,
        positions: &[Option<(usize, usize)>],
        hidden: usize,
        values: &[f32],
    ) {
        for (col, pos) in positions.iter().enumerate() {
            let Some((s, w)) = *pos else { continue };
            if self.streams.len() <= s {
                self.streams.resize_with(s + 1, || None);
            }
            let slot = self.streams[s].get_or_insert_with(|| (0, vec![vec![0.0; hidden]; states]));
            slot.0 = w + 1;
            slot.1[k].copy_from_slice(&values[col * hidden..][..hidden]);
        }
    }
}
