#!/usr/bin/env python3
"""Side-by-side SGEMM: simdnn (`simdnn bench gemm --json`) against numpy/OpenBLAS, in one run.

For each shape and thread count the two are timed alternately for --rounds rounds (so both
see the same machine load), and the median of each side's medians is reported with the
ratio simdnn/OpenBLAS in GFLOP/s (> 1 means simdnn is faster). Prints a Markdown table.

    cargo build --release
    python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/compare_gemm.py [--shapes MxNxK,...] [--threads 1,2] [--rounds 3]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemm_numpy  # noqa: E402  (scrubs OPENBLAS_* and re-execs before numpy loads)

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def simdnn_gemm(binary, m, n, k, threads, min_ms):
    out = subprocess.run(
        [binary, "bench", "gemm", "--m", str(m), "--n", str(n), "--k", str(k),
         "--threads", str(threads), "--min-ms", str(int(min_ms)), "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", type=gemm_numpy.parse_shapes, default=gemm_numpy.DEFAULT_SHAPES)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-ms", type=float, default=500.0)
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "simdnn"))
    args = p.parse_args()

    _, ob = gemm_numpy.blas_info()
    print(f"OpenBLAS {ob.get('version')} core={ob.get('architecture')}, numpy {np.__version__}")
    threads = [int(x) for x in args.threads.split(",") if x]
    peak = {}
    for t in threads:
        out = subprocess.run([args.binary, "bench", "peak", "--threads", str(t), "--json"],
                             check=True, capture_output=True, text=True).stdout
        peak[t] = json.loads(out)["gflops"]
        print(f"simdnn FMA peak, {t} thread(s): {peak[t]:.1f} GFLOP/s")
    print()
    print("| M×N×K | threads | simdnn GFLOP/s | % of peak | OpenBLAS GFLOP/s | ratio | simdnn ISA |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for t in threads:
        for m, n, k in args.shapes:
            ours, peer, isa = [], [], "?"
            for _ in range(args.rounds):
                r = simdnn_gemm(args.binary, m, n, k, t, args.min_ms)
                ours.append(r["median_ms"] / 1e3)
                isa = r["isa"]
                with threadpool_limits(limits=t, user_api="blas"):
                    peer.append(gemm_numpy.time_gemm(m, n, k, args.min_ms, rng))
            flop = 2.0 * m * n * k
            g_ours, g_peer = flop / statistics.median(ours) / 1e9, flop / statistics.median(peer) / 1e9
            print(f"| {m}×{n}×{k} | {t} | {g_ours:.1f} | {100 * g_ours / peak[t]:.0f}% | {g_peer:.1f} "
                  f"| {g_ours / g_peer:.2f} | {isa} |", flush=True)


if __name__ == "__main__":
    main()
