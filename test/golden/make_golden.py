#!/usr/bin/python3
"""Golden values from PyTorch for retrograd's tests (optimizers, losses, layers, convolution, pooling, batch
normalisation, a small CNN's training steps, layer normalisation, embeddings, the recurrent layers RNN (tanh and
ReLU), LSTM and GRU with their initial and final states, multi-head self-attention with and without a causal mask,
and a pre-norm transformer block).

Run with Debian's python3-torch (1.13): `npm run golden` (/usr/bin/python3 test/golden/make_golden.py).
Writes test/golden/torch.json; the tests read that file and never need Python. Inputs are deterministic
formulas: the optimizer cases' are rebuilt on the TypeScript side, the layer cases store theirs (as float32 values).
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch.json")


def init_param(n):
    return torch.tensor([math.sin(0.37 * i + 0.2) for i in range(n)], dtype=torch.float32)


def grad_at(n, t):
    # varying sign and magnitude from step to step, so momentum, AMSGrad's max and bias correction all matter
    scale = 2.0 if t % 2 == 0 else 0.5
    return torch.tensor([scale * math.cos(0.71 * i + 1.3 * t) for i in range(n)], dtype=torch.float32)


OPTIM_CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.9), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6, "maximize": True}),
    ("Adamax", {"lr": 0.02}),
    ("Adamax", {"lr": 0.02, "betas": (0.8, 0.95), "weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.05, "maximize": True}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "betas": (0.5, 0.7), "weight_decay": 0.1}),
    ("NAdam2", {"lr": 0.01}),
    ("NAdam2", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.05, "momentum_decay": 0.01}),
]
STEPS_LONG = 12  # RAdam rectifies from step 6 with betas (0.9, 0.999); a longer run covers both regimes


def nadam2(param, opts, steps):
    """NAdam as PyTorch >= 2.0 computes it (1.13 multiplies mu into the second bias correction twice)."""
    lr, (b1, b2) = opts.get("lr", 2e-3), opts.get("betas", (0.9, 0.999))
    eps, wd, md = opts.get("eps", 1e-8), opts.get("weight_decay", 0), opts.get("momentum_decay", 4e-3)
    p = param.clone().double()
    m, v, mu_product, traj = torch.zeros_like(p), torch.zeros_like(p), 1.0, []
    for t in range(steps):
        g = grad_at(p.numel(), t).double()
        step = t + 1
        if wd:
            g = g + wd * p
        mu = b1 * (1 - 0.5 * 0.96 ** (step * md))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * md))
        mu_product *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = (v / (1 - b2 ** step)).sqrt() + eps
        p = p - lr * (1 - mu) / (1 - mu_product) * g / denom - lr * mu_next / (1 - mu_product * mu_next) * m / denom
        traj.append(p.float().tolist())
    return traj
N_PARAM = 7
STEPS = 6


def optim_cases():
    out = []
    for name, opts in OPTIM_CASES:
        steps = STEPS_LONG if name in ("RAdam", "NAdam2") else STEPS
        if name == "NAdam2":
            out.append({"optimizer": "NAdam", "options": {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()},
                        "trajectory": nadam2(init_param(N_PARAM), opts, steps)})
            continue
        p = torch.nn.Parameter(init_param(N_PARAM))
        opt = getattr(torch.optim, name)([p], **opts)
        traj = []
        for t in range(steps):
            p.grad = grad_at(N_PARAM, t)
            opt.step()
            traj.append(p.detach().tolist())
        out.append({"optimizer": name, "options": {k: list(v) if isinstance(v, tuple) else v for k, v in opts.items()},
                    "trajectory": traj})
    return out


def seq(n, a, b, c=0.0):
    return [math.sin(a * i + b) * 3 + c for i in range(n)]


def loss_cases():
    out = []
    pred = torch.tensor(seq(12, 0.9, 0.1), requires_grad=True)
    target = torch.tensor(seq(12, 0.4, 1.0))
    for name, fn, p_in, t_in in [
        ("MSELoss", torch.nn.MSELoss(), pred, target),
        ("BCEWithLogitsLoss", torch.nn.BCEWithLogitsLoss(), pred, (target / 6 + 0.5).clamp(0, 1)),
        ("BCELoss", torch.nn.BCELoss(), torch.sigmoid(pred.detach()).requires_grad_(), (target / 6 + 0.5).clamp(0, 1)),
        ("L1Loss", torch.nn.L1Loss(), pred, target),
        ("HuberLoss", torch.nn.HuberLoss(delta=1.0), pred, target),
        ("HuberLoss delta 2.5", torch.nn.HuberLoss(delta=2.5), pred, target),
    ]:
        if p_in.grad is not None:
            p_in.grad = None
        loss = fn(p_in.view(3, 4), t_in.view(3, 4))
        loss.backward()
        out.append({"loss": name, "pred": p_in.detach().tolist(), "target": t_in.tolist(), "shape": [3, 4],
                    "value": loss.item(), "grad": p_in.grad.tolist()})
    # cross-entropy, [N, C] with an ignored target, and [N, C, d]
    logits = torch.tensor(seq(20, 1.3, 0.5), requires_grad=True)
    tgt = torch.tensor([2, 4, -100, 0], dtype=torch.long)
    loss = torch.nn.CrossEntropyLoss()(logits.view(4, 5), tgt)
    loss.backward()
    out.append({"loss": "CrossEntropyLoss", "pred": logits.detach().tolist(), "target": tgt.tolist(), "shape": [4, 5],
                "value": loss.item(), "grad": logits.grad.tolist()})
    logits = torch.tensor(seq(24, 0.7, 0.2), requires_grad=True)
    tgt = torch.tensor([[0, 2], [1, 1], [2, 0], [1, 2]], dtype=torch.long)
    loss = torch.nn.CrossEntropyLoss()(logits.view(4, 3, 2), tgt)
    loss.backward()
    out.append({"loss": "CrossEntropyLoss", "pred": logits.detach().tolist(), "target": tgt.flatten().tolist(),
                "shape": [4, 3, 2], "value": loss.item(), "grad": logits.grad.tolist()})
    return out


def group_cases():
    """Per-parameter-group options: two parameters, each in its own group, with a scheduler on top."""
    out = []
    for name, make in [
        ("SGD", lambda a, b: torch.optim.SGD([{"params": [a], "weight_decay": 0.0}, {"params": [b], "lr": 0.01}],
                                              lr=0.1, momentum=0.9, weight_decay=0.1)),
        ("AdamW", lambda a, b: torch.optim.AdamW([{"params": [a]}, {"params": [b], "weight_decay": 0.0, "betas": (0.8, 0.9)}],
                                                  lr=0.05)),
    ]:
        a, b = torch.nn.Parameter(init_param(4)), torch.nn.Parameter(init_param(3) * 2)
        opt = make(a, b)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        traj = []
        for t in range(STEPS):
            a.grad, b.grad = grad_at(4, t), grad_at(3, t + 1)
            opt.step()
            sched.step()
            traj.append({"a": a.detach().tolist(), "b": b.detach().tolist(), "lrs": [g["lr"] for g in opt.param_groups]})
        out.append({"optimizer": name, "trajectory": traj})
    return out


def clip_cases():
    out = []
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, float("inf"))]:
        ps = [torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(2, 3))]
        ps[0].grad = torch.tensor(seq(5, 0.3, 0.2))
        ps[1].grad = torch.tensor(seq(6, 0.8, 1.1)).view(2, 3)
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
        out.append({"maxNorm": max_norm, "normType": "inf" if norm_type == float("inf") else norm_type,
                    "total": total.item(), "grads": [p.grad.flatten().tolist() for p in ps]})
    ps = [torch.nn.Parameter(torch.zeros(5))]
    ps[0].grad = torch.tensor(seq(5, 0.3, 0.2))
    torch.nn.utils.clip_grad_value_(ps, 1.5)
    out.append({"clipValue": 1.5, "grads": [ps[0].grad.tolist()]})
    return out


def layer_cases():
    out = []
    x = torch.tensor(seq(15, 0.61, 0.3), requires_grad=True)
    dy = torch.tensor(seq(12, 0.23, 0.9))
    lin = torch.nn.Linear(5, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(seq(20, 0.45, 0.7)).view(4, 5) / 3)
        lin.bias.copy_(torch.tensor(seq(4, 1.1, 0.1)) / 3)
    y = lin(x.view(3, 5))
    y.backward(dy.view(3, 4))
    out.append({"layer": "Linear", "args": [5, 4], "x": x.detach().tolist(), "xShape": [3, 5],
                "weight": lin.weight.detach().flatten().tolist(), "bias": lin.bias.detach().tolist(),
                "y": y.detach().flatten().tolist(), "dy": dy.tolist(), "dx": x.grad.tolist(),
                "dweight": lin.weight.grad.flatten().tolist(), "dbias": lin.bias.grad.tolist(),
                "stateDictKeys": list(lin.state_dict().keys())})
    for name, mod in [("ReLU", torch.nn.ReLU()), ("LeakyReLU", torch.nn.LeakyReLU(0.1)), ("Sigmoid", torch.nn.Sigmoid()),
                      ("Tanh", torch.nn.Tanh()), ("GELU", torch.nn.GELU()), ("Softmax", torch.nn.Softmax(dim=-1))]:
        x = torch.tensor(seq(12, 0.83, 0.4), requires_grad=True)
        dy = torch.tensor(seq(12, 0.29, 1.7))
        y = mod(x.view(3, 4))
        y.backward(dy.view(3, 4))
        out.append({"layer": name, "args": [0.1] if name == "LeakyReLU" else [], "x": x.detach().tolist(), "xShape": [3, 4],
                    "y": y.detach().flatten().tolist(), "dy": dy.tolist(), "dx": x.grad.tolist()})
    seq_model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    out.append({"layer": "SequentialKeys", "stateDictKeys": list(seq_model.state_dict().keys())})
    return out


SCHED_STEPS = 25
PLATEAU_METRICS = [1, 0.9, 0.95, 0.93, 0.92, 0.91, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.4, 0.41, 0.42,
                   0.43, 0.44, 0.2, 0.3, 0.3, 0.3, 0.3]


def scheduler_cases():
    S = torch.optim.lr_scheduler

    def sgd():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1, momentum=0.9)

    def adam():
        return torch.optim.Adam([torch.nn.Parameter(torch.zeros(3))], lr=0.1)

    cases = {
        "StepLR": (sgd, lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
        "MultiStepLR": (sgd, lambda o: S.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3)),
        "ExponentialLR": (sgd, lambda o: S.ExponentialLR(o, gamma=0.9)),
        "CosineAnnealingLR": (sgd, lambda o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
        "LinearLR": (sgd, lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4)),
        "SequentialLR warm-up + exponential": (sgd, lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.ExponentialLR(o, gamma=0.8)], milestones=[3])),
        "SequentialLR warm-up + cosine": (sgd, lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.5, total_iters=4), S.CosineAnnealingLR(o, T_max=10)], milestones=[4])),
        "OneCycleLR SGD": (sgd, lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=SCHED_STEPS + 1)),
        "OneCycleLR Adam three-phase linear": (adam, lambda o: S.OneCycleLR(
            o, max_lr=0.5, total_steps=SCHED_STEPS + 1, anneal_strategy="linear", three_phase=True)),
        "ReduceLROnPlateau min": (sgd, lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, cooldown=1)),
        "ReduceLROnPlateau max abs": (sgd, lambda o: S.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.1,
                                                                          patience=1, min_lr=0.02)),
    }
    out = []
    for name, (make_opt, make_sched) in cases.items():
        opt = make_opt()
        sched = make_sched(opt)
        g = opt.param_groups[0]
        lrs, momenta = [g["lr"]], [g.get("momentum", g.get("betas", [None])[0])]
        for t in range(SCHED_STEPS):
            opt.step()
            if isinstance(sched, S.ReduceLROnPlateau):
                sched.step(PLATEAU_METRICS[t])
            else:
                sched.step()
            lrs.append(g["lr"])
            momenta.append(g.get("momentum", g.get("betas", [None])[0]))
        out.append({"name": name, "lrs": lrs, "momenta": momenta})
    return out


def flat(t):
    return t.detach().flatten().tolist()


def pairs(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


def conv_cases():
    """Conv2d forward, dL/dx, dW and db for a fixed upstream gradient; odd, non-square sizes and every option."""
    out = []
    # (name, C, OC, kernel, stride, padding, dilation, bias, [B, H, W])
    for name, C, OC, k, s, p, d, bias, (B, H, W) in [
        ("stride 2, padding 1", 3, 4, 3, 2, 1, 1, True, (2, 7, 9)),
        ("dilation 2, padding 2", 2, 3, 3, 1, 2, 2, True, (2, 8, 6)),
        ("one input channel, no bias, batch 1, 2x3 kernel", 1, 2, (2, 3), 1, 0, 1, False, (1, 5, 5)),
        ("per-axis stride, padding and dilation", 3, 5, (3, 2), (1, 2), (1, 0), (1, 2), True, (3, 6, 11)),
        ("5x5 kernel, stride 3, padding 2, batch 1, no bias", 4, 2, 5, 3, 2, 1, False, (1, 13, 12)),
        ("1x1 kernel", 3, 2, 1, 1, 0, 1, True, (2, 3, 5)),
    ]:
        conv = torch.nn.Conv2d(C, OC, k, stride=s, padding=p, dilation=d, bias=bias)
        fan_in = conv.weight[0].numel()
        with torch.no_grad():
            conv.weight.copy_(torch.tensor(seq(conv.weight.numel(), 0.53, 0.4)).view_as(conv.weight) / (3 * math.sqrt(fan_in)))
            if bias:
                conv.bias.copy_(torch.tensor(seq(OC, 1.7, 0.3)) / 3)
        x = torch.tensor(seq(B * C * H * W, 0.37, 0.1)).view(B, C, H, W).requires_grad_()
        y = conv(x)
        dy = torch.tensor(seq(y.numel(), 0.61, 1.2)).view_as(y)
        y.backward(dy)
        case = {"name": name, "inChannels": C, "outChannels": OC, "kernelSize": pairs(k), "stride": pairs(s),
                "padding": pairs(p), "dilation": pairs(d), "useBias": bias, "xShape": [B, C, H, W], "x": flat(x),
                "weight": flat(conv.weight), "yShape": list(y.shape), "y": flat(y), "dy": flat(dy), "dx": flat(x.grad),
                "dweight": flat(conv.weight.grad), "stateDictKeys": list(conv.state_dict().keys())}
        if bias:
            case.update({"bias": flat(conv.bias), "dbias": flat(conv.bias.grad)})
        out.append(case)
    return out


def pool_cases():
    """Pooling forward and dL/dx; the inputs have no ties, so max pooling's argmax is unambiguous."""
    out = []
    for layer, k, s, p, cip, shape in [
        ("MaxPool2d", 3, 2, 1, None, (2, 3, 7, 9)),
        ("MaxPool2d", 2, 2, 0, None, (2, 2, 6, 8)),
        ("MaxPool2d", 2, 2, 0, None, (1, 3, 5, 7)),  # odd sizes: the last row and column are dropped
        ("MaxPool2d", (3, 2), (1, 2), (1, 1), None, (2, 2, 5, 6)),
        ("AvgPool2d", 3, 2, 1, True, (2, 3, 7, 8)),
        ("AvgPool2d", 3, 2, 1, False, (2, 3, 7, 8)),
        ("AvgPool2d", (2, 3), (2, 1), (1, 1), False, (1, 2, 5, 6)),
        ("AvgPool2d", 2, 2, 0, True, (2, 2, 6, 5)),
        ("AdaptiveAvgPool2d", None, None, None, None, (2, 3, 5, 6)),
        ("GlobalAvgPool2d", None, None, None, None, (3, 4, 3, 7)),
    ]:
        n = math.prod(shape)
        vals = seq(n, 0.91, 0.35)
        assert len(set(torch.tensor(vals).tolist())) == n, "tied input values"
        x = torch.tensor(vals).view(*shape).requires_grad_()
        if layer == "MaxPool2d":
            y = torch.nn.MaxPool2d(k, stride=s, padding=p)(x)
        elif layer == "AvgPool2d":
            y = torch.nn.AvgPool2d(k, stride=s, padding=p, count_include_pad=cip)(x)
        elif layer == "AdaptiveAvgPool2d":
            y = torch.nn.AdaptiveAvgPool2d(1)(x)
        else:  # retrograd's [B, C, H, W] -> [B, C]: AdaptiveAvgPool2d(1) then flatten
            y = torch.nn.AdaptiveAvgPool2d(1)(x).flatten(1)
        dy = torch.tensor(seq(y.numel(), 0.43, 0.8)).view_as(y)
        y.backward(dy)
        case = {"layer": layer, "xShape": list(shape), "x": flat(x), "yShape": list(y.shape), "y": flat(y),
                "dy": flat(dy), "dx": flat(x.grad)}
        if k is not None:
            case.update({"kernelSize": pairs(k), "stride": pairs(s), "padding": pairs(p)})
        if cip is not None:
            case["countIncludePad"] = cip
        out.append(case)
    return out


def batchnorm_cases():
    """Training forward and backward, the running statistics after two training forwards, then eval forward and
    backward with those statistics."""
    out = []
    for layer, C, shape, momentum, eps, affine in [
        ("BatchNorm1d", 5, (6, 5), 0.1, 1e-5, True),
        ("BatchNorm1d", 3, (4, 3, 7), 0.3, 1e-5, True),
        ("BatchNorm1d", 4, (3, 4, 2), None, 1e-5, True),  # momentum None: the cumulative average
        ("BatchNorm2d", 3, (2, 3, 5, 4), 0.1, 1e-5, True),
        ("BatchNorm2d", 4, (3, 4, 3, 5), 0.3, 1e-3, True),
        ("BatchNorm2d", 2, (2, 2, 3, 3), 0.3, 1e-5, False),
    ]:
        bn = getattr(torch.nn, layer)(C, eps=eps, momentum=momentum, affine=affine)
        if affine:
            with torch.no_grad():
                bn.weight.copy_(1 + torch.tensor(seq(C, 0.9, 0.2)) / 6)
                bn.bias.copy_(torch.tensor(seq(C, 1.3, 0.7)) / 6)
        n = math.prod(shape)
        # means and spreads differ per channel, so the running statistics move away from 0 and 1
        xs = [torch.tensor(seq(n, 0.77 + 0.1 * t, 0.3 * t, 0.5 * t)).view(*shape) for t in range(3)]
        xs = [x * (1 + 0.3 * torch.arange(C, dtype=torch.float32)).view(1, C, *[1] * (len(shape) - 2)) for x in xs]
        dy = torch.tensor(seq(n, 0.47, 1.9)).view(*shape)
        dy_eval = torch.tensor(seq(n, 0.29, 0.6)).view(*shape)
        bn.train()
        x1 = xs[0].clone().requires_grad_()
        y1 = bn(x1)
        y1.backward(dy)
        case = {"layer": layer, "numFeatures": C, "momentum": momentum, "eps": eps, "affine": affine, "xShape": list(shape),
                "x1": flat(xs[0]), "x2": flat(xs[1]), "x3": flat(xs[2]), "dy": flat(dy), "dyEval": flat(dy_eval),
                "y1": flat(y1), "dx1": flat(x1.grad),
                "runningMean1": flat(bn.running_mean), "runningVar1": flat(bn.running_var)}
        if affine:
            case.update({"weight": flat(bn.weight), "bias": flat(bn.bias), "dweight1": flat(bn.weight.grad), "dbias1": flat(bn.bias.grad)})
            bn.weight.grad, bn.bias.grad = None, None
        with torch.no_grad():
            bn(xs[1])
        case.update({"runningMean2": flat(bn.running_mean), "runningVar2": flat(bn.running_var),
                     "numBatchesTracked": bn.num_batches_tracked.item()})
        bn.eval()
        x3 = xs[2].clone().requires_grad_()
        y3 = bn(x3)
        y3.backward(dy_eval)
        case.update({"yEval": flat(y3), "dxEval": flat(x3.grad), "stateDictKeys": list(bn.state_dict().keys())})
        if affine:
            case.update({"dweightEval": flat(bn.weight.grad), "dbiasEval": flat(bn.bias.grad)})
        out.append(case)
    return out


def layernorm_cases():
    """LayerNorm forward and backward (dx, dweight, dbias) over the last dimension and over the last two, with and
    without the elementwise affine parameters."""
    out = []
    for shape, normalized, eps, affine in [
        ((3, 4, 6), [6], 1e-5, True),
        ((2, 3, 2, 5), [2, 5], 1e-3, False),
        ((4, 3, 5), [3, 5], 1e-5, True),
    ]:
        ln = torch.nn.LayerNorm(normalized, eps=eps, elementwise_affine=affine)
        d = math.prod(normalized)
        if affine:
            with torch.no_grad():
                ln.weight.copy_((1 + torch.tensor(seq(d, 0.7, 0.3)) / 6).view(*normalized))
                ln.bias.copy_((torch.tensor(seq(d, 1.1, 0.5)) / 6).view(*normalized))
        n = math.prod(shape)
        # rows with different means and spreads
        x = (torch.tensor(seq(n, 0.59, 0.2, 0.7)) * (1 + 0.2 * (torch.arange(n) // d).float())).view(*shape)
        x = x.requires_grad_()
        y = ln(x)
        dy = torch.tensor(seq(n, 0.31, 1.4)).view(*shape)
        y.backward(dy)
        case = {"normalizedShape": normalized, "eps": eps, "affine": affine, "xShape": list(shape), "x": flat(x), "y": flat(y),
                "dy": flat(dy), "dx": flat(x.grad), "stateDictKeys": list(ln.state_dict().keys())}
        if affine:
            case.update({"weight": flat(ln.weight), "bias": flat(ln.bias), "dweight": flat(ln.weight.grad), "dbias": flat(ln.bias.grad)})
        out.append(case)
    return out


def embedding_cases():
    """Embedding forward and the weight gradient, indices of two shapes with repeats (and an unused embedding)."""
    out = []
    for num, dim, index_shape, index in [
        (7, 5, [2, 4], [3, 0, 3, 6, 1, 3, 0, 5]),
        (4, 3, [5], [2, 2, 2, 0, 1]),
    ]:
        emb = torch.nn.Embedding(num, dim)
        with torch.no_grad():
            emb.weight.copy_(torch.tensor(seq(num * dim, 0.83, 0.6)).view(num, dim))
        idx = torch.tensor(index, dtype=torch.long).view(*index_shape)
        y = emb(idx)
        dy = torch.tensor(seq(y.numel(), 0.47, 0.9)).view_as(y)
        y.backward(dy)
        out.append({"numEmbeddings": num, "embeddingDim": dim, "indexShape": index_shape, "index": index,
                    "weight": flat(emb.weight), "yShape": list(y.shape), "y": flat(y), "dy": flat(dy),
                    "dweight": flat(emb.weight.grad), "stateDictKeys": list(emb.state_dict().keys())})
    return out


def fill_params(module, a=0.41, b=0.3):
    """Deterministic, non-trivial values for every parameter of `module` (named_parameters order): weights
    sin-shaped with amplitude 1/sqrt(fan-in), biases amplitude 1/2, LayerNorm weights around 1."""
    with torch.no_grad():
        for i, (name, p) in enumerate(module.named_parameters()):
            vals = torch.tensor(seq(p.numel(), a + 0.07 * i, b + 0.5 * i)).view_as(p)
            leaf = name.rsplit(".", 1)[-1]
            if p.dim() > 1:
                vals = vals / (3 * math.sqrt(p.shape[1]))
            elif leaf == "weight":  # a LayerNorm's scale
                vals = 1 + vals / 6
            else:
                vals = vals / 6
            p.copy_(vals)


def grads_of(module):
    return {name: flat(p.grad) for name, p in module.named_parameters()}


def rnn_cases():
    """RNN (tanh, ReLU), LSTM and GRU: output, final state, and the backward of a fixed upstream gradient on the
    output plus one on the final state: dx, every parameter's gradient (PyTorch's names) and the initial state's."""
    out = []
    # (mode, nonlinearity, I, H, numLayers, batch_first, xShape, with an initial state)
    for mode, nl, I, H, L, bf, shape, with_init in [
        ("LSTM", None, 4, 6, 1, False, (5, 3, 4), False),
        ("LSTM", None, 3, 5, 2, True, (2, 4, 3), True),
        ("GRU", None, 4, 6, 1, False, (5, 3, 4), False),
        ("GRU", None, 3, 5, 2, True, (2, 4, 3), True),
        ("RNN", "tanh", 4, 6, 1, False, (5, 3, 4), True),
        ("RNN", "relu", 3, 5, 1, True, (2, 4, 3), False),
    ]:
        kw = {"nonlinearity": nl} if nl else {}
        m = getattr(torch.nn, mode)(I, H, num_layers=L, batch_first=bf, **kw)
        fill_params(m, 0.43, 0.2 + 0.1 * L)
        B = shape[0] if bf else shape[1]
        n = math.prod(shape)
        x = torch.tensor(seq(n, 0.57, 0.3)).view(*shape).div(2).requires_grad_()
        state_shape = (L, B, H)
        ns = math.prod(state_shape)
        h0 = torch.tensor(seq(ns, 0.73, 0.4)).view(*state_shape).div(4).requires_grad_() if with_init else None
        c0 = torch.tensor(seq(ns, 0.37, 1.1)).view(*state_shape).div(3).requires_grad_() if with_init and mode == "LSTM" else None
        if mode == "LSTM":
            y, (hn, cn) = m(x, (h0, c0)) if with_init else m(x)
        else:
            y, hn = m(x, h0) if with_init else m(x)
            cn = None
        dy = torch.tensor(seq(y.numel(), 0.31, 0.7)).view_as(y) / 3
        dhn = torch.tensor(seq(hn.numel(), 0.89, 1.5)).view_as(hn) / 3
        outs, grads = [y, hn], [dy, dhn]
        if cn is not None:
            dcn = torch.tensor(seq(cn.numel(), 0.53, 0.2)).view_as(cn) / 3
            outs.append(cn)
            grads.append(dcn)
        torch.autograd.backward(outs, grads)
        case = {"mode": mode, "inputSize": I, "hiddenSize": H, "numLayers": L, "batchFirst": bf, "xShape": list(shape),
                "x": flat(x), "stateShape": list(state_shape), "state": {k: flat(v) for k, v in m.state_dict().items()},
                "y": flat(y), "yShape": list(y.shape), "hN": flat(hn), "dy": flat(dy), "dhN": flat(dhn), "dx": flat(x.grad),
                "grads": grads_of(m), "stateDictKeys": list(m.state_dict().keys())}
        if nl:
            case["nonlinearity"] = nl
        if cn is not None:
            case.update({"cN": flat(cn), "dcN": flat(dcn)})
        if with_init:
            case.update({"h0": flat(h0), "dh0": flat(h0.grad)})
            if c0 is not None:
                case.update({"c0": flat(c0), "dc0": flat(c0.grad)})
        out.append(case)
    return out


def causal_mask(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)


def attention_cases():
    """MultiheadAttention(E, heads, batch_first=True) self-attention (query = key = value = x), need_weights=False,
    without a mask and with a causal one: output, dx and the parameter gradients."""
    out = []
    E, heads, B, T = 8, 2, 2, 5
    for causal in [False, True]:
        mha = torch.nn.MultiheadAttention(E, heads, batch_first=True)
        fill_params(mha, 0.47, 0.6)
        x = torch.tensor(seq(B * T * E, 0.61, 0.25)).view(B, T, E).div(2).requires_grad_()
        y, _ = mha(x, x, x, need_weights=False, attn_mask=causal_mask(T) if causal else None)
        dy = torch.tensor(seq(y.numel(), 0.39, 1.3)).view_as(y) / 3
        y.backward(dy)
        out.append({"embedDim": E, "numHeads": heads, "causal": causal, "xShape": [B, T, E], "x": flat(x),
                    "state": {k: flat(v) for k, v in mha.state_dict().items()}, "y": flat(y), "dy": flat(dy),
                    "dx": flat(x.grad), "grads": grads_of(mha), "stateDictKeys": list(mha.state_dict().keys())})
    return out


class PreNormBlock(torch.nn.Module):
    """retrograd's TransformerBlock: x1 = x + attn(ln1(x)), y = x1 + mlp(ln2(x1)), causal self-attention."""

    def __init__(self, E, heads, ratio=4):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(E)
        self.attn = torch.nn.MultiheadAttention(E, heads, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(E)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(E, ratio * E), torch.nn.GELU(), torch.nn.Linear(ratio * E, E))

    def forward(self, x):
        h = self.ln1(x)
        x1 = x + self.attn(h, h, h, need_weights=False, attn_mask=causal_mask(x.shape[1]))[0]
        return x1 + self.mlp(self.ln2(x1))


def transformer_case():
    """A pre-norm causal transformer block (E 8, 2 heads, MLP 4E with erf GELU): y, dx and every parameter's gradient
    under the state-dict names of retrograd's TransformerBlock."""
    E, heads, B, T = 8, 2, 2, 5
    block = PreNormBlock(E, heads)
    fill_params(block, 0.51, 0.9)
    x = torch.tensor(seq(B * T * E, 0.67, 0.15, 0.2)).view(B, T, E).requires_grad_()
    y = block(x)
    dy = torch.tensor(seq(y.numel(), 0.27, 0.45)).view_as(y) / 3
    y.backward(dy)
    return {"embedDim": E, "numHeads": heads, "mlpRatio": 4, "causal": True, "xShape": [B, T, E], "x": flat(x),
            "state": {k: flat(v) for k, v in block.state_dict().items()}, "y": flat(y), "dy": flat(dy), "dx": flat(x.grad),
            "grads": grads_of(block), "stateDictKeys": list(block.state_dict().keys())}


CNN_STEPS = 3


def cnn_case():
    """Conv2d-BatchNorm2d-ReLU-MaxPool2d-Flatten-Linear from fixed weights, CNN_STEPS steps of SGD with momentum on
    cross-entropy on one batch: the loss at each step, the final parameters and buffers."""
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 3))
    with torch.no_grad():
        for i, (name, v) in enumerate(model.state_dict().items()):
            if v.dtype != torch.float32:
                continue
            fan = v[0].numel() if v.dim() > 1 else 1
            vals = torch.tensor(seq(v.numel(), 0.41 + 0.07 * i, 0.5 * i)).view_as(v) / (3 * math.sqrt(fan))
            if name == "1.weight":
                vals = 1 + vals / 3
            if name == "1.running_var":
                vals = 1 + vals.abs()
            v.copy_(vals)
    init = {k: flat(v) for k, v in model.state_dict().items() if v.dtype == torch.float32}
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    shape = (4, 2, 6, 6)
    x = torch.tensor(seq(math.prod(shape), 0.57, 0.9)).view(*shape)
    target = torch.tensor([1, 0, 2, 1], dtype=torch.long)
    losses = []
    for _ in range(CNN_STEPS):
        opt.zero_grad()
        loss = torch.nn.CrossEntropyLoss()(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = {k: flat(v) for k, v in model.state_dict().items()}
    return {"lr": 0.05, "momentum": 0.9, "xShape": list(shape), "x": flat(x), "target": target.tolist(), "initial": init,
            "losses": losses, "final": final}


if __name__ == "__main__":
    data = {"torch": torch.__version__, "nParam": N_PARAM, "steps": STEPS, "optim": optim_cases(), "losses": loss_cases(),
            "layers": layer_cases(), "schedulers": scheduler_cases(), "clip": clip_cases(), "groups": group_cases(), "plateauMetrics": PLATEAU_METRICS,
            "conv": conv_cases(), "pool": pool_cases(), "batchnorm": batchnorm_cases(), "cnn": cnn_case(),
            "layernorm": layernorm_cases(), "embedding": embedding_cases(), "rnn": rnn_cases(), "attention": attention_cases(),
            "transformer": transformer_case()}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {OUT}")
