#!/usr/bin/env python3
"""Static analysis of the GEMM microkernels' inner loops with llvm-mca.

Finds each ISA's GEMM kernel instance in a built binary (`f32_gemm_{tile}_{isa}`, see
kernels/src/isa/kernel.rs), takes its hottest inner loop (the innermost loop with the most
FMAs: the k loop of the full register tile), and asks llvm-mca how many cycles an
iteration takes on each target CPU, which gives the predicted FMAs per cycle against the
CPU's FMA issue width. AVX-512 code is analysed only for CPUs that have AVX-512.

    cargo build --release
    apt-get install llvm-19            # llvm-mca with Zen 4 and Sapphire Rapids models
    python3 benches/mca/gemm_loops.py [target/release/simdnn] [--mca llvm-mca-19] [--json]
"""
import argparse
import json
import re
import shutil
import subprocess
import sys

# (llvm-mca cpu, has AVX-512, vector FMAs per cycle at 512 bits, at 256 bits)
CPUS = [
    ("znver3", False, None, 2),
    ("znver4", True, 1, 2),          # 512-bit FMAs run as two 256-bit halves
    ("sapphirerapids", True, 2, 2),  # the server part: FMA units on ports 0 and 5
    ("skylake-avx512", True, 2, 2),
    ("icelake-server", True, 2, 2),
]
KERNELS = [("f32_gemm_12x32_avx512", True), ("f32_gemm_6x16_avx2", False)]


def functions(binary):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", binary],
                         check=True, capture_output=True, text=True).stdout
    funcs, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            cur = funcs.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and cur is not None:
            cur.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return funcs


def hottest_loop(insns):
    """The k loop of the full register tile: the innermost loop (a backward jump's range)
    whose FMAs write the most distinct accumulators, without its jump."""
    loops = []
    for addr, op, args in insns:
        m = re.match(r"([0-9a-f]+)\s", args)
        if op.startswith("j") and m and int(m.group(1), 16) <= addr:
            loops.append((int(m.group(1), 16), addr))
    inner = [l for l in loops if not any(o != l and l[0] <= o[0] and o[1] <= l[1] for o in loops)]
    def accumulators(loop):
        fmas = [args for a, op, args in insns if loop[0] <= a <= loop[1] and "fmadd" in op]
        size = sum(1 for a, _, _ in insns if loop[0] <= a <= loop[1])
        # Most accumulators; of equals (packed A, or A read in place), the shortest body.
        return (len({f.split(",")[-1] for f in fmas}), -size)
    best = max(inner, key=accumulators)
    body = [(op, args) for a, op, args in insns if best[0] <= a < best[1]]
    return [f"{op} {re.sub(r' <.*>$', '', args)}".strip() for op, args in body if not op.startswith("data16")]


def mca(tool, cpu, asm, iterations=200):
    out = subprocess.run([tool, f"-mcpu={cpu}", f"-iterations={iterations}"], input="\n".join(asm) + "\n",
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[0] if out.stderr else "llvm-mca failed")
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out.stdout).group(1))
    return cycles / iterations


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default="target/release/simdnn")
    p.add_argument("--mca", default=shutil.which("llvm-mca-19") or "llvm-mca")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    funcs = functions(args.binary)
    rows = []
    for kernel, avx512 in KERNELS:
        name = next((f for f in funcs if f.endswith("::" + kernel)), None)
        if name is None:
            sys.exit(f"{kernel} not found in {args.binary}")
        asm = hottest_loop(funcs[name])
        fmas = sum(1 for line in asm if "fmadd" in line)
        for cpu, has512, peak512, peak256 in CPUS:
            if avx512 and not has512:
                continue
            peak = peak512 if avx512 else peak256
            cycles = mca(args.mca, cpu, asm)
            rows.append({"kernel": kernel, "cpu": cpu, "instructions": len(asm), "fmas": fmas,
                         "cycles_per_iteration": round(cycles, 2), "fmas_per_cycle": round(fmas / cycles, 2),
                         "fma_peak_per_cycle": peak, "of_peak": round(fmas / cycles / peak, 3)})
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print("| kernel | CPU (llvm-mca) | instructions / iteration | FMAs | cycles / iteration | FMAs / cycle | of FMA peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['kernel']} | {r['cpu']} | {r['instructions']} | {r['fmas']} | {r['cycles_per_iteration']} "
              f"| {r['fmas_per_cycle']} | {r['of_peak']:.0%} |")


if __name__ == "__main__":
    main()
