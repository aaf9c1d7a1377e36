#!/usr/bin/python3
"""Golden values from PyTorch for retrograd's tests (optimizers, losses, layers).

Run with Debian's python3-torch (1.13): `npm run golden` (/usr/bin/python3 test/golden/make_golden.py).
Writes test/golden/torch.json; the tests read that file and never need Python. Inputs are deterministic
formulas, so the TypeScript side rebuilds them without storing them.
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


if __name__ == "__main__":
    data = {"torch": torch.__version__, "nParam": N_PARAM, "steps": STEPS, "optim": optim_cases(), "losses": loss_cases(),
            "layers": layer_cases(), "schedulers": scheduler_cases(), "clip": clip_cases(), "groups": group_cases(), "plateauMetrics": PLATEAU_METRICS}
    with open(OUT, "w") as f:
        json.dump(data, f, indent=1)
    print(f"wrote {OUT}")
