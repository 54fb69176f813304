#!/usr/bin/env python3
"""Peer benchmark: whole-model inference of zoo networks in simdnn, onnxruntime and PyTorch.

For each model, batch size and thread count: simdnn through `simdnn bench model MODEL
--json` (a subprocess; random weights, the model built once, the per-call state reused),
PyTorch through torchvision's model (eval mode, inference_mode, torch.set_num_threads(T)),
and onnxruntime through the same torchvision model exported to ONNX in memory
(CPUExecutionProvider, ORT_ENABLE_ALL, intra_op_num_threads=T, inter_op_num_threads=1).
The Python peers are warmed up twice, then repeated until at least --min-ms have passed
and at least 5 runs were made; the median time per batch is used. Ratios are the peer's
median time over simdnn's (> 1 means simdnn is faster). Models: any that torchvision has
(`resnet50`, `densenet121`, `squeezenet1_1`, `vgg16`, ...), at their native 224x224.

Usage:
    cargo build --release && python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/zoo_peers.py                      # Markdown table
    python3 benches/peers/zoo_peers.py --models resnet18 --batch 1 8 --threads 2 --json
"""
import os
import sys

_SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _SCRUB):
    _env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    os.execve(sys.executable, [sys.executable] + sys.argv, _env)

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_MODELS = ["resnet18", "resnet50", "densenet121", "squeezenet1_1", "vgg16"]


def median_ms(f, min_ms):
    f(), f()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start) * 1e3 < min_ms:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def simdnn_ms(binary, model, batch, threads, min_ms):
    cmd = [binary, "bench", "model", model, "--batch", str(batch), "--threads", str(threads),
           "--min-ms", str(min_ms), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]


def torch_model(model):
    import torch
    import torchvision
    net = getattr(torchvision.models, model)(weights=None).eval()
    return torch, net


def torch_ms(model, batch, threads, min_ms):
    torch, net = torch_model(model)
    torch.set_num_threads(threads)
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        return median_ms(lambda: net(x), min_ms)


def ort_ms(model, batch, threads, min_ms):
    import numpy as np
    import onnxruntime as ort
    torch, net = torch_model(model)
    x = torch.randn(batch, 3, 224, 224)
    buf = io.BytesIO()
    torch.onnx.export(net, (x,), buf, input_names=["input"], output_names=["output"], dynamo=False)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"input": x.numpy().astype(np.float32)}
    return median_ms(lambda: session.run(None, feed), min_ms)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", nargs="+", type=int, default=[2])
    parser.add_argument("--min-ms", type=int, default=2000)
    parser.add_argument("--simdnn", default=os.path.join(ROOT, "target", "release", "simdnn"))
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = parser.parse_args()
    if not args.json:
        print("| model | batch | threads | simdnn ms | onnxruntime ms | PyTorch ms | ort / simdnn | torch / simdnn |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model in args.models:
        for batch in args.batch:
            for threads in args.threads:
                row = {"model": model, "batch": batch, "threads": threads}
                for peer, run in (("simdnn", lambda: simdnn_ms(args.simdnn, model, batch, threads, args.min_ms)),
                                  ("ort", lambda: ort_ms(model, batch, threads, args.min_ms)),
                                  ("torch", lambda: torch_ms(model, batch, threads, args.min_ms))):
                    try:
                        row[peer] = run()
                    except Exception as e:  # a missing peer leaves its cell blank
                        print(f"{peer} {model} batch {batch}: {e}", file=sys.stderr)
                        row[peer] = None
                if args.json:
                    print(json.dumps(row), flush=True)
                    continue
                s = row["simdnn"]
                cell = lambda v: f"{v:.1f}" if v is not None else "–"  # noqa: E731
                ratio = lambda v: f"{v / s:.2f}" if v is not None and s else "–"  # noqa: E731
                print(f"| {model} | {batch} | {threads} | {cell(s)} | {cell(row['ort'])} | {cell(row['torch'])} "
                      f"| {ratio(row['ort'])} | {ratio(row['torch'])} |", flush=True)


if __name__ == "__main__":
    main()
