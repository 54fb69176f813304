#!/usr/bin/env python3
"""Peer benchmark: numpy SGEMM (OpenBLAS) on the GEMM shapes simdnn benchmarks.

Measures float32, row-major C = A @ B with A (M, K), B (K, N) and a
preallocated C (np.matmul(a, b, out=c)), for each shape and each BLAS thread
count (set with threadpoolctl). Each case is warmed up once, then repeated
until at least --min-ms have passed and at least 5 runs were made; the median
time per call is reported with GFLOP/s = 2*M*N*K / median.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from this process's
environment (by re-executing itself) before numpy loads OpenBLAS, so the
library picks its own core type and cache sizes.

Usage:
    python3 -m pip install -r benches/peers/requirements.txt
    python3 benches/peers/gemm_numpy.py                     # human-readable
    python3 benches/peers/gemm_numpy.py --json              # JSON lines
    python3 benches/peers/gemm_numpy.py --shapes 64x64x64,1024x1024x1024 \
        --threads 1,2 --min-ms 300
Shapes are given as MxNxK.
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
import time  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

DEFAULT_SHAPES = (
    [(s, s, s) for s in (64, 128, 256, 512, 1024, 2048)]            # square
    + [(64, 3136, 576), (128, 784, 1152), (256, 196, 2304), (512, 49, 4608)]  # conv
    + [(1000, 1, 4096), (4096, 64, 9216)]                            # FC
)


def parse_shapes(text):
    return [tuple(int(x) for x in s.lower().split("x")) for s in text.split(",") if s]


def time_gemm(m, n, k, min_ms, rng):
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=c)  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start) * 1e3 < min_ms:
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def blas_info():
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return blas, next((i for i in blas if i.get("internal_api") == "openblas"), {})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", type=parse_shapes, default=DEFAULT_SHAPES,
                   help="comma-separated MxNxK list (default: simdnn bench shapes)")
    p.add_argument("--threads", default="1,2", help="comma-separated BLAS thread counts")
    p.add_argument("--min-ms", type=float, default=1000.0,
                   help="minimum measuring time per case in ms (default 1000)")
    p.add_argument("--json", action="store_true", help="emit JSON lines")
    args = p.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t]

    blas, ob = blas_info()
    version, core = ob.get("version"), ob.get("architecture")
    if args.json:
        print(json.dumps({"peer_info": blas}), flush=True)
    else:
        for i in blas:
            print(f"# {i.get('internal_api')} {i.get('version')} core={i.get('architecture')} "
                  f"max_threads={i.get('num_threads')} lib={i.get('filepath')}")
        print(f"# numpy {np.__version__}")
        print(f"{'M':>6} {'N':>6} {'K':>6} {'thr':>3} {'median_ms':>11} {'GFLOP/s':>9}")

    rng = np.random.default_rng(0)
    for t in threads:
        with threadpool_limits(limits=t, user_api="blas"):
            for m, n, k in args.shapes:
                med = time_gemm(m, n, k, args.min_ms, rng)
                gflops = 2.0 * m * n * k / med / 1e9
                if args.json:
                    print(json.dumps({
                        "peer": "numpy-openblas", "m": m, "n": n, "k": k, "threads": t,
                        "median_ms": med * 1e3, "gflops": gflops,
                        "openblas_version": version, "openblas_core": core}), flush=True)
                else:
                    print(f"{m:>6} {n:>6} {k:>6} {t:>3} {med * 1e3:>11.4f} {gflops:>9.2f}",
                          flush=True)


if __name__ == "__main__":
    main()
