#!/usr/bin/env python3
"""Peer benchmark: graph convolution (GCN training step, CSR x dense products) in simdnn and PyTorch.

Sections (--sections, a comma list; --spmm and --accuracy add theirs to it):
- gcn (default): one full-batch training step of Kipf & Welling's 2-layer GCN on Cora
  (forward, cross-entropy over the 140 training nodes, backward, Adam step), per thread count:
  - simdnn through `simdnn bench gcn --data DIR --threads N --json` (a subprocess; the last
    line of its stdout that parses as JSON is used, its `median_ms`);
  - PyTorch written as Kipf's reference code (tkipf/gcn: gcn/layers.py, gcn/utils.py) does
    it, with torch.set_num_threads(N). Cora's plain files in DIR (nodes.csv, edges.csv,
    features.txt) are read; features are row-normalised (rows with no features stay zero);
    the adjacency is made symmetric, self loops are added and it is normalised,
    Â = D^-1/2 (A + I) D^-1/2. X and Â are torch sparse COO tensors (--layout coo, the
    default; torch 2.15 on a busy 2-core AVX-512 box, 1 thread: ~8.5 ms a step, against
    ~12.8 ms with CSR, whose backward spends a third of the step sorting to transpose Â and
    X; --layout csr, int32 indices, is there to check). Both layouts work and train alike.
    The model: sparse dropout 0.5 on X (Kipf's sparse_dropout: each stored entry kept with
    probability 0.5, dropped entries removed from the sparse tensor, kept ones scaled by 2)
    -> X·W1 (torch.sparse.mm) -> Â·(.) -> +b1 -> ReLU -> dropout 0.5 -> ·W2 -> Â·(.) -> +b2
    -> cross-entropy (log_softmax + NLL, mean) over the training nodes. 16 hidden units,
    Glorot-uniform weights and zero biases (tkipf/gcn's GraphConvolution defaults to no
    bias; the biases are kept here as in pygcn and simdnn's model). Weight decay 5e-4 on
    W1 only, as Kipf does it: 5e-4 * ||W1||^2 / 2 (tf.nn.l2_loss) added to the loss (the
    same gradient as an Adam param group with weight_decay=5e-4 on W1). Adam, lr 0.01.
    A step is opt.zero_grad(), forward, loss, backward, opt.step(); warmed up 5 steps, then
    repeated until at least --min-ms have passed and at least 20 steps were made; the
    median time per step is used. The model keeps training from round to round.
- spmm: CSR x dense products Y = A·X, A of R rows, C columns and Z nonzeros at distinct
  positions drawn uniformly at random (numpy default_rng(0), values uniform in [-1, 1)),
  X dense C x F randn, float32:
  - simdnn through `simdnn bench spmm --rows R --cols C --nnz Z --features F --threads N
    --json` (its `median_ms`; its own gflops/gbps keys are not used, both peers' rates come
    from the formula below);
  - PyTorch through torch.sparse.mm on a CSR tensor with int32 row pointers and column
    indices (as simdnn's u32), under torch.inference_mode(); warmed up 5 times, then
    repeated until at least --min-ms have passed and at least 20 runs were made, median.
  GFLOP/s = 2*Z*F / time. GB/s = bytes / time with the nominal traffic, the same for both:
  Z*(4 + 4) (values and column indices) + (R+1)*8 (row pointers) + C*F*4 (X read once)
  + R*F*4 (Y written). Default shapes: Cora's Â·H (R=C=2708, Z=13264: 10556 directed edges
  + 2708 self loops) at F=16 and F=7, Cora's X·W1 (R=2708, C=1433, Z=49216, F=16) and a
  larger R=C=100000, Z=1000000, F=64. --rows, --cols, --nnz, --features are comma lists
  zipped together; a list of one value is repeated to the others' length.
- accuracy (never timed against simdnn): PyTorch's GCN trained as in Kipf's train.py: up
  to 200 epochs, each one training step then an evaluation without dropout; stops early
  when the validation loss (cross-entropy + the weight-decay term, as Kipf's model.loss)
  is above the mean of the previous 10 epochs' (checked from epoch 11 on, 0-based, as
  Kipf's `epoch > early_stopping`); the test accuracy of the final model is reported as
  mean and sample standard deviation over --seeds seeds (torch.manual_seed(0..seeds-1)),
  run with the smallest of --threads (1 and 2 threads gave the same accuracies).
Rounds alternate the two peers: each round runs simdnn, then PyTorch, on the configuration;
each peer's time is the median over the rounds of its per-round medians (the machine's load
drifts within a run). The ratio is simdnn's time over PyTorch's (< 1 means simdnn is faster).
A missing simdnn binary or a failed simdnn run is reported on stderr and left blank ("–").
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (by re-executing
this script) before any library loads, as in gemm_numpy.py.

Usage:
    cargo build --release && python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/gcn_peers.py                        # gcn, Markdown table
    python3 benches/peers/gcn_peers.py --json                 # JSON lines
    python3 benches/peers/gcn_peers.py --spmm --accuracy      # all three sections
    python3 benches/peers/gcn_peers.py --sections spmm --rows 100000 --cols 100000 \
        --nnz 1000000 --features 16,64 --threads 1 --rounds 3 --min-ms 200
"""
import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _SCRUB):
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SECTIONS = ("gcn", "spmm", "accuracy")
LAYOUTS = ("coo", "csr")
HIDDEN, DROPOUT, LR, WEIGHT_DECAY = 16, 0.5, 0.01, 5e-4  # Kipf's defaults (gcn/train.py)
EPOCHS, EARLY_STOPPING = 200, 10
ROWPTR_BYTES = 8  # row pointers counted as 8 bytes each in the GB/s formula (see above)


def time_calls(f, min_ms, warmup=5, min_runs=20):
    for _ in range(warmup):
        f()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start) * 1e3 < min_ms:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------
# Cora and the GCN, as tkipf/gcn does them


class Cora:
    """Cora's plain files as torch tensors: X and Â sparse (in `layout`), labels, split masks."""

    def __init__(self, torch, data, layout):
        with open(os.path.join(data, "nodes.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        n = len(rows)
        node = np.array([int(r["node"]) for r in rows])
        if not np.array_equal(np.sort(node), np.arange(n)):
            sys.exit(f"{data}/nodes.csv: node ids are not 0..{n - 1}")
        labels = np.empty(n, np.int64)
        labels[node] = [int(r["label"]) for r in rows]
        split = np.empty(n, object)
        split[node] = [r["split"] for r in rows]
        self.n, self.classes = n, int(labels.max()) + 1
        self.labels = torch.from_numpy(labels)
        self.idx = {s: torch.from_numpy(np.flatnonzero(split == s)) for s in ("train", "val", "test")}

        # Features: binary, 1 at each listed (node, feature); row-normalised as Kipf's
        # preprocess_features (r_inv = 1/rowsum, inf -> 0, so empty rows stay zero).
        feats = np.loadtxt(os.path.join(data, "features.txt"), dtype=np.int64, ndmin=2)
        feats = np.unique(feats, axis=0)  # sorted by (node, feature): coalesced order
        self.features = int(feats[:, 1].max()) + 1
        rowsum = np.bincount(feats[:, 0], minlength=n).astype(np.float64)
        r_inv = np.divide(1.0, rowsum, out=np.zeros(n), where=rowsum > 0)
        self.x = sparse(torch, feats[:, 0], feats[:, 1], r_inv[feats[:, 0]], (n, self.features), layout)

        # Adjacency: each undirected edge listed once -> both directions, + I, deduplicated,
        # then Kipf's normalize_adj: D^-1/2 (A + I) D^-1/2 with D the row sums of A + I.
        edges = np.loadtxt(os.path.join(data, "edges.csv"), delimiter=",", skiprows=1,
                           dtype=np.int64, ndmin=2)
        loops = np.arange(n)
        pairs = np.unique(np.stack([np.concatenate([edges[:, 0], edges[:, 1], loops]),
                                    np.concatenate([edges[:, 1], edges[:, 0], loops])], 1), axis=0)
        deg = np.bincount(pairs[:, 0], minlength=n).astype(np.float64)
        d_inv_sqrt = deg ** -0.5
        self.adj = sparse(torch, pairs[:, 0], pairs[:, 1], d_inv_sqrt[pairs[:, 0]] * d_inv_sqrt[pairs[:, 1]],
                          (n, n), layout)
        self.adj_nnz = len(pairs)


def sparse(torch, rows, cols, values, shape, layout):
    """A float32 sparse tensor from (row, col)-sorted, duplicate-free entries."""
    values = torch.tensor(values, dtype=torch.float32)
    if layout == "coo":
        indices = torch.from_numpy(np.stack([rows, cols]))
        return torch.sparse_coo_tensor(indices, values, shape, is_coalesced=True, check_invariants=False)
    crow = np.zeros(shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    return torch.sparse_csr_tensor(torch.from_numpy(crow).int(), torch.from_numpy(cols).int(), values,
                                   shape, check_invariants=False)


def sparse_dropout(torch, x, rate):
    """Kipf's sparse_dropout: keeps each stored entry with probability 1 - rate, drops the
    others from the sparse tensor (tf.sparse_retain) and scales the kept ones by 1/(1 - rate)."""
    keep = torch.rand(x.values().shape) >= rate
    kept = keep.nonzero().squeeze(1)  # positions of the kept entries, in order (found once)
    values = x.values()[kept] * (1.0 / (1.0 - rate))
    if x.layout == torch.sparse_coo:
        return torch.sparse_coo_tensor(x.indices()[:, kept], values, x.shape, is_coalesced=True,
                                       check_invariants=False)
    # CSR: the new row pointers are the running count of kept entries at the old ones.
    count = torch.cat([keep.new_zeros(1, dtype=torch.int32), keep.cumsum(0, dtype=torch.int32)])
    return torch.sparse_csr_tensor(count[x.crow_indices().long()], x.col_indices()[kept], values, x.shape,
                                   check_invariants=False)


class GCN:
    """Kipf's 2-layer GCN (gcn/models.py GCN, gcn/layers.py GraphConvolution) on a Cora."""

    def __init__(self, torch, cora):
        self.torch, self.cora, self.F = torch, cora, torch.nn.functional

        def glorot(fan_in, fan_out):  # Kipf's inits.glorot: U(-r, r), r = sqrt(6 / (in + out))
            return torch.nn.Parameter(torch.nn.init.xavier_uniform_(torch.empty(fan_in, fan_out)))

        self.w1, self.b1 = glorot(cora.features, HIDDEN), torch.nn.Parameter(torch.zeros(HIDDEN))
        self.w2, self.b2 = glorot(HIDDEN, cora.classes), torch.nn.Parameter(torch.zeros(cora.classes))
        self.opt = torch.optim.Adam([self.w1, self.b1, self.w2, self.b2], lr=LR)

    def forward(self, training):
        torch, cora, F = self.torch, self.cora, self.F
        # Layer 1: sparse inputs, ReLU.
        x = sparse_dropout(torch, cora.x, DROPOUT) if training else cora.x
        h = torch.relu(torch.sparse.mm(cora.adj, torch.sparse.mm(x, self.w1)) + self.b1)
        # Layer 2: dense inputs, no activation (the logits).
        h = F.dropout(h, DROPOUT, training=training)
        return torch.sparse.mm(cora.adj, h @ self.w2) + self.b2

    def loss(self, logits, split):
        idx = self.cora.idx[split]
        # Kipf: model.loss = weight_decay * tf.nn.l2_loss(W1) + masked softmax cross-entropy.
        return (self.F.cross_entropy(logits[idx], self.cora.labels[idx])
                + WEIGHT_DECAY * 0.5 * self.w1.pow(2).sum())

    def step(self):
        self.opt.zero_grad()
        loss = self.loss(self.forward(training=True), "train")
        loss.backward()
        self.opt.step()

    def evaluate(self, split):
        with self.torch.no_grad():
            logits = self.forward(training=False)
            idx = self.cora.idx[split]
            acc = (logits[idx].argmax(1) == self.cora.labels[idx]).float().mean().item()
            return self.loss(logits, split).item(), acc


class TorchGcn:
    """One PyTorch GCN for one thread count, built once, timed per round."""

    def __init__(self, torch, cora, threads):
        self.torch, self.threads = torch, threads
        torch.manual_seed(0)
        self.model = GCN(torch, cora)

    def run(self, min_ms):
        self.torch.set_num_threads(self.threads)
        return time_calls(self.model.step, min_ms)


def accuracy(torch, cora, seeds, threads):
    """Kipf's train.py loop per seed: (test accuracy, epochs run) of each seed."""
    torch.set_num_threads(threads)
    results = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model, cost_val = GCN(torch, cora), []
        for epoch in range(EPOCHS):
            model.step()
            cost_val.append(model.evaluate("val")[0])
            if epoch > EARLY_STOPPING and cost_val[-1] > np.mean(cost_val[-(EARLY_STOPPING + 1):-1]):
                break
        results.append((model.evaluate("test")[1], epoch + 1))
    return results


# ---------------------------------------------------------------------------------------
# CSR x dense


def spmm_flops(r, c, z, f):
    return 2 * z * f


def spmm_bytes(r, c, z, f):
    return z * (4 + 4) + (r + 1) * ROWPTR_BYTES + c * f * 4 + r * f * 4


class TorchSpmm:
    """One PyTorch CSR x dense product: A (int32 indices) and X built once, timed per round."""

    def __init__(self, torch, shape, threads):
        r, c, z, f = shape
        rng = np.random.default_rng(0)
        lin = np.sort(rng.choice(r * c, size=z, replace=False))  # distinct positions, row-major
        self.a = sparse(torch, lin // c, lin % c, rng.uniform(-1.0, 1.0, z), (r, c), "csr")
        self.x = torch.from_numpy(rng.standard_normal((c, f), dtype=np.float32))
        self.torch, self.threads = torch, threads

    def run(self, min_ms):
        torch = self.torch
        torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return time_calls(lambda: torch.sparse.mm(self.a, self.x), min_ms)


# ---------------------------------------------------------------------------------------
# simdnn, rounds, output


def last_json(text):
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def simdnn_bench(binary, sub):
    """simdnn's median seconds per call for `bench SUB... --json`, or None (reported on stderr)."""
    cmd = [binary, "bench"] + [str(a) for a in sub] + ["--json"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"# simdnn failed: {' '.join(cmd[1:])}: {e}", file=sys.stderr)
        return None
    result = last_json(out.stdout) if out.returncode == 0 else None
    if result is not None and isinstance(result.get("median_ms"), (int, float)):
        return result["median_ms"] * 1e-3
    lines = [ln.strip() for ln in (out.stderr.strip() or out.stdout.strip()).splitlines() if ln.strip()]
    why = " / ".join(lines[:2]) or f"exit status {out.returncode}"
    if out.returncode == 0:
        why = f"no JSON object with median_ms in its output ({why})"
    print(f"# simdnn failed: {' '.join(cmd[1:])}: {why}", file=sys.stderr)
    return None


def rounds(binary, sub, torch_case, args):
    """Alternating rounds; each peer's median of its per-round medians in ms (None if none)."""
    times = {"simdnn": [], "torch": []}
    for _ in range(args.rounds):
        s = binary and simdnn_bench(binary, sub)
        if s:
            times["simdnn"].append(s)
        elif binary:
            binary = None  # failed: reported once, not retried in the later rounds
        times["torch"].append(torch_case.run(args.min_ms))
    ms = {k: statistics.median(v) * 1e3 if v else None for k, v in times.items()}
    ratio = ms["simdnn"] / ms["torch"] if ms["simdnn"] and ms["torch"] else None
    return ms, ratio, len(times["simdnn"])


def split(text):
    return [v for v in text.split(",") if v]


def fmt(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def table(header):
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header), flush=True)


def row_out(cells):
    print("| " + " | ".join(map(str, cells)) + " |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sections", default="gcn", help="comma-separated subset of gcn,spmm,accuracy [default: gcn]")
    p.add_argument("--spmm", action="store_true", help="add the spmm section")
    p.add_argument("--accuracy", action="store_true", help="add the accuracy section (PyTorch only)")
    p.add_argument("--data", default="/work/shared/data/cora", help="Cora's plain files (nodes.csv, edges.csv, "
                   "features.txt) [default: /work/shared/data/cora]")
    p.add_argument("--layout", default="coo", choices=LAYOUTS, help="PyTorch's sparse layout for X and Â in "
                   "the gcn and accuracy sections [default: coo]")
    p.add_argument("--rows", default="2708,2708,2708,100000", help="spmm: comma-separated rows R")
    p.add_argument("--cols", default="2708,2708,1433,100000", help="spmm: comma-separated columns C")
    p.add_argument("--nnz", default="13264,13264,49216,1000000", help="spmm: comma-separated nonzeros Z")
    p.add_argument("--features", default="16,7,16,64", help="spmm: comma-separated dense columns F")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per configuration (median reported)")
    p.add_argument("--min-ms", type=float, default=300.0, help="minimum PyTorch measuring time per round")
    p.add_argument("--seeds", type=int, default=10, help="accuracy: seeds to train [default: 10]")
    p.add_argument("--simdnn", default=os.path.join(ROOT, "target", "release", "simdnn"),
                   help="simdnn binary [default: target/release/simdnn]")
    p.add_argument("--json", action="store_true", help="emit JSON lines")
    args = p.parse_args()
    sections = split(args.sections) + ["spmm"] * args.spmm + ["accuracy"] * args.accuracy
    sections = [s for s in SECTIONS if s in sections]  # fixed order, no repeats
    if bad := [s for s in split(args.sections) if s not in SECTIONS]:
        p.error(f"unknown section(s) {bad}; sections: {', '.join(SECTIONS)}")
    threads = [int(v) for v in split(args.threads)]
    dims = [[int(v) for v in split(getattr(args, k))] for k in ("rows", "cols", "nnz", "features")]
    count = max(map(len, dims))
    if any(len(d) not in (1, count) for d in dims):
        p.error("--rows, --cols, --nnz, --features: give each one value or the same number of values")
    shapes = list(zip(*[d * count if len(d) == 1 else d for d in dims]))
    if bad := [s for s in shapes if s[2] > s[0] * s[1]]:
        p.error(f"more nonzeros than positions in (R, C, Z, F) {bad}")
    if not threads or args.rounds < 1 or args.seeds < 1:
        p.error("--threads, --rounds and --seeds need at least one")

    import torch
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")

    binary = args.simdnn if os.access(args.simdnn, os.X_OK) else None
    if binary is None and sections != ["accuracy"]:
        print(f"# skipping simdnn: no binary at {args.simdnn}", file=sys.stderr)
    versions = (f"# torch {torch.__version__} (oneDNN/MKLDNN available: {torch.backends.mkldnn.is_available()}, "
                f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()})")
    if args.json:
        print(versions, file=sys.stderr)
    else:
        print(versions)

    cora = Cora(torch, args.data, args.layout) if {"gcn", "accuracy"} & set(sections) else None

    if "gcn" in sections:
        if not args.json:
            print(f"\n### gcn: one training step on Cora ({cora.n} nodes, {cora.features} features, "
                  f"{cora.adj_nnz} nonzeros in Â; PyTorch sparse layout {args.layout})\n")
            table(["threads", "simdnn ms", "torch ms", "simdnn/torch time"])
        for n in threads:
            ms, ratio, ok = rounds(binary, ["gcn", "--data", args.data, "--threads", n],
                                   TorchGcn(torch, cora, n), args)
            if args.json:
                print(json.dumps({"section": "gcn", "threads": n, "layout": args.layout, "simdnn_ms": ms["simdnn"],
                                  "torch_ms": ms["torch"], "ratio": ratio, "simdnn_rounds": ok,
                                  "rounds": args.rounds}), flush=True)
            else:
                row_out([n, fmt(ms["simdnn"], ".3f"), fmt(ms["torch"], ".3f"), fmt(ratio, ".2f")])

    if "spmm" in sections:
        if not args.json:
            print("\n### spmm: Y = A·X, A CSR R x C with Z nonzeros, X dense C x F, float32\n")
            table(["R", "C", "Z", "F", "threads", "simdnn ms", "simdnn GFLOP/s", "simdnn GB/s",
                   "torch ms", "torch GFLOP/s", "torch GB/s", "simdnn/torch time"])
        for shape in shapes:
            r, c, z, f = shape
            for n in threads:
                sub = ["spmm", "--rows", r, "--cols", c, "--nnz", z, "--features", f, "--threads", n]
                ms, ratio, ok = rounds(binary, sub, TorchSpmm(torch, shape, n), args)
                gf = {k: spmm_flops(*shape) / (v * 1e-3) / 1e9 if v else None for k, v in ms.items()}
                gb = {k: spmm_bytes(*shape) / (v * 1e-3) / 1e9 if v else None for k, v in ms.items()}
                if args.json:
                    print(json.dumps({"section": "spmm", "rows": r, "cols": c, "nnz": z, "features": f,
                                      "threads": n, "simdnn_ms": ms["simdnn"], "simdnn_gflops": gf["simdnn"],
                                      "simdnn_gbps": gb["simdnn"], "torch_ms": ms["torch"],
                                      "torch_gflops": gf["torch"], "torch_gbps": gb["torch"], "ratio": ratio,
                                      "simdnn_rounds": ok, "rounds": args.rounds}), flush=True)
                else:
                    row_out([r, c, z, f, n, fmt(ms["simdnn"], ".4f"), fmt(gf["simdnn"], ".2f"),
                             fmt(gb["simdnn"], ".2f"), fmt(ms["torch"], ".4f"), fmt(gf["torch"], ".2f"),
                             fmt(gb["torch"], ".2f"), fmt(ratio, ".2f")])

    if "accuracy" in sections:
        n = min(threads)
        start = time.perf_counter()
        results = accuracy(torch, cora, args.seeds, n)
        seconds = time.perf_counter() - start
        accs = [a for a, _ in results]
        mean, std = statistics.mean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0
        if args.json:
            print(json.dumps({"section": "accuracy", "seeds": args.seeds, "threads": n, "layout": args.layout,
                              "test_accuracy_mean": mean, "test_accuracy_std": std, "test_accuracy": accs,
                              "epochs": [e for _, e in results], "seconds": seconds}), flush=True)
        else:
            epochs = [e for _, e in results]
            print(f"\n### accuracy: PyTorch GCN, Kipf's training ({EPOCHS} epochs, early stopping "
                  f"{EARLY_STOPPING}), {args.seeds} seeds, {n} threads\n")
            print(f"test accuracy {100 * mean:.1f} % ± {100 * std:.1f} (mean ± sample std); "
                  f"epochs run {min(epochs)}..{max(epochs)}; {seconds:.1f} s in all", flush=True)


if __name__ == "__main__":
    main()
