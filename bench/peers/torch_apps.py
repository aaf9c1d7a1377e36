#!/usr/bin/python3
"""PyTorch peer of bench/apps.mjs (Debian's python3-torch 1.13): one training step of each application's twin model
(examples/twins/), timed the same way as retrograd's: warm-up steps, then the mean of --steps steps. Prints one JSON
object: seconds per step.

  --part gan|vae|translate   --steps N   --warmup W   --threads T
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "twins"))
from common import digits, init_deterministic, permutation  # noqa: E402
from models import VAE, Discriminator, Generator  # noqa: E402
from steps import gan_step, noise, vae_step  # noqa: E402

BATCH = 64


def batches(data, n):
    order = np.array(permutation(len(data["yTrain"]), 5))
    return [torch.from_numpy(data["xTrain"][order[s * BATCH:(s + 1) * BATCH]]).reshape(BATCH, 1, 28, 28) for s in range(n)]


def gan(n):
    data = digits()
    xs = [x * 2 - 1 for x in batches(data, 16)]
    zs = [noise([BATCH, 64], 1000 + s) for s in range(16)]
    G, D = init_deterministic(Generator(nz=64, width=32), 2), init_deterministic(Discriminator(width=32), 3)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def run(count):
        for s in range(count):
            d, g = gan_step(G, D, opt_g, opt_d, xs[s % 16], zs[s % 16])
        return g.item()
    return run


def vae(n):
    data = digits()
    xs = batches(data, 16)
    eps = [noise([BATCH, 16], 2000 + s) for s in range(16)]
    model = init_deterministic(VAE(latent=16, width=32), 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(count):
        for s in range(count):
            loss = vae_step(model, opt, xs[s % 16], eps[s % 16])
        return loss.item()
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--part", default="gan")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    run = {"gan": gan, "vae": vae}[a.part](a.steps)
    run(a.warmup)
    t = time.perf_counter()
    run(a.steps)
    print(json.dumps({"secondsPerStep": (time.perf_counter() - t) / a.steps, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
