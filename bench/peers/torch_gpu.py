#!/usr/bin/env python3
"""PyTorch CUDA peer of retrograd's GPU benchmark (bench/gpu.mjs runs it with the same options).

Same card, eager mode, float32:
  W1, W2 exactly as bench/workloads.mjs defines them, one epoch over the first N training samples, the data
  resident on the GPU, shuffled each epoch, batches by index slicing; a warm-up epoch, then the median of
  several, each between two torch.cuda.synchronize(). Matrix layers run in exact float32 (TF32 off).
  W4, the tiny GPT (models.train_gpt): tokens/s on random tokens held on the GPU, warm-up, then the median of
  >= 20 samples of 10 steps, each sample ending in torch.cuda.synchronize() and a read of the loss.
  GEMM n×n×n with torch.matmul in exact float32 and in TF32, timed with CUDA events: median of >= 20 reps
  after a warm-up, on random normal inputs.
Data: xTrain.f32 / yTrain.i32 (and xTest.f32 / yTest.i32 when present) as exportSplit writes them, or, without
--data, uniform [0, 1) pixels and uniform labels from a fixed seed.
Prints one JSON object on stdout and nothing else there; progress goes to stderr. Without a CUDA device it
prints one line 'no CUDA device: ...' on stderr and exits 1.
  python3 bench/peers/torch_gpu.py [--data DIR] [--epochs 5] [--quick] [--gemm 1024,2048,4096,8192]
"""
import argparse
import json
import os
import statistics
import sys
import time

import models

WORKLOADS = {
    "W1": {"sizes": [784, 256, 128, 10], "batch": 64, "opt": ("adam", {"lr": 1e-3})},
    "W2": {"sizes": [784, 1024, 1024, 10], "batch": 256, "opt": ("sgd", {"lr": 0.05, "momentum": 0.9})},
    "W3": {"cnn": {"channels": [1, 32, 64], "kernel": 5, "padding": 2, "pool": 2, "classes": 10}, "batch": 64,
           "opt": ("adam", {"lr": 1e-3})},
    "W4": {"gpt": {"vocab": 96, "contextLength": 64, "embedDim": 128, "numHeads": 4, "numLayers": 2, "mlpRatio": 4},
           "batch": 32, "opt": ("adamw", {"lr": 3e-4})},
}
GPT_GROUP = 10  # steps between two synchronisations, as bench/gpu.mjs
PIXELS = 784


def log(*a):
    print("[torch_gpu]", *a, file=sys.stderr, flush=True)


def set_tf32(torch, enabled):
    """TF32 for matmul on or off. PyTorch >= 2.9 has fp32_precision and deprecates allow_tf32; use one API only,
    since mixing the two is refused by some versions."""
    m = torch.backends.cuda.matmul
    try:
        m.fp32_precision = "tf32" if enabled else "ieee"
        return f"fp32_precision={m.fp32_precision}"
    except Exception:  # noqa: BLE001 - before 2.9 the attribute is refused with an AssertionError
        m.allow_tf32 = enabled
        return f"allow_tf32={m.allow_tf32}"


def load(torch, data, n, dev):
    meta_path = os.path.join(data, "meta.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    raw_x = torch.from_file(os.path.join(data, "xTrain.f32"), size=os.path.getsize(os.path.join(data, "xTrain.f32")) // 4, dtype=torch.float32)
    raw_y = torch.from_file(os.path.join(data, "yTrain.i32"), size=os.path.getsize(os.path.join(data, "yTrain.i32")) // 4, dtype=torch.int32)
    n_train = meta.get("nTrain", raw_y.numel())
    if raw_x.numel() != n_train * PIXELS:
        raise ValueError(f"{data}/xTrain.f32 holds {raw_x.numel()} floats, expected {n_train}×{PIXELS}")
    n = min(n, n_train)
    x = raw_x.view(n_train, PIXELS)[:n].to(dev)
    y = raw_y[:n].to(torch.int64).to(dev)
    xt = yt = None
    if os.path.exists(os.path.join(data, "xTest.f32")) and os.path.exists(os.path.join(data, "yTest.i32")):
        xt = torch.from_file(os.path.join(data, "xTest.f32"), size=os.path.getsize(os.path.join(data, "xTest.f32")) // 4, dtype=torch.float32)
        yt = torch.from_file(os.path.join(data, "yTest.i32"), size=os.path.getsize(os.path.join(data, "yTest.i32")) // 4, dtype=torch.int32)
        xt, yt = xt.view(-1, PIXELS).to(dev), yt.to(torch.int64).to(dev)
    return x, y, xt, yt, f"{data} (first {n} of {n_train})"


def synthetic(torch, n, seed, dev):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, PIXELS, generator=g).to(dev)
    y = torch.randint(0, 10, (n,), generator=g).to(dev)
    return x, y, None, None, f"synthetic: uniform [0,1) pixels, uniform labels, seed {seed}"


def train(torch, name, x, y, xt, yt, epochs, budget, dev):
    w = WORKLOADS[name]
    torch.manual_seed(1)
    model = models.build(torch, w).to(dev)
    if "cnn" in w:  # the CNN sees each digit as a 1×28×28 image (cuDNN, as PyTorch chooses by default)
        x = x.view(-1, 1, 28, 28)
        xt = xt.view(-1, 1, 28, 28) if xt is not None else None
    kind, opts = w["opt"]
    opt = torch.optim.Adam(model.parameters(), **opts) if kind == "adam" else torch.optim.SGD(model.parameters(), **opts)
    loss_fn = torch.nn.CrossEntropyLoss()
    n, bs = x.shape[0], w["batch"]
    steps = (n + bs - 1) // bs
    loss_sum = torch.zeros((), device=dev)

    def epoch():
        model.train()
        loss_sum.zero_()
        perm = torch.randperm(n, device=dev)
        for b in range(steps):
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum.add_(loss.detach(), alpha=xb.shape[0])

    def timed():
        torch.cuda.synchronize()
        t = time.perf_counter()
        epoch()
        torch.cuda.synchronize()
        return time.perf_counter() - t

    warmup = timed()
    times = []
    while len(times) < epochs and (not times or sum(times) < budget):
        times.append(timed())
    s = statistics.median(times)
    res = {"seconds": s, "msPerStep": 1000 * s / steps, "steps": steps, "batchSize": bs, "epochs": times,
           "warmupSeconds": warmup, "lastEpochLoss": loss_sum.item() / n, "optimizer": f"{type(opt).__name__} {opts}"}
    if xt is not None:
        model.eval()
        with torch.no_grad():
            res["testAccuracy"] = (model(xt).argmax(1) == yt).float().mean().item()
    log(f"{name}: {s:.4f} s/epoch, {res['msPerStep']:.3f} ms/step over {len(times)} epochs")
    return res


def train_gpt(torch, name, budget, seconds, dev):
    r = models.train_gpt(torch, WORKLOADS[name], dev, budget=budget, group=GPT_GROUP, seconds=seconds,
                         sync=torch.cuda.synchronize)
    r["msPerStep"] = 1000 * r["secondsPerStep"]
    log(f"{name}: {r['tokensPerSecond']:.0f} tokens/s, {r['msPerStep']:.3f} ms/step over {r['samples']}×{GPT_GROUP} steps,"
        f" loss {r['firstLoss']:.3f} → {r['loss']:.3f}")
    return r


def gemm(torch, sizes, reps, dev):
    """TFLOP/s of torch.matmul at n×n×n, exact float32 and TF32; the error of each against float64 shows which
    precision really ran."""
    out = {"fp32": {}, "tf32": {}, "relError": {}}
    g = torch.Generator(device=dev).manual_seed(3)
    ca = torch.randn(257, 300, device=dev, generator=g)
    cb = torch.randn(300, 129, device=dev, generator=g)
    ref = ca.double() @ cb.double()
    for mode in ("fp32", "tf32"):
        out[f"{mode}Setting"] = set_tf32(torch, mode == "tf32")
        out["relError"][mode] = ((ca @ cb).double() - ref).norm().item() / ref.norm().item()
        for n in sizes:
            a = torch.randn(n, n, device=dev, generator=g)
            b = torch.randn(n, n, device=dev, generator=g)
            c = torch.matmul(a, b)
            torch.cuda.synchronize()
            times = []
            for _ in range(reps):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.matmul(a, b, out=c)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000)
            out[mode][str(n)] = 2 * n ** 3 / statistics.median(times) / 1e12
            log(f"GEMM {n} {mode}: {out[mode][str(n)]:.1f} TFLOP/s")
            del a, b, c
    set_tf32(torch, False)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", help="folder with xTrain.f32 / yTrain.i32 (exportSplit); synthetic data without it")
    p.add_argument("--n", type=int, default=8000, help="training samples (default 8000)")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs after the warm-up (default 5)")
    p.add_argument("--budget", type=float, default=30, help="seconds of timed epochs per workload at most (default 30)")
    p.add_argument("--quick", action="store_true", help="3 timed epochs, GEMM at 4096 only")
    p.add_argument("--gemm", default=None, help="GEMM sizes (default 1024,2048,4096,8192; --quick: 4096)")
    p.add_argument("--reps", type=int, default=30, help="GEMM repetitions per size (default 30, at least 20)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: train, gemm")
    a = p.parse_args()
    epochs = min(a.epochs, 3) if a.quick else a.epochs
    sizes = [int(s) for s in (a.gemm or ("4096" if a.quick else "1024,2048,4096,8192")).split(",") if s]
    skip = set(filter(None, a.skip.split(",")))

    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure is reported the same way
        print(f"no PyTorch: {e}", file=sys.stderr)
        sys.exit(1)
    if not torch.cuda.is_available():
        why = f"torch {torch.__version__} built without CUDA" if torch.version.cuda is None else f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
        print(f"no CUDA device: {why}", file=sys.stderr)
        sys.exit(1)
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    res = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "device": props.name, "sms": props.multi_processor_count, "memoryGiB": props.total_memory / 2 ** 30,
           "workloads": {}, "errors": {}}
    log(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {props.name}")

    if "train" not in skip:
        try:
            set_tf32(torch, False)
            x, y, xt, yt, res["data"] = load(torch, a.data, a.n, dev) if a.data else synthetic(torch, a.n, 2024, dev)
            for name in WORKLOADS:
                try:
                    if "gpt" in WORKLOADS[name]:
                        res["workloads"][name] = train_gpt(torch, name, a.budget, 2 if a.quick else 4, dev)
                        continue
                    res["workloads"][name] = train(torch, name, x, y, xt, yt, epochs, a.budget, dev)
                except Exception as e:  # noqa: BLE001 - one workload failing must not stop the others
                    res["errors"][name] = f"{type(e).__name__}: {e}"
                    log(f"{name} failed: {res['errors'][name]}")
        except Exception as e:  # noqa: BLE001
            res["errors"]["data"] = f"{type(e).__name__}: {e}"
            log(f"data failed: {res['errors']['data']}")
    if "gemm" not in skip:
        try:
            res["gemm"] = gemm(torch, sizes, max(a.reps, 20), dev)
        except Exception as e:  # noqa: BLE001
            res["errors"]["gemm"] = f"{type(e).__name__}: {e}"
            log(f"GEMM failed: {res['errors']['gemm']}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
