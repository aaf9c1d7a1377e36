#!/usr/bin/python3
"""PyTorch peer of bench/apps.mjs (Debian's python3-torch 1.13): one training step of each application's twin model
(examples/twins/), timed the same way as retrograd's: warm-up steps, then the mean of --steps steps. Prints one JSON
object: seconds per step.

  --part gan|vae|translate|decode   --steps N   --warmup W   --threads T   --data FILE (translate, decode: the
  sentences bench/apps.mjs wrote)   --device cpu|cuda (on a GPU the steps are timed after torch.cuda.synchronize())
decode: greedy decoding of one sentence at a time, 11 steps each; nn.Transformer has no key/value cache, so each step
runs the decoder over the prefix (PyTorch's own way); prints seconds per token.
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
from models import VAE, Discriminator, Generator, Translator  # noqa: E402
from steps import gan_step, noise, translate_step, vae_step  # noqa: E402

BATCH = 64
DEV = torch.device("cpu")


def batches(data, n):
    order = np.array(permutation(len(data["yTrain"]), 5))
    return [torch.from_numpy(data["xTrain"][order[s * BATCH:(s + 1) * BATCH]]).reshape(BATCH, 1, 28, 28).to(DEV) for s in range(n)]


def gan(n):
    data = digits()
    xs = [x * 2 - 1 for x in batches(data, 16)]
    zs = [noise([BATCH, 64], 1000 + s).to(DEV) for s in range(16)]
    G, D = init_deterministic(Generator(nz=64, width=32), 2).to(DEV), init_deterministic(Discriminator(width=32), 3).to(DEV)
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
    eps = [noise([BATCH, 16], 2000 + s).to(DEV) for s in range(16)]
    model = init_deterministic(VAE(latent=16, width=32), 4).to(DEV)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(count):
        for s in range(count):
            loss = vae_step(model, opt, xs[s % 16], eps[s % 16])
        return loss.item()
    return run


def translator(path):
    with open(path) as f:
        ex = json.load(f)
    src = torch.tensor(ex["src"], dtype=torch.int64).reshape(-1, ex["srcLen"]).to(DEV)
    tgt = torch.tensor(ex["tgt"], dtype=torch.int64).reshape(-1, 12).to(DEV)
    model = init_deterministic(Translator(ex["srcVocab"], ex["tgtVocab"]), 5).to(DEV)
    return model, src, tgt


def translate(n, path):
    model, src, tgt = translator(path)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run(count):
        for s in range(count):
            i = (s % 16) * BATCH
            loss = translate_step(model, opt, src[i:i + BATCH], tgt[i:i + BATCH])
        return loss.item()
    return run


def decode(n, path):
    model, src, _ = translator(path)
    model.eval()

    def run(count):
        with torch.no_grad():
            for s in range(count):
                memory, pad = model.encode(src[s % len(src)].reshape(1, -1))
                tokens = torch.ones(1, 1, dtype=torch.int64, device=DEV)
                for t in range(11):
                    nxt = model.decode(tokens, memory, pad)[:, -1].argmax(-1, keepdim=True)
                    tokens = torch.cat([tokens, nxt], 1)
        return 0
    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--part", default="gan")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int)
    p.add_argument("--data")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    global DEV
    DEV = torch.device(a.device)
    sync = torch.cuda.synchronize if DEV.type == "cuda" else (lambda: None)
    if a.threads:
        torch.set_num_threads(a.threads)
    part = {"gan": gan, "vae": vae, "translate": translate, "decode": decode}[a.part]
    run = part(a.steps, a.data) if a.part in ("translate", "decode") else part(a.steps)
    run(a.warmup)
    sync()
    t = time.perf_counter()
    run(a.steps)
    sync()
    seconds = (time.perf_counter() - t) / a.steps
    if a.part == "decode":
        print(json.dumps({"secondsPerToken": seconds / 11, "threads": torch.get_num_threads(), "device": str(DEV)}))
    else:
        print(json.dumps({"secondsPerStep": seconds, "threads": torch.get_num_threads(), "device": str(DEV)}))


if __name__ == "__main__":
    main()
