#!/usr/bin/python3
"""PyTorch eager peer of bench/autograd.mjs (Debian's python3-torch 1.13): the same op-level models with
PyTorch's own autograd, in one process, timed the same way. Prints one JSON object.

  --data DIR         the MNIST split bench/autograd.mjs exports (xTrain.f32, yTrain.i32, meta.json)
  --part w1|chain    W1 written op by op (seconds per epoch), or the chain of small elementwise ops (µs per op)
  --steps N, --repeats R, --threads T, --warmup W (chain runs before timing)
"""
import argparse
import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def w1_epoch(x, y, params, opt, batch, steps):
    w1, b1, w2, b2, w3, b3 = params
    n = x.shape[0]
    for s in range(steps):
        i = (s * batch) % (n - batch + 1)
        xb, yb = x[i:i + batch], y[i:i + batch]
        h = xb.matmul(w1.t()).add(b1).relu()
        h = h.matmul(w2.t()).add(b2).relu()
        logits = h.matmul(w3.t()).add(b3)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def chain(n_ops, size):
    x = torch.randn(size, requires_grad=True)
    h = x
    for i in range(n_ops // 4):
        h = h.mul(1.0001).add(0.001).sigmoid().mul(h)
    loss = h.sum()
    loss.backward()
    return x.grad.sum().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data")
    p.add_argument("--part", default="w1")
    p.add_argument("--steps", type=int, default=125)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--ops", type=int, default=1000)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--warmup", type=int, default=1, help="runs of the chain before timing")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if a.part == "w1":
        meta = json.load(open(os.path.join(a.data, "meta.json")))
        x = torch.from_numpy(np.fromfile(os.path.join(a.data, "xTrain.f32"), dtype=np.float32).reshape(meta["nTrain"], 784))
        y = torch.from_numpy(np.fromfile(os.path.join(a.data, "yTrain.i32"), dtype=np.int32).astype(np.int64))
        sizes = [784, 256, 128, 10]
        params = []
        for i in range(3):
            bound = 1 / sizes[i] ** 0.5
            params.append(torch.empty(sizes[i + 1], sizes[i]).uniform_(-bound, bound).requires_grad_())
            params.append(torch.empty(sizes[i + 1]).uniform_(-bound, bound).requires_grad_())
        opt = torch.optim.Adam(params, lr=1e-3)
        w1_epoch(x, y, params, opt, 64, 5)  # warm-up
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            loss = w1_epoch(x, y, params, opt, 64, a.steps)
            times.append(time.perf_counter() - t)
        out.update({"secondsPerStep": statistics.median(times) / a.steps, "loss": loss})
    else:
        for _ in range(a.warmup):
            chain(a.ops, a.size)
        times = []
        for _ in range(max(a.repeats, 5)):
            t = time.perf_counter()
            chain(a.ops, a.size)
            times.append(time.perf_counter() - t)
        out.update({"microsecondsPerOp": 1e6 * statistics.median(times) / a.ops})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
