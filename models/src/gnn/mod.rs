//! The graph family: networks over data that does not live on a grid (citation, social,
//! molecular graphs), built on the sparse products (`simdnn_layers::ops::SparseMatMul`,
//! over `simdnn_kernels::sparse`) and registered like the other families.
//!
//! - [`node_graph`]: graphs with node features, labels and a split, from the plain format
//!   of `../shared/data/cora` or an embedded planted-partition graph;
//! - [`gcn`]: Kipf & Welling's graph convolutional network for node classification;
//! - [`link`]: graph auto-encoders (GAE, VGAE) for link prediction;
//! - [`karate`]: the karate club's two factions from one labelled member each;
//! - [`tu`] and [`graphcls`]: graph classification on sets of small graphs (TU format);
//! - [`propagate`] and [`recurrent`]: Scarselli et al.'s recurrent and Li et al.'s gated
//!   graph networks (`recgnn`, `ggnn`) on node and graph tasks, over the general
//!   message-passing layer (`simdnn_layers::message_passing`).

pub mod gcn;
pub mod graphcls;
pub mod karate;
pub mod link;
pub mod node_graph;
pub mod propagate;
pub mod recurrent;
pub mod tu;
