#!/usr/bin/python3
"""PyTorch twin of examples/gan.mjs's training: the same DCGAN from the same initial weights, the same batches and
noise, the same optimisers; prints the losses of each epoch the same way.

  /usr/bin/python3 examples/twins/gan.py [--epochs 30] [--quick] [--threads N]
"""
import time

import numpy as np
import torch

from common import digits, init_deterministic, permutation, twin_args
from models import Discriminator, Generator
from steps import gan_step, noise


def main():
    a = twin_args(30)
    epochs = a.epochs
    batch, nz, width = 64, 64, 32
    data = digits()
    G, D = init_deterministic(Generator(nz=nz, width=width), 2), init_deterministic(Discriminator(width=width), 3)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    steps = 30 if a.quick else len(data["yTrain"]) // batch
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; DCGAN, {epochs} epochs of {steps} steps")
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = np.array(permutation(len(data["yTrain"]), 100 + epoch))
        sum_d = sum_g = 0.0
        for s in range(steps):
            x = torch.from_numpy(data["xTrain"][order[s * batch:(s + 1) * batch]]).reshape(batch, 1, 28, 28)
            d, g = gan_step(G, D, opt_g, opt_d, x * 2 - 1, noise([batch, nz], 1_000_000 * (epoch + 1) + s))
            sum_d += d.item()
            sum_g += g.item()
        print(f"epoch {epoch + 1}: discriminator loss {sum_d / steps:.3f}, generator loss {sum_g / steps:.3f} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
