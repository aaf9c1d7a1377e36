#!/usr/bin/python3
"""Golden losses of the application examples' models (examples/twins/, the PyTorch twins of examples/apps/): each
model trained 20 steps from the deterministic initial weights of examples/twins/common.py on MNIST batches in a fixed
order, with the examples' optimisers; the loss of every step. test/apps-golden.test.ts trains the retrograd models the
same way and compares step by step.

Run with Debian's python3-torch (1.13): /usr/bin/python3 test/golden/make_apps_golden.py (part of `npm run golden`).
Writes test/golden/apps.json.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "twins"))
from common import digits, init_deterministic, k_means, permutation  # noqa: E402
from models import VAE, Discriminator, Generator, ResNet, Translator  # noqa: E402
from steps import classifier_step, gan_step, noise, translate_step, vae_step  # noqa: E402

torch.set_default_dtype(torch.float32)
STEPS, BATCH = 20, 16
OUT = os.path.join(HERE, "apps.json")
DATA = digits()
ORDER = permutation(len(DATA["yTrain"]), 7)


def batch(step):
    idx = np.array(ORDER[step * BATCH:(step + 1) * BATCH])
    return torch.from_numpy(DATA["xTrain"][idx]).reshape(BATCH, 1, 28, 28), torch.from_numpy(DATA["yTrain"][idx])


def resnet():
    model = init_deterministic(ResNet(width=8), 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.02, total_steps=STEPS)
    losses = []
    for s in range(STEPS):
        x, y = batch(s)
        losses.append(classifier_step(model, opt, x, y).item())
        sched.step()
    return {"losses": losses}


def gan(classes=0):
    """The DCGAN; with classes, the conditional one (generated digits asked of class (3·i + s) mod 10)."""
    G = init_deterministic(Generator(nz=16, width=8, classes=classes), 2)
    D = init_deterministic(Discriminator(width=8, classes=classes), 3)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss_d, loss_g = [], []
    for s in range(STEPS):
        x, y = batch(s)
        labels = (y.long(), torch.tensor([(3 * i + s) % 10 for i in range(BATCH)], dtype=torch.long)) if classes else None
        d, g = gan_step(G, D, opt_g, opt_d, x * 2 - 1, noise([BATCH, 16], 1000 + s), labels)
        loss_d.append(d.item())
        loss_g.append(g.item())
    return {"lossD": loss_d, "lossG": loss_g}


def vae():
    model = init_deterministic(VAE(latent=4, width=8), 4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for s in range(STEPS):
        x, _ = batch(s)
        losses.append(vae_step(model, opt, x, noise([BATCH, 4], 2000 + s)).item())
    return {"losses": losses}


def translate():
    """The date translation task's sentences come from examples/apps/dates.mjs (node prints them)."""
    script = ("import('./examples/apps/dates.mjs').then(({ dateExamples, vocabularies }) => { const e = dateExamples(%d, 9); "
              "const v = vocabularies(); console.log(JSON.stringify({ src: [...e.src], tgt: [...e.tgt], srcLen: e.srcLen, "
              "srcVocab: v.source.length, tgtVocab: v.target.length })); })" % (STEPS * BATCH))
    ex = json.loads(subprocess.run(["node", "-e", script], cwd=os.path.join(HERE, "..", ".."), check=True, capture_output=True, text=True).stdout)
    src = torch.tensor(ex["src"], dtype=torch.int64).reshape(-1, ex["srcLen"])
    tgt = torch.tensor(ex["tgt"], dtype=torch.int64).reshape(-1, 12)
    model = init_deterministic(Translator(ex["srcVocab"], ex["tgtVocab"], dModel=32, nhead=4, layers=2, dimFeedforward=64), 5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = [translate_step(model, opt, src[s * BATCH:(s + 1) * BATCH], tgt[s * BATCH:(s + 1) * BATCH]).item() for s in range(STEPS)]
    return {"losses": losses, "seed": 9}


def clusters():
    """The self-conditioned DCGAN's k-means: the first 2,000 training digits in 16 clusters."""
    return {"n": 2000, "k": 16, "assign": k_means(DATA["xTrain"][:2000], 16).tolist()}


def main():
    golden = {"steps": STEPS, "batch": BATCH, "orderSeed": 7, "resnet": resnet(), "gan": gan(), "conditionalGan": gan(10), "vae": vae(), "translate": translate(), "kMeans": clusters()}
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
