//! Sets of small labelled graphs for graph classification: the TU Dortmund plain format
//! (Morris et al., "TUDataset", 2020: MUTAG, PROTEINS, ...) and an embedded set made by a
//! documented rule.
//!
//! The format, files named `DS_*.txt` for a data set `DS`, one value (or pair) a line:
//! - `DS_A.txt`: edges `i, j` between nodes numbered from 1 across all graphs (an undirected
//!   edge is listed both ways; either way, or both, counts once);
//! - `DS_graph_indicator.txt`: line `i` is the graph (from 1) of node `i`, non-decreasing;
//! - `DS_graph_labels.txt`: line `g` is graph `g`'s class (any integers: mapped to
//!   `0..C` in increasing order);
//! - `DS_node_labels.txt` (optional): line `i` is node `i`'s label (one-hot features);
//! - `DS_edge_labels.txt` (optional): one label per line of `DS_A.txt` (any integers:
//!   mapped to edge types `0..T` in increasing order; an edge listed twice keeps the label
//!   of its first line).

use super::node_graph::bad;
use crate::data::DataError;
use simdnn_layers::init::{index, rng, uniform};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Node labels become one-hot features: more kinds than this is not a labelling.
const MAX_NODE_LABELS: usize = 4096;

/// One small graph: its nodes' labels, undirected edges `(a, b)` with `a < b` and their
/// types (all 0 without edge labels), its class.
#[derive(Clone, Debug, PartialEq)]
pub struct SmallGraph {
    pub node_labels: Vec<u32>,
    pub edges: Vec<(u32, u32)>,
    pub edge_types: Vec<u32>,
    pub class: u32,
}

/// A set of graphs with one-hot node features of `node_labels` kinds and `classes` classes.
#[derive(Clone, Debug)]
pub struct GraphSet {
    pub graphs: Vec<SmallGraph>,
    pub node_labels: usize,
    pub classes: usize,
    /// Edge types (1 without edge labels).
    pub edge_types: usize,
    pub source: String,
}

/// The lines of a TU file as integers (comma- or space-separated), numbered from 1.
fn int_lines(path: &Path) -> Result<Vec<(usize, Vec<i64>)>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let values = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .map(|f| f.parse::<i64>().map_err(|_| bad(path, i + 1, format!("{f:?} is not an integer"))))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((i + 1, values));
    }
    Ok(out)
}

/// The file `DS_<suffix>.txt` of the set whose `DS_A.txt` is in `dir`.
fn find_prefix(dir: &Path) -> Result<(String, PathBuf), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io { path: dir.to_path_buf(), source })?;
    let mut prefixes: Vec<String> =
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix("_A.txt").map(str::to_string)).collect();
    prefixes.sort();
    match prefixes.as_slice() {
        [one] => Ok((one.clone(), dir.to_path_buf())),
        [] => Err(DataError::Invalid {
            what: dir.display().to_string(),
            reason: "no DS_A.txt file (TU Dortmund format)".into(),
        }),
        many => Err(DataError::Invalid {
            what: dir.display().to_string(),
            reason: format!("several data sets ({}): give the directory of one", many.join(", ")),
        }),
    }
}

impl GraphSet {
    /// Reads the TU set in `dir` (its `DS_` prefix found from `DS_A.txt`).
    pub fn read_tu(dir: &Path) -> Result<GraphSet, DataError> {
        let (ds, dir) = find_prefix(dir)?;
        let file = |suffix: &str| dir.join(format!("{ds}_{suffix}.txt"));
        let indicator_path = file("graph_indicator");
        let indicator = int_lines(&indicator_path)?;
        let mut graph_of = Vec::with_capacity(indicator.len());
        for (line, v) in &indicator {
            let g = match v.as_slice() {
                [g] if *g >= 1 => *g as usize - 1,
                _ => return Err(bad(&indicator_path, *line, "expected one graph number (from 1)")),
            };
            let last = graph_of.last().copied().unwrap_or(0);
            if g < last || g > last + 1 {
                return Err(bad(
                    &indicator_path,
                    *line,
                    format!("graph {} out of order after graph {}", g + 1, last + 1),
                ));
            }
            graph_of.push(g);
        }
        let labels_path = file("graph_labels");
        let raw_labels: Vec<i64> = int_lines(&labels_path)?
            .into_iter()
            .map(|(line, v)| match v.as_slice() {
                [l] => Ok(*l),
                _ => Err(bad(&labels_path, line, "expected one class label")),
            })
            .collect::<Result<_, _>>()?;
        let graphs = graph_of.last().map_or(0, |g| g + 1);
        if raw_labels.len() != graphs {
            return Err(bad(
                &labels_path,
                raw_labels.len() + 1,
                format!("{} labels for {graphs} graphs", raw_labels.len()),
            ));
        }
        let classes: Vec<i64> = raw_labels.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let node_labels_path = file("node_labels");
        let node_labels: Vec<u32> = if node_labels_path.exists() {
            let lines = int_lines(&node_labels_path)?;
            if lines.len() != graph_of.len() {
                return Err(bad(
                    &node_labels_path,
                    lines.len() + 1,
                    format!("{} node labels for {} nodes", lines.len(), graph_of.len()),
                ));
            }
            lines
                .into_iter()
                .map(|(line, v)| match v.as_slice() {
                    [l] if (0..MAX_NODE_LABELS as i64).contains(l) => Ok(*l as u32),
                    _ => Err(bad(
                        &node_labels_path,
                        line,
                        format!("expected one label from 0 to {}", MAX_NODE_LABELS - 1),
                    )),
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![0; graph_of.len()]
        };
        let mut set: Vec<SmallGraph> = (0..graphs)
            .map(|g| SmallGraph {
                node_labels: Vec::new(),
                edges: Vec::new(),
                edge_types: Vec::new(),
                class: classes.binary_search(&raw_labels[g]).unwrap_or(0) as u32,
            })
            .collect();
        // Each node's index within its graph.
        let mut local = Vec::with_capacity(graph_of.len());
        for (node, &g) in graph_of.iter().enumerate() {
            local.push(set[g].node_labels.len() as u32);
            set[g].node_labels.push(node_labels[node]);
        }
        let a_path = file("A");
        let edges = int_lines(&a_path)?;
        let edge_labels_path = file("edge_labels");
        let raw_edge_labels: Vec<i64> = if edge_labels_path.exists() {
            let lines = int_lines(&edge_labels_path)?;
            if lines.len() != edges.len() {
                let n = lines.len();
                return Err(bad(&edge_labels_path, n + 1, format!("{n} edge labels for {} edges", edges.len())));
            }
            lines
                .into_iter()
                .map(|(line, v)| match v.as_slice() {
                    [l] => Ok(*l),
                    _ => Err(bad(&edge_labels_path, line, "expected one edge label")),
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![0; edges.len()]
        };
        let edge_kinds: Vec<i64> = raw_edge_labels.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let mut seen: Vec<BTreeMap<(u32, u32), u32>> = vec![BTreeMap::new(); graphs];
        for (k, (line, v)) in edges.iter().enumerate() {
            let (i, j) = match v.as_slice() {
                [i, j] if *i >= 1 && *j >= 1 => (*i as usize - 1, *j as usize - 1),
                _ => return Err(bad(&a_path, *line, "expected an edge `i, j` of node numbers from 1")),
            };
            if i >= graph_of.len() || j >= graph_of.len() {
                return Err(bad(
                    &a_path,
                    *line,
                    format!("node {} does not exist ({} nodes)", i.max(j) + 1, graph_of.len()),
                ));
            }
            if graph_of[i] != graph_of[j] {
                return Err(bad(&a_path, *line, format!("nodes {} and {} are in different graphs", i + 1, j + 1)));
            }
            let (a, b) = (local[i], local[j]);
            if a != b {
                let kind = edge_kinds.binary_search(&raw_edge_labels[k]).unwrap_or(0) as u32;
                seen[graph_of[i]].entry((a.min(b), a.max(b))).or_insert(kind);
            }
        }
        for (g, e) in set.iter_mut().zip(seen) {
            (g.edges, g.edge_types) = e.into_iter().unzip();
        }
        let kinds = node_labels.iter().max().map_or(1, |&m| m as usize + 1);
        Ok(GraphSet {
            graphs: set,
            node_labels: kinds,
            classes: classes.len(),
            edge_types: edge_kinds.len().max(1),
            source: format!("tu:{}", dir.join(&ds).display()),
        })
    }

    /// The embedded set: `count` random graphs (Erdős–Rényi, 10 to 20 nodes, mean degree
    /// about 3) whose nodes carry one of three labels uniformly; a graph is of class 1 when
    /// an edge joins two nodes of label 0, else of class 0, drawn until the classes are
    /// even. Degrees alone cannot tell the classes apart: it takes the labels of neighbours.
    pub fn motifs(count: usize, seed: u64) -> GraphSet {
        let mut r = rng(seed);
        let mut graphs = Vec::with_capacity(count);
        let mut per_class = [0usize; 2];
        while graphs.len() < count {
            let n = 10 + index(&mut r, 11);
            let node_labels: Vec<u32> = (0..n).map(|_| index(&mut r, 3) as u32).collect();
            let p = 3.0 / (n - 1) as f32;
            let mut edges = Vec::new();
            for a in 0..n as u32 {
                for b in a + 1..n as u32 {
                    if uniform(&mut r) < p {
                        edges.push((a, b));
                    }
                }
            }
            let class =
                u32::from(edges.iter().any(|&(a, b)| node_labels[a as usize] == 0 && node_labels[b as usize] == 0));
            if per_class[class as usize] < count.div_ceil(2) {
                per_class[class as usize] += 1;
                let edge_types = vec![0; edges.len()];
                graphs.push(SmallGraph { node_labels, edges, edge_types, class });
            }
        }
        let source = format!("embedded motif graphs ({count})");
        GraphSet { graphs, node_labels: 3, classes: 2, edge_types: 1, source }
    }

    /// The graphs of fold `k` of `folds` (every `folds`-th of a fixed shuffle, from `k`)
    /// and the others: `(train, test)` indices.
    pub fn fold(&self, k: usize, folds: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
        let mut order: Vec<usize> = (0..self.graphs.len()).collect();
        simdnn_layers::init::shuffle(&mut rng(seed), &mut order);
        let held_out = |i: &usize| i % folds.max(1) == k;
        let pick = |keep: bool| order.iter().enumerate().filter(|(i, _)| held_out(i) != keep).map(|p| *p.1).collect();
        (pick(true), pick(false))
    }
}
