#!/usr/bin/python3
"""PyTorch twin of examples/vae.mjs: the same VAE from the same initial weights, the same batches and noise, the same
optimiser; prints the held-out negative ELBO the same way.

  /usr/bin/python3 examples/twins/vae.py [--epochs 10] [--quick] [--threads N]
"""
import time

import numpy as np
import torch

from common import digits, init_deterministic, permutation, twin_args
from models import VAE, negative_elbo
from steps import noise, vae_step


def main():
    a = twin_args(10)
    epochs = a.epochs
    batch, latent, width = 64, 16, 32
    data = digits()
    n_train = 1024 if a.quick else len(data["yTrain"])
    model = init_deterministic(VAE(latent=latent, width=width), 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = n_train // batch
    x_test = torch.from_numpy(data["xTest"]).reshape(-1, 1, 28, 28)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; VAE on {n_train} MNIST digits, {epochs} epochs")
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = np.array(permutation(n_train, 100 + epoch))
        total = 0.0
        for s in range(steps):
            x = torch.from_numpy(data["xTrain"][order[s * batch:(s + 1) * batch]]).reshape(batch, 1, 28, 28)
            total += vae_step(model, opt, x, noise([batch, latent], 1_000_000 * (epoch + 1) + s)).item()
        print(f"epoch {epoch + 1}: training negative ELBO {total / steps:.2f} nats/digit ({time.perf_counter() - t0:.1f} s)")
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x_test), 500):
            x = x_test[i:i + 500]
            total += negative_elbo(model(x, noise([len(x), latent], 3 + i)), x).item() * len(x)
    print(f"held-out negative ELBO: {total / len(x_test):.3f} nats per digit on {len(x_test)} test digits, after {epochs} epochs, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
