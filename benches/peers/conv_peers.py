#!/usr/bin/env python3
"""Peer benchmark: 2-D convolution forward in simdnn, onnxruntime and PyTorch, in one run.

Measures NCHW float32 convolution with bias and no activation, for each shape, batch size
and thread count: simdnn through `simdnn bench conv --prepared --json` (a subprocess; its
weights prepared once, as onnxruntime prepacks them at session creation; --unprepared
times the per-call weight transform too), onnxruntime
through a one-node Conv model built in memory (CPUExecutionProvider, ORT_ENABLE_ALL,
intra_op_num_threads=T, inter_op_num_threads=1, preallocated input and output bound with
io_binding), and PyTorch through torch.nn.functional.conv2d under inference_mode with
torch.set_num_threads(T). The Python peers are warmed up twice, then repeated until at least
--min-ms have passed and at least 5 runs were made; the median time per call is used.
GFLOP/s = 2*N*K*C*R*R*Hout*Wout / median for everyone (direct-equivalent, whatever the
algorithm). Ratios are simdnn GFLOP/s over the peer's (> 1 means simdnn is faster).
A peer that cannot be imported, a missing simdnn binary or a failed simdnn run is reported
on stderr and left blank ("–") in the table.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment (by re-executing
this script) before any library loads, as in gemm_numpy.py.

Usage:
    cargo build --release && python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/conv_peers.py                       # Markdown table
    python3 benches/peers/conv_peers.py --json                # JSON lines
    python3 benches/peers/conv_peers.py --shapes 3x3-512-7 --batch 1 --threads 1 \
        --min-ms 100 --peers ort,torch
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

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name: (C, K, H, W, R, stride, pad)
SHAPES = {
    "3x3-64-56": (64, 64, 56, 56, 3, 1, 1), "3x3-128-28": (128, 128, 28, 28, 3, 1, 1),
    "3x3-256-14": (256, 256, 14, 14, 3, 1, 1), "3x3-512-7": (512, 512, 7, 7, 3, 1, 1),
    "3x3-3to64-224": (3, 64, 224, 224, 3, 1, 1), "3x3-64-224": (64, 64, 224, 224, 3, 1, 1),
    "7x7s2-3to64-224": (3, 64, 224, 224, 7, 2, 3), "1x1-256to64-56": (256, 64, 56, 56, 1, 1, 0),
    "11x11s4-3to96-227": (3, 96, 227, 227, 11, 4, 0), "5x5-96to256-27": (96, 256, 27, 27, 5, 1, 2),
}
PEERS = ("simdnn", "ort", "torch")


def time_calls(f, min_ms):
    f(), f()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start) * 1e3 < min_ms:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ort_conv(ort, x, w, b, stride, pad, threads, min_ms):
    from onnx import TensorProto, helper, numpy_helper
    (n, c, h, wd), k, r = x.shape, w.shape[0], w.shape[2]
    oh, ow = (h + 2 * pad - r) // stride + 1, (wd + 2 * pad - r) // stride + 1
    node = helper.make_node("Conv", ["X", "W", "B"], ["Y"], kernel_shape=[r, r],
                            strides=[stride, stride], pads=[pad] * 4)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n, c, h, wd])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, k, oh, ow])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    # IR version 8 goes with opset 17; any onnxruntime >= 1.13 accepts both.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    y = np.empty((n, k, oh, ow), dtype=np.float32)
    io = sess.io_binding()
    io.bind_cpu_input("X", x)
    io.bind_ortvalue_output("Y", ort.OrtValue.ortvalue_from_numpy(y))
    return time_calls(lambda: sess.run_with_iobinding(io), min_ms)


def torch_conv(torch, x, w, b, stride, pad, threads, min_ms):
    torch.set_num_threads(threads)
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
    with torch.inference_mode():
        return time_calls(lambda: torch.nn.functional.conv2d(xt, wt, bt, stride, pad), min_ms)


def simdnn_conv(binary, algo, row, min_ms, prepared):
    cmd = [binary, "bench", "conv", "--algo", algo, "--min-ms", str(round(min_ms)), "--json"]
    if prepared:
        cmd.append("--prepared")
    for key in ("n", "c", "h", "w", "k", "r", "stride", "pad", "threads"):
        cmd += [f"--{key}", str(row[key])]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode == 0:
        return json.loads(out.stdout)
    why = " / ".join(out.stderr.strip().splitlines()[:2])
    print(f"# simdnn failed: {' '.join(cmd[1:])}: {why}", file=sys.stderr)


def load_peers(wanted, binary):
    mods, info = {}, {}
    if "ort" in wanted:
        try:
            import onnx
            import onnxruntime
            mods["ort"] = onnxruntime
            info["onnx"], info["onnxruntime"] = onnx.__version__, onnxruntime.__version__
        except ImportError as e:
            print(f"# skipping onnxruntime: {e}", file=sys.stderr)
    if "torch" in wanted:
        try:
            import torch
            mods["torch"] = torch
            info.update(torch=torch.__version__, torch_mkldnn=torch.backends.mkldnn.is_available(),
                        torch_cpu_capability=torch.backends.cpu.get_cpu_capability())
        except ImportError as e:
            print(f"# skipping torch: {e}", file=sys.stderr)
    if "simdnn" in wanted and os.access(binary, os.X_OK):
        mods["simdnn"] = binary
    elif "simdnn" in wanted:
        print(f"# skipping simdnn: no binary at {binary}", file=sys.stderr)
    return mods, info


def split(text):
    return [v for v in text.split(",") if v]


def fmt(v, spec=".1f"):
    return "–" if v is None else format(v, spec)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shape names")
    p.add_argument("--batch", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--peers", default=",".join(PEERS), help="subset of simdnn,ort,torch")
    p.add_argument("--min-ms", type=float, default=500.0, help="minimum measuring time per case")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "simdnn"))
    p.add_argument("--algo", default="auto", help="simdnn's --algo (auto, im2col, winograd...)")
    p.add_argument("--json", action="store_true", help="emit JSON lines")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds per case (median reported)")
    p.add_argument("--unprepared", action="store_true",
                   help="time simdnn transforming its weights on every call (by default they are prepared "
                        "once, as onnxruntime prepacks its weights when the session is created)")
    args = p.parse_args()
    names, wanted = split(args.shapes), split(args.peers)
    if bad := [s for s in names if s not in SHAPES] + [s for s in wanted if s not in PEERS]:
        p.error(f"unknown shape(s)/peer(s) {bad}; shapes: {', '.join(SHAPES)}")
    mods, info = load_peers(wanted, args.binary)

    if args.json:
        print(json.dumps({"versions": info}), flush=True)
    else:
        print(f"# onnx {info.get('onnx', '–')}, onnxruntime {info.get('onnxruntime', '–')}, "
              f"torch {info.get('torch', '–')} (oneDNN/MKLDNN available: "
              f"{info.get('torch_mkldnn', '–')}, ATen CPU capability "
              f"{info.get('torch_cpu_capability', '–')}), numpy {np.__version__}\n")
        print("| shape | N | threads | simdnn GFLOP/s (algo) | onnxruntime GFLOP/s "
              "| torch GFLOP/s | simdnn/ort | simdnn/torch |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")

    rng = np.random.default_rng(0)
    for name in names:
        c, k, h, w, r, stride, pad = SHAPES[name]
        oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - r) // stride + 1
        wt = rng.uniform(-1, 1, (k, c, r, r)).astype(np.float32)
        bias = rng.uniform(-1, 1, k).astype(np.float32)
        for n in map(int, split(args.batch)):
            x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
            flop = 2.0 * n * k * c * r * r * oh * ow
            for t in map(int, split(args.threads)):
                row = dict(shape=name, n=n, c=c, k=k, h=h, w=w, r=r, stride=stride, pad=pad, threads=t)
                # Rounds alternate simdnn and the peers; each side's median time over the
                # rounds is reported (the machine's load drifts within a run).
                times = {}
                for _ in range(args.rounds):
                    s = "simdnn" in mods and simdnn_conv(mods["simdnn"], args.algo, row, args.min_ms,
                                                         not args.unprepared)
                    if s:
                        times.setdefault("simdnn", []).append(s["median_ms"] * 1e-3)
                        row["simdnn"] = {f: s.get(f) for f in ("algo", "isa")}
                    for peer, fn in (("ort", ort_conv), ("torch", torch_conv)):
                        if peer in mods:
                            times.setdefault(peer, []).append(fn(mods[peer], x, wt, bias, stride, pad, t, args.min_ms))
                gf = {p: flop / statistics.median(ts) / 1e9 for p, ts in times.items()}
                for p, ts in times.items():
                    row.setdefault(p, {}).update(median_ms=statistics.median(ts) * 1e3, gflops=gf[p])
                sd = gf.get("simdnn")
                ratio = {p: sd / gf[p] if sd and p in gf else None for p in ("ort", "torch")}
                if args.json:
                    print(json.dumps({**row, "simdnn_over_ort": ratio["ort"],
                                      "simdnn_over_torch": ratio["torch"]}), flush=True)
                else:
                    algo = f" ({row['simdnn']['algo']})" if "simdnn" in row else ""
                    cells = [name, n, t, fmt(sd) + algo, fmt(gf.get("ort")), fmt(gf.get("torch")),
                             fmt(ratio["ort"], ".2f"), fmt(ratio["torch"], ".2f")]
                    print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
