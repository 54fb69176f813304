#!/usr/bin/env python3
"""Peer benchmark: LeNet-5 training epochs on MNIST in simdnn and PyTorch, side by side.

Both train the same network (ReLU, max pooling, C5 as a 400->120 fully connected layer,
61,706 parameters), on the same 60,000 images (padded to 32x32, normalised with mean
0.1307 and std 0.3081), with the same batch size (default 16, simdnn's default), optimizer
(Adam, or SGD with Nesterov momentum 0.9), learning rate and per-step cosine schedule over
the run, on the same thread count.
Seconds per epoch are the training pass alone (data loading and evaluation excluded):
simdnn reports them in `simdnn train lenet5 --json`; the PyTorch worker (a subprocess of
this script, torch.set_num_threads(T)) times its own loop with a DataLoader-free index
shuffle over tensors already in memory, which is the fastest way to feed PyTorch here.
The two alternate for --rounds rounds; medians are reported with the peak resident memory
of each process (from wait4's rusage).

Usage:
    cargo build --release && python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/lenet5_peers.py --data ../shared/data/mnist --epochs 1 --rounds 3
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_idx(path):
    import numpy as np

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    sys.exit(f"{stem}[.gz] not found in {data_dir}")


def torch_worker(args):
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def load(prefix):
        x = read_idx(find(args.data, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
        y = read_idx(find(args.data, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        x = (x - 0.1307) / 0.3081
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-0.1307 / 0.3081)
        return torch.from_numpy(x[:, None].copy()), torch.from_numpy(y.copy())

    xtr, ytr = load("train")
    xte, yte = load("t10k")

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.c5 = nn.Linear(400, 120)
            self.f6 = nn.Linear(120, 84)
            self.out = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.c1(x)), 2)
            x = F.max_pool2d(F.relu(self.c3(x)), 2)
            x = torch.flatten(x, 1)
            return self.out(F.relu(self.f6(F.relu(self.c5(x)))))

    net = LeNet5()
    assert sum(p.numel() for p in net.parameters()) == 61706
    if args.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
    steps = args.epochs * ((len(xtr) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    seconds = []
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        start = time.perf_counter()
        for i in range(0, len(xtr), args.batch):
            idx = perm[i: i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
        seconds.append(time.perf_counter() - start)
    net.eval()
    with torch.inference_mode():
        correct = sum((net(xte[i: i + 1000]).argmax(1) == yte[i: i + 1000]).sum().item() for i in range(0, len(xte), 1000))
    print(json.dumps({"seconds_per_epoch": statistics.mean(seconds), "test_accuracy": correct / len(xte),
                      "torch": torch.__version__}))


def run_measured(cmd):
    """Runs cmd with its own rusage; returns (last JSON line, peak RSS MiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]), usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "mnist"))
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    binary = os.path.join(ROOT, "target", "release", "simdnn")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: run cargo build --release first")
    common = ["--data", args.data, "--epochs", str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr),
              "--optimizer", args.optimizer, "--threads", str(args.threads), "--seed", str(args.seed)]
    # The same schedule on both sides: cosine annealing over the whole run, per step.
    ours_cmd = [binary, "train", "lenet5", *common, "--schedule", "cosine", "--out", "/tmp/simdnn-lenet5-peers", "--json"]
    torch_cmd = [sys.executable, os.path.abspath(__file__), *common, "--torch-worker"]
    results = {"simdnn": [], "torch": []}
    for r in range(args.rounds):
        for name, cmd in (("simdnn", ours_cmd), ("torch", torch_cmd)):
            out, rss = run_measured(cmd)
            results[name].append((out["seconds_per_epoch"], out["test_accuracy"], rss, out))
            print(f"round {r + 1} {name:>6}: {out['seconds_per_epoch']:.2f} s/epoch, "
                  f"test accuracy {100 * out['test_accuracy']:.2f}%, peak RSS {rss:.0f} MiB", file=sys.stderr)
    med = {k: statistics.median(v[0] for v in vals) for k, vals in results.items()}
    print(f"| | simdnn | PyTorch {results['torch'][0][3].get('torch', '')} |")
    print("|---|---|---|")
    print(f"| seconds per epoch (median of {args.rounds}) | {med['simdnn']:.2f} | {med['torch']:.2f} |")
    for label, i, fmt in (("test accuracy after the run", 1, "{:.2f}%"), ("peak RSS (MiB)", 2, "{:.0f}")):
        vals = {k: statistics.median(v[i] for v in vs) * (100 if i == 1 else 1) for k, vs in results.items()}
        print(f"| {label} | {fmt.format(vals['simdnn'])} | {fmt.format(vals['torch'])} |")
    print(f"\nsimdnn time / PyTorch time: {med['simdnn'] / med['torch']:.3f} "
          f"(batch {args.batch}, {args.optimizer} lr {args.lr}, {args.threads} thread(s), {args.epochs} epoch(s) per run)")


if __name__ == "__main__":
    main()
