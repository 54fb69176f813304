#!/usr/bin/env python3
"""Peer benchmark: recurrent layers (RNN, LSTM, GRU) in simdnn and PyTorch, side by side.

For each cell, size, thread count and mode this times a stack of --layers unidirectional
layers on a time-major float32 input [T, B, I] of randn values:
- simdnn through `simdnn bench rnn --cell C --input I --hidden H --seq T --batch B
  --layers L [--backward] --threads N --json` (a subprocess; the last line of its stdout
  that parses as JSON is used, its `median_ms`);
- PyTorch through torch.nn.RNN (tanh) / nn.LSTM / nn.GRU with torch.set_num_threads(N):
  "forward" runs the module under torch.inference_mode(); "backward" runs the forward
  with requires_grad on the input too, then y.backward(dy) for a fixed random dy (the
  gradient of sum(y*dy)), so weight and input gradients are both computed, as simdnn does;
  parameter gradients accumulate from call to call (never zeroed, which costs nothing).
  Warmed up twice, then repeated until at least --min-ms have passed and at least 5 runs
  were made; the median time per call is used.
Rounds alternate the two: each round runs simdnn, then PyTorch, on the configuration; each
peer's time is the median over the rounds of its per-round medians (the machine's load
drifts within a run).
FLOPs are counted the same way for both: per layer and direction, the forward is
2*T*B*G*H*(in + H) with G = 1 (rnn), 4 (lstm), 3 (gru), in = I for the first layer and
D*H after it; forward+backward is 3x the forward. GFLOP/s = FLOPs / median time. The ratio
is simdnn's time over PyTorch's (< 1 means simdnn is faster).
A missing simdnn binary or a failed simdnn run is reported on stderr and left blank ("–").
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (by re-executing
this script) before any library loads, as in gemm_numpy.py.

Usage:
    cargo build --release && python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/rnn_peers.py                        # Markdown table
    python3 benches/peers/rnn_peers.py --json                 # JSON lines
    python3 benches/peers/rnn_peers.py --cells lstm --hidden 128,512 --threads 1 \
        --modes forward --rounds 5 --min-ms 200
"""
import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _SCRUB):
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MODES = ("forward", "backward")


def flops(cell, inp, hidden, seq, batch, layers, mode, directions=1):
    fwd = 0
    for layer in range(layers):
        width = inp if layer == 0 else directions * hidden
        fwd += directions * 2 * seq * batch * GATES[cell] * hidden * (width + hidden)
    return fwd * (3 if mode == "backward" else 1)


def time_calls(f, min_ms):
    f(), f()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start) * 1e3 < min_ms:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class TorchCase:
    """One PyTorch configuration: the module and its inputs, built once, timed per round."""

    def __init__(self, torch, row):
        self.torch = torch
        torch.manual_seed(0)
        kw = dict(input_size=row["input"], hidden_size=row["hidden"], num_layers=row["layers"])
        self.net = {"rnn": lambda: torch.nn.RNN(nonlinearity="tanh", **kw),
                    "lstm": lambda: torch.nn.LSTM(**kw), "gru": lambda: torch.nn.GRU(**kw)}[row["cell"]]()
        self.x = torch.randn(row["seq"], row["batch"], row["input"])
        self.dy = torch.randn(row["seq"], row["batch"], row["hidden"])
        self.threads, self.backward = row["threads"], row["mode"] == "backward"
        if self.backward:
            self.x.requires_grad_()

    def run(self, min_ms):
        torch = self.torch
        torch.set_num_threads(self.threads)
        if self.backward:
            def step():
                y, _ = self.net(self.x)
                y.backward(self.dy)
            return time_calls(step, min_ms)
        with torch.inference_mode():
            return time_calls(lambda: self.net(self.x), min_ms)


def last_json(text):
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def simdnn_rnn(binary, row):
    """simdnn's median seconds per call, or None (reported on stderr) when the run fails."""
    cmd = [binary, "bench", "rnn", "--cell", row["cell"], "--input", str(row["input"]),
           "--hidden", str(row["hidden"]), "--seq", str(row["seq"]), "--batch", str(row["batch"]),
           "--layers", str(row["layers"]), "--threads", str(row["threads"]), "--json"]
    if row["mode"] == "backward":
        cmd.insert(-1, "--backward")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        print(f"# simdnn failed: {' '.join(cmd[1:])}: {e}", file=sys.stderr)
        return None
    result = last_json(out.stdout) if out.returncode == 0 else None
    if result is not None and isinstance(result.get("median_ms"), (int, float)):
        return result["median_ms"] * 1e-3
    lines = [ln for ln in (out.stderr.strip() or out.stdout.strip()).splitlines() if ln.strip()]
    why = " / ".join(lines[:2]) or f"exit status {out.returncode}"
    if out.returncode == 0:
        why = f"no JSON object with median_ms in its output ({why})"
    print(f"# simdnn failed: {' '.join(cmd[1:])}: {why}", file=sys.stderr)
    return None


def split(text):
    return [v for v in text.split(",") if v]


def fmt(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", default="rnn,lstm,gru", help="comma-separated subset of rnn,lstm,gru")
    p.add_argument("--input", default="128", help="comma-separated input sizes I")
    p.add_argument("--hidden", default="256", help="comma-separated hidden sizes H")
    p.add_argument("--seq", default="100", help="comma-separated sequence lengths T")
    p.add_argument("--batch", default="32", help="comma-separated batch sizes B")
    p.add_argument("--layers", default="1", help="comma-separated layer counts")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--modes", default="forward,backward", help="comma-separated subset of forward,backward")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per configuration (median reported)")
    p.add_argument("--min-ms", type=float, default=300.0, help="minimum PyTorch measuring time per round")
    p.add_argument("--simdnn", default=os.path.join(ROOT, "target", "release", "simdnn"),
                   help="simdnn binary [default: target/release/simdnn]")
    p.add_argument("--json", action="store_true", help="emit JSON lines")
    args = p.parse_args()
    cells, modes = split(args.cells), split(args.modes)
    if bad := [c for c in cells if c not in GATES] + [m for m in modes if m not in MODES]:
        p.error(f"unknown cell(s)/mode(s) {bad}; cells: {', '.join(GATES)}; modes: {', '.join(MODES)}")
    ints = {k: [int(v) for v in split(getattr(args, k))]
            for k in ("input", "hidden", "seq", "batch", "layers", "threads")}

    import torch

    binary = args.simdnn if os.access(args.simdnn, os.X_OK) else None
    if binary is None:
        print(f"# skipping simdnn: no binary at {args.simdnn}", file=sys.stderr)
    versions = (f"# torch {torch.__version__} (oneDNN/MKLDNN available: {torch.backends.mkldnn.is_available()}, "
                f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()})")
    if args.json:
        print(versions, file=sys.stderr)
    else:
        print(versions + "\n")
        print("| cell | I | H | T | B | layers | threads | mode | simdnn ms | simdnn GFLOP/s "
              "| torch ms | torch GFLOP/s | simdnn/torch time |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    for cell in cells:
        for inp in ints["input"]:
            for hidden in ints["hidden"]:
                for seq in ints["seq"]:
                    for batch in ints["batch"]:
                        for layers in ints["layers"]:
                            for threads in ints["threads"]:
                                for mode in modes:
                                    row = dict(cell=cell, input=inp, hidden=hidden, seq=seq, batch=batch,
                                               layers=layers, threads=threads, mode=mode)
                                    report(row, binary, TorchCase(torch, row), args)


def report(row, binary, torch_case, args):
    times = {"simdnn": [], "torch": []}
    for _ in range(args.rounds):
        s = binary and simdnn_rnn(binary, row)
        if s:
            times["simdnn"].append(s)
        elif binary:
            binary = None  # failed: reported once, not retried in the later rounds
        times["torch"].append(torch_case.run(args.min_ms))
    work = flops(row["cell"], row["input"], row["hidden"], row["seq"], row["batch"], row["layers"], row["mode"])
    ms = {k: statistics.median(v) * 1e3 if v else None for k, v in times.items()}
    gf = {k: work / (v * 1e-3) / 1e9 if v else None for k, v in ms.items()}
    ratio = ms["simdnn"] / ms["torch"] if ms["simdnn"] and ms["torch"] else None
    if args.json:
        print(json.dumps({**row, "simdnn_ms": ms["simdnn"], "torch_ms": ms["torch"], "ratio": ratio,
                          "simdnn_gflops": gf["simdnn"], "torch_gflops": gf["torch"],
                          "simdnn_rounds": len(times["simdnn"]), "rounds": args.rounds}), flush=True)
    else:
        cells = [row[k] for k in ("cell", "input", "hidden", "seq", "batch", "layers", "threads", "mode")]
        cells += [fmt(ms["simdnn"], ".2f"), fmt(gf["simdnn"]), fmt(ms["torch"], ".2f"), fmt(gf["torch"]),
                  fmt(ratio, ".2f")]
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
