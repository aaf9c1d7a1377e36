#!/usr/bin/python3
"""OpenBLAS sgemm through numpy (Debian's libopenblas), for the harness's GEMM comparison.
The harness sets OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS. Prints {n: GFLOP/s} as JSON."""
import json
import statistics
import sys
import time

import numpy as np

out = {}
for n in [int(s) for s in sys.argv[1].split(",")]:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < 2.0 and len(times) < 200):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    out[str(n)] = 2 * n ** 3 / statistics.median(times) / 1e9
print(json.dumps(out))
