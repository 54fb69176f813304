//! One recurrent step in f64, row by row, as the cells' equations read (PyTorch's gate
//! orders): the oracle of `rnn::step_forward` and `rnn::step_backward`.

use crate::rnn::Cell;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A step's results: gate activations, `h`, `c` (forward); or the pre-activation gradients,
/// the recurrent ones, the direct part of `dh'`, and `dc'` (backward).
#[derive(Clone, Debug, Default)]
pub struct Step {
    pub gates: Vec<f64>,
    pub rec: Vec<f64>,
    pub h: Vec<f64>,
    pub c: Vec<f64>,
}

/// Forward over `rows` rows: `gates` the pre-activations (the GRU's input part), `rec` the
/// recurrent pre-activations (the GRU's; the other cells add them when given); inactive
/// rows keep their state and output zero.
#[allow(clippy::too_many_arguments)]
pub fn step_forward(
    cell: Cell,
    rows: usize,
    hidden: usize,
    active: &[bool],
    gates: &[f32],
    rec: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
) -> Step {
    let (h, gh) = (hidden, cell.gates() * hidden);
    let mut out = Step { gates: vec![0.0; rows * gh], rec: Vec::new(), h: vec![0.0; rows * h], c: vec![0.0; rows * h] };
    for r in 0..rows {
        let rc = |k: usize, j: usize| rec.get(r * gh + k * h + j).map_or(0.0, |&v| v as f64);
        let g = |k: usize, j: usize| gates[r * gh + k * h + j] as f64 + if cell == Cell::Gru { 0.0 } else { rc(k, j) };
        for j in 0..h {
            let hp = h_prev[r * h + j] as f64;
            let cp = c_prev.get(r * h + j).map_or(0.0, |&v| v as f64);
            if active.get(r) == Some(&false) {
                out.h[r * h + j] = hp;
                out.c[r * h + j] = cp;
                continue;
            }
            let acts: Vec<f64> = match cell {
                Cell::Tanh => vec![g(0, j).tanh()],
                Cell::Relu => vec![g(0, j).max(0.0)],
                Cell::Lstm => vec![sigmoid(g(0, j)), sigmoid(g(1, j)), g(2, j).tanh(), sigmoid(g(3, j))],
                Cell::Gru => {
                    let rg = sigmoid(g(0, j) + rc(0, j));
                    let z = sigmoid(g(1, j) + rc(1, j));
                    vec![rg, z, (g(2, j) + rg * rc(2, j)).tanh()]
                }
            };
            let (hv, cv) = match cell {
                Cell::Tanh | Cell::Relu => (acts[0], 0.0),
                Cell::Lstm => {
                    let c = acts[1] * cp + acts[0] * acts[2];
                    (acts[3] * c.tanh(), c)
                }
                Cell::Gru => ((1.0 - acts[1]) * acts[2] + acts[1] * hp, 0.0),
            };
            for (k, a) in acts.into_iter().enumerate() {
                out.gates[r * gh + k * h + j] = a;
            }
            out.h[r * h + j] = hv;
            out.c[r * h + j] = cv;
        }
    }
    out
}

/// Backward over `rows` rows from the forward step's saved values (`gates`: activations);
/// `dh = dh_next + dy`, `dc` the gradient of `c` from later steps. Returns the gates'
/// pre-activation gradients (`gates`), the GRU's recurrent ones (`rec`), the direct part of
/// `dh'` (`h`) and `dc'` (`c`).
#[allow(clippy::too_many_arguments)]
pub fn step_backward(
    cell: Cell,
    rows: usize,
    hidden: usize,
    active: &[bool],
    gates: &[f32],
    rec: &[f32],
    h_prev: &[f32],
    c_prev: &[f32],
    c: &[f32],
    dh: &[f64],
    dc: &[f32],
) -> Step {
    let (h, gh) = (hidden, cell.gates() * hidden);
    let mut out =
        Step { gates: vec![0.0; rows * gh], rec: vec![0.0; rows * gh], h: vec![0.0; rows * h], c: vec![0.0; rows * h] };
    for r in 0..rows {
        let g = |k: usize, j: usize| gates[r * gh + k * h + j] as f64;
        for j in 0..h {
            let (at, d) = (r * h + j, dh[r * h + j]);
            let dcn = dc.get(at).map_or(0.0, |&v| v as f64);
            if active.get(r) == Some(&false) {
                out.h[at] = d;
                out.c[at] = dcn;
                continue;
            }
            let mut set = |k: usize, v: f64| out.gates[r * gh + k * h + j] = v;
            match cell {
                Cell::Tanh => set(0, d * (1.0 - g(0, j) * g(0, j))),
                Cell::Relu => set(0, if g(0, j) > 0.0 { d } else { 0.0 }),
                Cell::Lstm => {
                    let (i, f, gg, o) = (g(0, j), g(1, j), g(2, j), g(3, j));
                    let tc = (c[at] as f64).tanh();
                    let dcv = dcn + d * o * (1.0 - tc * tc);
                    set(0, dcv * gg * i * (1.0 - i));
                    set(1, dcv * c_prev[at] as f64 * f * (1.0 - f));
                    set(2, dcv * i * (1.0 - gg * gg));
                    set(3, d * tc * o * (1.0 - o));
                    out.c[at] = dcv * f;
                }
                Cell::Gru => {
                    let (rg, z, n) = (g(0, j), g(1, j), g(2, j));
                    let dn = d * (1.0 - z) * (1.0 - n * n);
                    let dr = dn * rec[r * gh + 2 * h + j] as f64 * rg * (1.0 - rg);
                    let dz = d * (h_prev[at] as f64 - n) * z * (1.0 - z);
                    set(0, dr);
                    set(1, dz);
                    set(2, dn);
                    out.rec[r * gh + j] = dr;
                    out.rec[r * gh + h + j] = dz;
                    out.rec[r * gh + 2 * h + j] = dn * rg;
                    out.h[at] = d * z;
                }
            }
        }
    }
    out
}
