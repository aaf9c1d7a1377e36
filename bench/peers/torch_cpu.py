#!/usr/bin/python3
"""PyTorch CPU peer of retrograd's benchmark harness (bench/run.mjs runs it; Debian's python3-torch 1.13).

Same workloads as bench/workloads.mjs: W1–W3 on the MNIST split the harness exports, W4 (the tiny GPT) on random
tokens, timed per step (models.train_gpt). Prints one JSON object.
The harness sets the environment for each configuration (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS) and
passes --threads for torch.set_num_threads, --workloads for the workloads to run (default all), --no-latency
to skip the batch-1 latency and --gemm '' to skip the GEMM sizes.
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

import models

WORKLOADS = {
    "W1": {"sizes": [784, 256, 128, 10], "batch": 64, "opt": ("adam", {"lr": 1e-3})},
    "W2": {"sizes": [784, 1024, 1024, 10], "batch": 256, "opt": ("sgd", {"lr": 0.05, "momentum": 0.9})},
    "W3": {"cnn": {"channels": [1, 32, 64], "kernel": 5, "padding": 2, "pool": 2, "classes": 10}, "batch": 64,
           "opt": ("adam", {"lr": 1e-3})},
    "W4": {"gpt": {"vocab": 96, "contextLength": 64, "embedDim": 128, "numHeads": 4, "numLayers": 2, "mlpRatio": 4},
           "batch": 32, "opt": ("adamw", {"lr": 3e-4})},
}


def load(data):
    meta = json.load(open(os.path.join(data, "meta.json")))
    x = torch.from_numpy(np.fromfile(os.path.join(data, "xTrain.f32"), dtype=np.float32).reshape(meta["nTrain"], 784))
    y = torch.from_numpy(np.fromfile(os.path.join(data, "yTrain.i32"), dtype=np.int32).astype(np.int64))
    xt = torch.from_numpy(np.fromfile(os.path.join(data, "xTest.f32"), dtype=np.float32).reshape(meta["nTest"], 784))
    yt = torch.from_numpy(np.fromfile(os.path.join(data, "yTest.i32"), dtype=np.int32).astype(np.int64))
    return x, y, xt, yt


def time_epochs(epoch, batches, repeats, budget):
    """As timeEpochs in bench/workloads.mjs: one batch first, and a runner that needs seconds per batch is
    estimated from one more batch."""
    probe_batches = min(batches, 6)
    tw = time.perf_counter()
    epoch(1)
    if (time.perf_counter() - tw) * probe_batches > budget:
        t1 = time.perf_counter()
        epoch(1)
        return {"seconds": (time.perf_counter() - t1) * batches, "runs": 1, "estimated": f"from 1 of {batches} batches"}
    t0 = time.perf_counter()
    epoch(probe_batches)
    projected = (time.perf_counter() - t0) * batches / probe_batches
    if projected > budget:
        t1 = time.perf_counter()
        epoch(probe_batches)
        return {"seconds": (time.perf_counter() - t1) * batches / probe_batches, "runs": 1,
                "estimated": f"from {probe_batches} of {batches} batches"}
    times = []
    for r in range(repeats):
        if r > 0 and sum(times) >= budget:
            break
        t = time.perf_counter()
        epoch(batches)
        times.append(time.perf_counter() - t)
    return {"seconds": statistics.median(times), "runs": len(times), "estimated": None}


def train(name, x, y, xt, yt, repeats, budget):
    w = WORKLOADS[name]
    if "cnn" in w:  # each digit as a 1×28×28 image
        x, xt = x.reshape(-1, 1, 28, 28), xt.reshape(-1, 1, 28, 28)
    torch.manual_seed(1)
    model = models.build(torch, w)
    kind, opts = w["opt"]
    opt = torch.optim.Adam(model.parameters(), **opts) if kind == "adam" else torch.optim.SGD(model.parameters(), **opts)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, bs = x.shape[0], w["batch"]
    batches = (n + bs - 1) // bs

    def epoch(limit):
        model.train()
        perm = torch.randperm(n)
        for b in range(limit):
            idx = perm[b * bs:(b + 1) * bs]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

    result = time_epochs(epoch, batches, repeats, budget)
    model.eval()
    with torch.no_grad():
        if result["estimated"]:
            result["accuracy"] = None
        else:  # in slices of 500: the CNN's activations for all 2,000 digits at once would take 200 MB
            logits = torch.cat([model(xt[i:i + 500]) for i in range(0, xt.shape[0], 500)])
            result["accuracy"] = (logits.argmax(1) == yt).float().mean().item()
    return result


def latency(x):
    torch.manual_seed(1)
    model = models.mlp(torch, WORKLOADS["W1"]["sizes"]).eval()
    one = x[:1].clone()
    times = []
    with torch.no_grad():
        for _ in range(200):
            model(one)
        for _ in range(2000):
            t = time.perf_counter()
            model(one)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def gemm(sizes, seconds):
    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps, times = 0, []
        start = time.perf_counter()
        while reps < 3 or (time.perf_counter() - start < seconds and reps < 200):
            t = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t)
            reps += 1
        out[str(n)] = 2 * n ** 3 / statistics.median(times) / 1e9
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--budget", type=float, default=30)
    p.add_argument("--gemm", default="")
    p.add_argument("--gemm-seconds", type=float, default=2.0)
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--no-latency", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x, y, xt, yt = load(a.data)
    res = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "workloads": {}}
    for name in filter(None, a.workloads.split(",")):
        if "gpt" in WORKLOADS[name]:
            res["workloads"][name] = models.train_gpt(torch, WORKLOADS[name], budget=a.budget)
        else:
            res["workloads"][name] = train(name, x, y, xt, yt, a.repeats, a.budget)
    if not a.no_latency:
        res["latency_us"] = latency(x)
    if a.gemm:
        res["gemm"] = gemm([int(s) for s in a.gemm.split(",")], min(a.gemm_seconds, a.budget))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
