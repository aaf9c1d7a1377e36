#!/usr/bin/python3
"""OpenBLAS sgemm through numpy (Debian's libopenblas), for the harness's GEMM comparison.
The harness sets OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS.
  openblas_gemm.py SIZES [--shapes M,N,K,OP;...] [--seconds S]
Square products n×n×n for the comma-separated SIZES, and products of the given shapes (OP: NN, NT = A·Bᵀ, TN = Aᵀ·B,
the transposed operand stored transposed, so that numpy hands sgemm its transpose flag). Prints one line of JSON:
{"gemm": {n: GFLOP/s}, "shapes": {"M×N×K OP": GFLOP/s}} (median time of each)."""
import argparse
import json
import statistics
import time

import numpy as np


def gflops(a, b, flops, seconds):
    a @ b
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < seconds and len(times) < 200):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return flops / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("sizes")
    p.add_argument("--shapes", default="")
    p.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args()
    rng = np.random.default_rng(1)
    out = {"gemm": {}, "shapes": {}}
    for n in [int(s) for s in a.sizes.split(",") if s]:
        x = rng.standard_normal((n, n), dtype=np.float32)
        y = rng.standard_normal((n, n), dtype=np.float32)
        out["gemm"][str(n)] = gflops(x, y, 2 * n ** 3, a.seconds)
    for spec in filter(None, a.shapes.split(";")):
        m, n, k, op = spec.split(",")
        m, n, k = int(m), int(n), int(k)
        x = rng.standard_normal((k, m), dtype=np.float32).T if op[0] == "T" else rng.standard_normal((m, k), dtype=np.float32)
        y = rng.standard_normal((n, k), dtype=np.float32).T if op[1] == "T" else rng.standard_normal((k, n), dtype=np.float32)
        out["shapes"][f"{m}×{n}×{k} {op}"] = gflops(x, y, 2 * m * n * k, a.seconds)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
