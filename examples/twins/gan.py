#!/usr/bin/python3
"""PyTorch twin of examples/gan.mjs's training: the same DCGAN (or, with --conditional, the class-conditional one; with
--clusters K, the self-conditioned one, on the same k-means clusters) from
the same initial weights, the same batches, labels and noise, the same optimisers and learning-rate schedule; prints
the losses of each epoch the same way.

  /usr/bin/python3 examples/twins/gan.py [--conditional | --clusters 200] [--epochs 30 (conditional: 50)] [--quick] [--threads N]
"""
import time

import numpy as np
import torch

from common import digits, init_deterministic, k_means, mulberry32, permutation, twin_args
from models import Discriminator, Generator
from steps import gan_step, noise


def main():
    def extra(p):
        p.add_argument("--conditional", action="store_true")
        p.add_argument("--clusters", type=int, default=0)

    a = twin_args(lambda a: 50 if a.conditional else 30, extra)
    classes, epochs = (10 if a.conditional else a.clusters), a.epochs
    batch, nz, width, lr = 64, 64, 32, 2e-4
    data = digits()
    cluster_of = k_means(data["xTrain"], a.clusters) if a.clusters else None

    def draw_clusters(n, seed):
        r = mulberry32(seed)
        return torch.tensor([cluster_of[int(r() * len(cluster_of))] for _ in range(n)], dtype=torch.long)

    G, D = init_deterministic(Generator(nz=nz, width=width, classes=classes), 2), init_deterministic(Discriminator(width=width, classes=classes), 3)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    steps = 30 if a.quick else len(data["yTrain"]) // batch
    hold = epochs // 2
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; {'conditional ' if a.conditional else 'self-conditioned ' if a.clusters else ''}DCGAN, {epochs} epochs of {steps} steps")
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr if epoch < hold else lr * (1 - (epoch - hold) / (epochs - hold))
        order = np.array(permutation(len(data["yTrain"]), 100 + epoch))
        sum_d = sum_g = 0.0
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            x = torch.from_numpy(data["xTrain"][idx]).reshape(batch, 1, 28, 28)
            labels = None
            if a.conditional:
                fake = torch.tensor([(i * 7 + s + epoch) % 10 for i in range(batch)], dtype=torch.long)
                labels = (torch.from_numpy(data["yTrain"][idx]).long(), fake)
            elif a.clusters:
                labels = (torch.from_numpy(cluster_of[idx]), draw_clusters(batch, 1_000_003 * (epoch + 1) + s))
            d, g = gan_step(G, D, opt_g, opt_d, x * 2 - 1, noise([batch, nz], 1_000_000 * (epoch + 1) + s), labels)
            sum_d += d.item()
            sum_g += g.item()
        print(f"epoch {epoch + 1}: discriminator loss {sum_d / steps:.3f}, generator loss {sum_g / steps:.3f} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
