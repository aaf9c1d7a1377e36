#!/usr/bin/python3
"""Golden values from PyTorch's CPU autocast to bfloat16 (torch.autocast('cpu', dtype=torch.bfloat16)): for the
products retrograd runs in bfloat16 under rg.autocast (linear, matmul, bmm, conv2d, conv_transpose2d, an LSTM) and
for ops it keeps in float32 (softmax, layer_norm, the losses), the output dtype PyTorch gives and the output itself,
with the float32 output beside it; and an MLP trained 200 steps with and without autocast, its loss at every step.

Run with Debian's python3-torch (1.13): /usr/bin/python3 test/golden/make_autocast_golden.py (part of `npm run
golden`). Writes test/golden/autocast.json; the tests read that file and never need Python.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autocast.json")
torch.manual_seed(0)


def rnd(*shape):
    return torch.randn(*shape)


def flat(t):
    return [float(v) for v in t.detach().float().reshape(-1)]


cases = []


def case(name, fn, inputs, product):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fn(*inputs)
    y32 = fn(*inputs)
    cases.append({
        "name": name, "product": product, "dtype": str(y.dtype).replace("torch.", ""),
        "inputs": [{"shape": list(t.shape), "data": flat(t), "int": not t.is_floating_point()} for t in inputs],
        "out": flat(y), "out32": flat(y32), "shape": list(y.shape),
    })


case("linear", lambda x, w, b: F.linear(x, w, b), [rnd(9, 37), rnd(13, 37), rnd(13)], True)
case("matmul", lambda a, b: a @ b, [rnd(17, 45), rnd(45, 11)], True)
case("bmm", lambda a, b: torch.bmm(a, b), [rnd(3, 7, 29), rnd(3, 29, 5)], True)
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), [rnd(2, 3, 9, 8), rnd(5, 3, 3, 3), rnd(5)], True)
case("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1), [rnd(2, 4, 5, 6), rnd(4, 3, 3, 3), rnd(3)], True)
case("softmax", lambda x: F.softmax(x, dim=-1), [rnd(6, 10)], False)
case("layer_norm", lambda x, w, b: F.layer_norm(x, (10,), w, b), [rnd(6, 10), rnd(10), rnd(10)], False)
case("mse_loss", lambda a, b: F.mse_loss(a, b), [rnd(6, 10), rnd(6, 10)], False)
case("cross_entropy", lambda x, t: F.cross_entropy(x, t), [rnd(6, 10), torch.randint(0, 10, (6,))], False)

# An MLP (32 → 64 → 64 → 10, ReLU) on a fixed synthetic problem, SGD with momentum, 200 steps of 64 rows, the same
# initial weights with and without autocast.
g = torch.Generator().manual_seed(1)
X = torch.randn(512, 32, generator=g)
teacher = torch.randn(32, 10, generator=g)
Y = (X @ teacher).argmax(1)
init = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
state = {k: v.clone() for k, v in init.state_dict().items()}


def train(bf16):
    m = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    m.load_state_dict(state)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(200):
        i = (step * 64) % 512
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(m(X[i:i + 64]), Y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses


mlp = {"x": flat(X), "y": [int(v) for v in Y], "state": {k: {"shape": list(v.shape), "data": flat(v)} for k, v in state.items()},
       "losses32": train(False), "lossesBf16": train(True)}

with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases, "mlp": mlp}, f)
print("wrote", OUT)
