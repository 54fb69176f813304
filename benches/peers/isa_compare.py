#!/usr/bin/env python3
"""simdnn's paths against each other: `simdnn bench conv --prepared` and `bench gemm` on the
peer tables' shapes with `--isa avx512` and `--isa avx2`, alternating, one row per workload
(GFLOP/s medians, best runs in brackets). Needs a CPU with both paths.

    cargo build --release
    python3 benches/peers/isa_compare.py [target/release/simdnn] [ROUNDS] [THREADS]
"""
import subprocess, json, statistics, sys
B = sys.argv[1] if len(sys.argv) > 1 else "/work/main/target/release/simdnn"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
threads = sys.argv[3] if len(sys.argv) > 3 else "1"
SHAPES = {
    "3x3-64-56": (64, 64, 56, 56, 3, 1, 1), "3x3-128-28": (128, 128, 28, 28, 3, 1, 1),
    "3x3-256-14": (256, 256, 14, 14, 3, 1, 1), "3x3-512-7": (512, 512, 7, 7, 3, 1, 1),
    "3x3-3to64-224": (3, 64, 224, 224, 3, 1, 1),
    "7x7s2-3to64-224": (3, 64, 224, 224, 7, 2, 3), "1x1-256to64-56": (256, 64, 56, 56, 1, 1, 0),
    "11x11s4-3to96-227": (3, 96, 227, 227, 11, 4, 0), "5x5-96to256-27": (96, 256, 27, 27, 5, 1, 2),
}
GEMMS = [(1024,1024,1024),(2048,2048,2048),(64,3136,576),(4096,64,9216),(512,49,4608),(256,256,256)]
def run(args):
    out = subprocess.run([B] + args + ["--json"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["gflops"]
rows = []
for name,(c,k,h,w,r,st,p) in SHAPES.items():
    n = "1" if name == "3x3-512-7" else "8"
    base = ["bench","conv","--n",n,"--c",str(c),"--h",str(h),"--w",str(w),"--k",str(k),"--r",str(r),"--stride",str(st),"--pad",str(p),"--prepared","--threads",threads]
    rows.append((f"conv {name} b{n}", base))
for m,nn,kk in GEMMS:
    rows.append((f"gemm {m}x{nn}x{kk}", ["bench","gemm","--m",str(m),"--n",str(nn),"--k",str(kk),"--threads",threads]))
print(f"{'workload':32} {'avx512':>8} {'avx2':>8} {'ratio':>6}   (GFLOP/s, median of {rounds} alternating runs; best in brackets)")
for name,args in rows:
    a, b = [], []
    for _ in range(rounds):
        a.append(run(args+["--isa","avx512"])); b.append(run(args+["--isa","avx2"]))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{name:32} {ma:8.1f} {mb:8.1f} {ma/mb:6.2f}   [{max(a):.1f} / {max(b):.1f}]", flush=True)
