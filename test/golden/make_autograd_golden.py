#!/usr/bin/python3
"""Golden values from PyTorch for retrograd's tensor operations and autograd: every operation's output and the
gradients of a weighted sum of it (broadcasting, keepdim, negative dims, size-1 and empty dimensions), and models
that need the graph — a residual MLP, a two-input model with concatenation, a siamese pair sharing weights, a custom
loss, the gradient with respect to the input — trained 20 steps from given weights, with the loss of every step and
the final weights; and layers (ConvTranspose2d, Conv1d, GroupNorm, Upsample, Identity, Dropout2d): their state-dict
keys and shapes, the bound of each uniform initialisation and the forward with PyTorch's initial weights.

Run with Debian's python3-torch (1.13): /usr/bin/python3 test/golden/make_autograd_golden.py (part of `npm run
golden`). Writes test/golden/autograd.json; the tests read that file and never need Python.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "autograd.json")


def values(n, seed, kind="any"):
    """Deterministic float32 inputs away from the points where an op has no derivative."""
    out = []
    for i in range(n):
        v = math.sin(1.7 * i + 0.9 * seed + 0.3) * 1.4
        if kind == "positive":
            v = 0.4 + abs(v)
        elif kind == "away":
            v = math.copysign(0.25 + abs(v), v if v != 0 else 1.0)
        elif kind == "flag":
            v = 1.0 if v > 0 else 0.0
        out.append(v)
    return out


def spec_tensor(spec, seed):
    shape, kind = spec[0], spec[1] if len(spec) > 1 else "any"
    n = 1
    for d in shape:
        n *= d
    if kind.startswith("int"):
        hi = int(kind[3:])
        data = [int((i * 7 + seed * 3) % hi) for i in range(n)]
        return torch.tensor(data, dtype=torch.int64).reshape(shape), {"shape": shape, "int": data}
    data = values(n, seed, kind)
    t = torch.tensor(data, dtype=torch.float32).reshape(shape)
    return t, {"shape": shape, "data": data, "grad": kind not in ("flag",)}


# (name, function of the inputs, input specs: (shape, kind)); kinds: any, positive, away, flag (0/1, no grad), intN
OPS = [
    ("add broadcast", lambda a, b: a + b, [([3, 1, 4],), ([2, 1],)]),
    ("add size-1", lambda a, b: a + b, [([1, 4],), ([3, 1],)]),
    ("add scalar", lambda a: a + 2.5, [([5],)]),
    ("add alpha", lambda a, b: torch.add(a, b, alpha=-0.5), [([2, 3],), ([3],)]),
    ("sub broadcast", lambda a, b: a - b, [([4, 3],), ([4, 1],)]),
    ("rsub scalar", lambda a: 1.5 - a, [([3, 2],)]),
    ("mul broadcast", lambda a, b: a * b, [([2, 3, 4],), ([3, 1],)]),
    ("mul scalar", lambda a: a * -3, [([4],)]),
    ("div broadcast", lambda a, b: a / b, [([3, 4],), ([4], "positive")]),
    ("pow tensor", lambda a, b: a ** b, [([2, 3], "positive"), ([3],)]),
    ("pow scalar", lambda a: a ** 2.5, [([5], "positive")]),
    ("neg", lambda a: -a, [([4, 2],)]),
    ("exp", torch.exp, [([6],)]),
    ("log", torch.log, [([6], "positive")]),
    ("log1p", torch.log1p, [([6], "positive")]),
    ("sqrt", torch.sqrt, [([6], "positive")]),
    ("rsqrt", torch.rsqrt, [([6], "positive")]),
    ("abs", torch.abs, [([7], "away")]),
    ("sign", torch.sign, [([7], "away")]),
    ("sin", torch.sin, [([6],)]),
    ("cos", torch.cos, [([6],)]),
    ("tanh", torch.tanh, [([2, 5],)]),
    ("sigmoid", torch.sigmoid, [([2, 5],)]),
    ("relu", torch.relu, [([3, 4], "away")]),
    ("gelu", F.gelu, [([3, 4],)]),
    ("leakyRelu", lambda a: F.leaky_relu(a, 0.2), [([3, 4], "away")]),
    ("softplus", lambda a: F.softplus(a, beta=2, threshold=1), [([3, 4], "away")]),
    ("clamp", lambda a: torch.clamp(a, -0.5, 0.6), [([12], "away")]),
    ("square", torch.square, [([5],)]),
    ("reciprocal", torch.reciprocal, [([5], "positive")]),
    ("maximum", torch.maximum, [([3, 4],), ([4],)]),
    ("minimum", torch.minimum, [([3, 1],), ([1, 4],)]),
    ("eq", lambda a, b: (a == b).float(), [([3, 4],), ([4],)]),
    ("lt", lambda a, b: (a < b).float(), [([3, 4],), ([4],)]),
    ("ge", lambda a, b: (a >= b).float(), [([3, 4],), ([4],)]),
    ("where", lambda c, a, b: torch.where(c > 0, a, b), [([3, 4], "flag"), ([3, 4],), ([4],)]),
    ("maskedFill", lambda a, m: a.masked_fill(m > 0, -2.0), [([3, 4],), ([1, 4], "flag")]),
    ("sum all", lambda a: a.sum(), [([3, 4],)]),
    ("sum dims keepdim", lambda a: a.sum(dim=(0, -1), keepdim=True), [([2, 3, 4],)]),
    ("sum negative dim", lambda a: a.sum(-2), [([2, 3, 4],)]),
    ("sum empty dim", lambda a: a.sum(0), [([0, 3],)]),
    ("mean dim", lambda a: a.mean(1), [([3, 5],)]),
    ("max all", lambda a: a.max(), [([3, 5],)]),
    ("max dim", lambda a: a.max(1).values, [([3, 5],)]),
    ("min dim keepdim", lambda a: a.min(0, keepdim=True).values, [([3, 5],)]),
    ("var", lambda a: a.var(1), [([3, 5],)]),
    ("var all, correction 0", lambda a: a.var(unbiased=False), [([3, 5],)]),
    ("std keepdim", lambda a: a.std(0, keepdim=True), [([4, 3],)]),
    ("logsumexp", lambda a: torch.logsumexp(a, -1), [([3, 5],)]),
    ("norm", lambda a: a.norm(), [([3, 5],)]),
    ("norm dim", lambda a: a.norm(2, 1), [([3, 5],)]),
    ("softmax dim 0", lambda a: a.softmax(0), [([3, 5],)]),
    ("logSoftmax", lambda a: a.log_softmax(1), [([2, 3, 4],)]),
    ("matmul 2-d", torch.matmul, [([3, 4],), ([4, 5],)]),
    ("matmul 1-d · 1-d", torch.matmul, [([4],), ([4],)]),
    ("matmul 1-d · 2-d", torch.matmul, [([4],), ([4, 3],)]),
    ("matmul batch broadcast", torch.matmul, [([2, 1, 3, 4],), ([3, 4, 2],)]),
    ("matmul rows · matrix", torch.matmul, [([2, 3, 4],), ([4, 5],)]),
    ("linear", F.linear, [([2, 3, 4],), ([5, 4],), ([5],)]),
    ("permute", lambda a: a.permute(2, 0, 1), [([2, 3, 4],)]),
    ("transpose", lambda a: a.transpose(0, -1), [([2, 3, 4],)]),
    ("squeeze unsqueeze", lambda a: a.squeeze(1).unsqueeze(0), [([3, 1, 4],)]),
    ("expand", lambda a: a.expand(2, 3, 4), [([3, 1],)]),
    ("flatten", lambda a: a.flatten(1), [([2, 3, 4],)]),
    ("narrow", lambda a: a.narrow(1, 1, 2), [([3, 5],)]),
    ("slice with step", lambda a: a[:, 1:7:2], [([2, 8],)]),
    ("cat", lambda a, b: torch.cat([a, b, a], 1), [([2, 3],), ([2, 1],)]),
    ("cat with an empty tensor", lambda a, b: torch.cat([a, b], 0), [([2, 3],), ([0, 3],)]),
    ("stack", lambda a, b: torch.stack([a, b], -1), [([2, 3],), ([2, 3],)]),
    ("chunk", lambda a: a.chunk(3, 0)[1], [([7, 2],)]),
    ("indexSelect", lambda a, i: a.index_select(1, i), [([3, 4],), ([6], "int4")]),
    ("gather", lambda a, i: a.gather(1, i), [([3, 4],), ([3, 5], "int4")]),
    ("scatterAdd", lambda a, i, s: a.scatter_add(0, i, s), [([4, 3],), ([6, 3], "int4"), ([6, 3],)]),
    # the layers of lib/nn/conv.ts, sampling.ts, normalization.ts as rg.F functions
    ("convTranspose2d", lambda x, w, b: F.conv_transpose2d(x, w, b), [([2, 3, 4, 5],), ([3, 2, 3, 3],), ([2],)]),
    ("convTranspose2d stride 2, padding 1, outputPadding 1, batch 3",
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), [([3, 2, 3, 4],), ([2, 4, 3, 3],), ([4],)]),
    ("convTranspose2d non-square, dilation 2, no bias",
     lambda x, w: F.conv_transpose2d(x, w, stride=(1, 2), padding=(0, 1), dilation=2), [([1, 3, 5, 3],), ([3, 2, 2, 3],)]),
    ("convTranspose2d outputPadding above the stride, below the dilation",
     lambda x, w, b: F.conv_transpose2d(x, w, b, padding=1, output_padding=(1, 2), dilation=(2, 3)), [([2, 2, 3, 4],), ([2, 3, 3, 2],), ([3],)]),
    ("convTranspose2d stride 3×2, outputPadding 2×1, unbatched",
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(3, 2), padding=(1, 0), output_padding=(2, 1)), [([2, 4, 3],), ([2, 2, 2, 3],), ([2],)]),
    ("conv1d stride 2, padding 1, batch 3", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), [([3, 4, 9],), ([5, 4, 3],), ([5],)]),
    ("conv1d dilation 2, no bias, batch 1", lambda x, w: F.conv1d(x, w, padding=2, dilation=2), [([1, 2, 7],), ([3, 2, 3],)]),
    ("conv1d unbatched", lambda x, w, b: F.conv1d(x, w, b), [([2, 6],), ([4, 2, 2],), ([4],)]),
    ("interpolate nearest scaleFactor 2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), [([2, 3, 3, 4],)]),
    ("interpolate nearest to a size that is not a multiple", lambda x: F.interpolate(x, size=(7, 3), mode="nearest"), [([1, 2, 5, 4],)]),
    ("interpolate nearest scaleFactor 1.5×2.1 (the factor, not the size ratio)",
     lambda x: F.interpolate(x, scale_factor=(1.5, 2.1), mode="nearest"), [([1, 1, 3, 5],)]),
    ("interpolate nearest 1-d", lambda x: F.interpolate(x, size=8, mode="nearest"), [([2, 3, 5],)]),
    ("interpolate bilinear scaleFactor 2", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), [([2, 2, 3, 4],)]),
    ("interpolate bilinear size 7×3", lambda x: F.interpolate(x, size=(7, 3), mode="bilinear", align_corners=False), [([1, 3, 4, 5],)]),
    ("interpolate bilinear size 7×3, alignCorners", lambda x: F.interpolate(x, size=(7, 3), mode="bilinear", align_corners=True), [([1, 3, 4, 5],)]),
    ("interpolate bilinear scaleFactor 1.7×0.6, batch 3", lambda x: F.interpolate(x, scale_factor=(1.7, 0.6), mode="bilinear", align_corners=False), [([3, 1, 5, 6],)]),
    ("interpolate bilinear to 1×6, alignCorners", lambda x: F.interpolate(x, size=(1, 6), mode="bilinear", align_corners=True), [([1, 2, 3, 3],)]),
    ("groupNorm 2 groups of 2 channels", lambda x, w, b: F.group_norm(x, 2, w, b), [([2, 4, 3, 3],), ([4],), ([4],)]),
    ("groupNorm 2 groups of 3 channels, 1-d, batch 3", lambda x, w, b: F.group_norm(x, 2, w, b, eps=1e-3), [([3, 6, 5],), ([6],), ([6],)]),
    ("groupNorm 3 groups, no affine, batch 1", lambda x: F.group_norm(x, 3), [([1, 6, 2, 3],)]),
]


def op_case(name, fn, specs):
    inputs, records = [], []
    for k, spec in enumerate(specs):
        t, rec = spec_tensor(spec, k + 1)
        if "data" in rec and rec["grad"]:
            t.requires_grad_(True)
        inputs.append(t)
        records.append(rec)
    out = fn(*inputs)
    weights = values(out.numel(), 11)
    w = torch.tensor(weights, dtype=torch.float32).reshape(out.shape)
    if out.requires_grad:
        (out * w).sum().backward()
    for rec, t in zip(records, inputs):
        if "data" in rec and rec["grad"]:
            rec["gradient"] = (t.grad if t.grad is not None else torch.zeros_like(t)).reshape(-1).tolist()
    return {"name": name, "inputs": records, "shape": list(out.shape), "output": out.detach().reshape(-1).tolist(), "weights": weights}


# ---- models that need the graph, trained 20 steps from given weights ----

def data(rows, cols, seed):
    return torch.tensor(values(rows * cols, seed), dtype=torch.float32).reshape(rows, cols)


def labels(rows, classes, seed):
    return torch.tensor([int((i * 5 + seed) % classes) for i in range(rows)], dtype=torch.int64)


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 6)
        self.fc2 = torch.nn.Linear(6, 6)
        self.out = torch.nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(x + self.fc2(torch.relu(self.fc1(x))))
        return self.out(h)


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fa = torch.nn.Linear(3, 4)
        self.fb = torch.nn.Linear(5, 4)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, a, b):
        return self.out(torch.cat([torch.relu(self.fa(a)), torch.tanh(self.fb(b))], 1))


class Siamese(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def forward(self, x1, x2):
        return self.enc(x1), self.enc(x2)


def state(m):
    return {k: {"shape": list(v.shape), "data": v.detach().reshape(-1).tolist()} for k, v in m.state_dict().items()}


def train(name, model, opt, step_fn, steps=20):
    torch.manual_seed(0)
    initial = state(model)
    losses = []
    for s in range(steps):
        opt.zero_grad()
        loss = step_fn(s)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"name": name, "initial": initial, "losses": losses, "final": state(model)}


def models():
    torch.manual_seed(1)
    out = []
    m = Residual()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    out.append(train("residual MLP", m, opt, lambda s: F.cross_entropy(m(data(16, 6, s)), labels(16, 3, s))))

    torch.manual_seed(2)
    m2 = TwoInputs()
    opt2 = torch.optim.SGD(m2.parameters(), lr=0.05, momentum=0.9)
    out.append(train("two inputs, concatenated", m2, opt2, lambda s: F.mse_loss(m2(data(8, 3, s), data(8, 5, s + 50)), data(8, 2, s + 90))))

    torch.manual_seed(3)
    m3 = Siamese()
    opt3 = torch.optim.SGD(m3.parameters(), lr=0.1)

    def contrastive(s):
        e1, e2 = m3(data(8, 4, s), data(8, 4, s + 30))
        d = torch.sqrt(((e1 - e2) ** 2).sum(1) + 1e-6)
        same = torch.tensor([float((i + s) % 2) for i in range(8)])
        return (same * d ** 2 + (1 - same) * torch.clamp(1.0 - d, min=0) ** 2).mean()

    out.append(train("siamese pair sharing weights, contrastive loss", m3, opt3, contrastive))

    torch.manual_seed(4)
    m4 = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(), torch.nn.Linear(8, 1))
    opt4 = torch.optim.Adam(m4.parameters(), lr=5e-3)
    # a custom loss: log-cosh of the error, written with operations
    out.append(train("custom loss (log-cosh)", m4, opt4, lambda s: torch.log(torch.cosh(m4(data(12, 5, s)) - data(12, 1, s + 70))).mean()))
    return out


def input_gradient():
    torch.manual_seed(5)
    m = Residual()
    x = data(4, 6, 9).requires_grad_(True)
    loss = F.cross_entropy(m(x), labels(4, 3, 1))
    (gx,) = torch.autograd.grad(loss, x)
    return {"initial": state(m), "x": x.detach().reshape(-1).tolist(), "loss": loss.item(), "gradient": gx.reshape(-1).tolist()}


# ---- layers: state-dict keys and shapes, the bound of each uniform initialisation, and the forward with these weights ----

# (name, constructor, input shape); the names are the keys of lib/check/autograd.ts LAYERS
LAYERS = [
    ("ConvTranspose2d(6→3, k=3×2, s=2, p=1, op=1)", lambda: torch.nn.ConvTranspose2d(6, 3, (3, 2), stride=2, padding=1, output_padding=1), [2, 6, 3, 3]),
    ("ConvTranspose2d(2→5, k=3, d=2) without bias", lambda: torch.nn.ConvTranspose2d(2, 5, 3, dilation=2, bias=False), [1, 2, 4, 3]),
    ("Conv1d(3→5, k=4, s=2, p=1)", lambda: torch.nn.Conv1d(3, 5, 4, stride=2, padding=1), [2, 3, 9]),
    ("GroupNorm(2, 6)", lambda: torch.nn.GroupNorm(2, 6), [2, 6, 3, 2]),
    ("GroupNorm(3, 6) without affine", lambda: torch.nn.GroupNorm(3, 6, affine=False), [2, 6, 4]),
    ("Upsample(scaleFactor=2, nearest)", lambda: torch.nn.Upsample(scale_factor=2), [1, 2, 3, 3]),
    ("Upsample(size=[5, 7], bilinear, alignCorners)", lambda: torch.nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), [2, 1, 3, 4]),
    ("Identity", lambda: torch.nn.Identity(3, flag=True), [2, 3]),
    ("Dropout2d(0.3) in eval mode", lambda: torch.nn.Dropout2d(0.3).eval(), [2, 3, 2, 2]),
]


def init_bound(m, key, t):
    """The bound of a parameter's U(−bound, bound) initialisation, from torch's own fan-in (kaiming_uniform with a = √5
    gives 1/√fan_in; _ConvNd's bias uses the weight's fan_in), or None for a constant initialisation."""
    if not isinstance(m, torch.nn.modules.conv._ConvNd):
        return None
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(m.weight)
    return 1 / math.sqrt(fan_in)


def layer_case(name, make, shape):
    torch.manual_seed(0)
    m = make()
    x, rec = spec_tensor((shape,), 1)
    with torch.no_grad():
        y = m(x)
    return {
        "name": name,
        "state": {k: {"shape": list(v.shape), "data": v.reshape(-1).tolist(), "bound": init_bound(m, k, v)} for k, v in m.state_dict().items()},
        "input": {"shape": shape, "data": rec["data"]},
        "output": {"shape": list(y.shape), "data": y.reshape(-1).tolist()},
    }


def main():
    result = {
        "torch": torch.__version__,
        "ops": [op_case(*c) for c in OPS],
        "models": models(),
        "inputGradient": input_gradient(),
        "layers": [layer_case(*c) for c in LAYERS],
    }
    with open(OUT, "w") as f:
        json.dump(result, f)
    print(f"wrote {OUT}: {len(result['ops'])} operations, {len(result['models'])} models, {len(result['layers'])} layers")


if __name__ == "__main__":
    main()
