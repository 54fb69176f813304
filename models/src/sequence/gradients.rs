//! The vanishing-gradient study: how much the loss at the last step, `C_T`, depends on the
//! hidden state `T - t` steps earlier, `‖∂C_T/∂h_t‖`, for a cell on the adding problem, at
//! initialisation and after training. A simple RNN's norm falls geometrically with the
//! distance (Bengio, Simard & Frasconi 1994; Pascanu et al. 2013); the LSTM's cell state
//! carries it across (Hochreiter & Schmidhuber 1997).
//!
//! `∂C_T/∂h_t` is measured exactly, with the fused layer as it is: a second plan over the
//! same weights takes the initial state as an input, the state `h_t` (and `c_t`) after the
//! first `t` steps is fed to it, the remaining `T - t` steps run, and backward gives the
//! gradient of the input state.

use super::adding::AddingSpec;
use super::regressor::{TARGET, X};
use crate::dataset::Dataset;
use simdnn_kernels::gemm::GemmConfig;
use simdnn_layers::{Ctx, Feed, Grads, Inputs, LayerError, Model, Select, State, Tensor};

/// `‖∂C_T/∂h_t‖` by distance `T - t` (1 to T; `h_0` the initial state), for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientProfile {
    /// `(T - t, norm)`, distance increasing.
    pub norms: Vec<(usize, f64)>,
}

/// The profile of `model` (an adding network of `spec`) on the first `batch` sequences of
/// `data`; `C_T` is the batch's mean squared error.
pub fn gradient_profile(
    spec: &AddingSpec,
    model: &mut Model,
    data: &dyn Dataset,
    batch: usize,
    gemm: GemmConfig,
) -> Result<GradientProfile, LayerError> {
    let regressor = spec.regressor;
    let batch = batch.min(data.len()).max(1);
    let plan = model.plan(|mut g| {
        regressor.declare(&mut g, batch, spec.seq, true);
        g
    })?;
    let model = model.with(&plan)?;
    let mut inputs = Inputs::new();
    data.fill(&(0..batch).collect::<Vec<_>>(), &mut inputs)?;
    let x = inputs.f32(X).ok_or(LayerError::MissingInput { name: X.into() })?;
    let target = inputs.f32(TARGET).ok_or(LayerError::MissingInput { name: TARGET.into() })?;
    let (t_len, features) = (x.shape()[0], x.shape()[2]);
    let step_len = batch * features;
    let hidden = regressor.hidden;
    let states = regressor.states();
    let ctx = Ctx::train(gemm);
    let (mut prefix_state, mut suffix_state) = (State::new(), State::new());
    suffix_state.keep_input_grads(true);
    let mut grads = Grads::new(model.params());
    grads.select(model.params(), Select::Names(&[]))?;
    let mut carried: Vec<Tensor> = states.iter().map(|_| Tensor::zeros(&[1, batch, hidden])).collect();
    let mut norms = Vec::with_capacity(t_len);
    for t in 0..t_len {
        if t > 0 {
            // h_t, c_t: the final states of the first t steps from zero.
            let prefix = Tensor::from_slice(&[t, batch, features], &x.data()[..t * step_len])?;
            let zeros: Vec<Tensor> = states.iter().map(|_| Tensor::zeros(&[1, batch, hidden])).collect();
            let mut feed = vec![(X, Feed::from(&prefix)), (TARGET, Feed::from(target))];
            feed.extend(states.iter().zip(&zeros).map(|((name, _), z)| (*name, Feed::from(z))));
            model.forward(&ctx, &mut prefix_state, &feed[..])?;
            for ((_, out), c) in states.iter().zip(carried.iter_mut()) {
                c.data_mut().copy_from_slice(model.output(&prefix_state, out)?.data);
            }
        }
        let suffix = Tensor::from_slice(&[t_len - t, batch, features], &x.data()[t * step_len..])?;
        let mut feed = vec![(X, Feed::from(&suffix)), (TARGET, Feed::from(target))];
        feed.extend(states.iter().zip(&carried).map(|((name, _), c)| (*name, Feed::from(c))));
        model.forward(&ctx, &mut suffix_state, &feed[..])?;
        grads.zero();
        model.backward_from_selected(&ctx, &mut suffix_state, &mut grads, "loss", Select::Names(&[]))?;
        let g = model.input_grad(&suffix_state, states[0].0).ok_or(LayerError::MissingInput { name: "h0".into() })?;
        let norm = g.data.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        norms.push((t_len - t, norm));
    }
    norms.reverse();
    Ok(GradientProfile { norms })
}
