"""The benchmark workloads' PyTorch models, and W4's training loop, shared by the CPU and GPU peers
(bench/workloads.mjs has the same definitions for retrograd)."""
import itertools
import statistics
import time


def mlp(torch, sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def cnn(torch, c):
    layers = []
    for i in range(len(c["channels"]) - 1):
        layers += [torch.nn.Conv2d(c["channels"][i], c["channels"][i + 1], c["kernel"], padding=c["padding"]),
                   torch.nn.ReLU(), torch.nn.MaxPool2d(c["pool"])]
    side = 28 // c["pool"] ** (len(c["channels"]) - 1)
    layers += [torch.nn.Flatten(), torch.nn.Linear(c["channels"][-1] * side * side, c["classes"])]
    return torch.nn.Sequential(*layers)


def gpt(torch, g):
    """W4's tiny GPT in plain torch.nn, the architecture of examples/text.mjs's tinyGpt: token embedding, learned
    positions [contextLength, E], per block x = x + attn(ln1(x)) (causal) and x = x + mlp(ln2(x)) with
    Linear(E, r·E)-GELU-Linear(r·E, E), a final LayerNorm and Linear(E, vocab). Input [B, T] token ids, output
    logits [B, T, vocab]."""
    nn = torch.nn
    vocab, T, E, H = g["vocab"], g["contextLength"], g["embedDim"], g["numHeads"]
    hidden = round(E * g.get("mlpRatio", 4))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(E), nn.LayerNorm(E)
            self.attn = nn.MultiheadAttention(E, H, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(E, hidden), nn.GELU(), nn.Linear(hidden, E))

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class TinyGpt(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, E)
            self.pos = nn.Parameter(0.02 * torch.randn(T, E))  # GPT-2's N(0, 0.02²) start, as PositionalEmbedding
            self.blocks = nn.ModuleList(Block() for _ in range(g["numLayers"]))
            self.ln = nn.LayerNorm(E)
            self.head = nn.Linear(E, vocab)
            # True above the diagonal: position i sees positions <= i only
            self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), persistent=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos[:t]
            for block in self.blocks:
                x = block(x, self.mask[:t, :t])
            return self.head(self.ln(x))

    return TinyGpt()


def token_batches(torch, w, count, seed, dev="cpu"):
    """count batches of W4's data: per sequence T + 1 uniform token ids from a seeded generator, x the first T
    ([B, T]) and y the next token at every position ([B·T]), as tokenBatches in bench/workloads.mjs."""
    g = torch.Generator().manual_seed(seed)
    B, T, vocab = w["batch"], w["gpt"]["contextLength"], w["gpt"]["vocab"]
    out = []
    for _ in range(count):
        seq = torch.randint(0, vocab, (B, T + 1), generator=g)
        out.append((seq[:, :-1].contiguous().to(dev), seq[:, 1:].reshape(-1).to(dev)))
    return out


def build(torch, w):
    """The model of workload w: the CNN when it has "cnn", else the MLP of its "sizes"."""
    return cnn(torch, w["cnn"]) if "cnn" in w else mlp(torch, w["sizes"])


def time_steps(step, read, group=1, warmup=3, min_samples=20, seconds=5.0, max_samples=1000, budget=30.0):
    """As timeSteps in bench/workloads.mjs: step() queues one training step and returns its loss, read(loss) waits
    for it and returns the number; a sample is `group` steps then one read. `warmup` samples (fewer once they take a
    quarter of the budget), then at least `min_samples` and more until `seconds` have passed, within `budget`."""
    def sample():
        for _ in range(group):
            loss = step()
        return read(loss)

    tw = time.perf_counter()
    first_loss = sample()
    for _ in range(1, warmup):
        if time.perf_counter() - tw >= budget / 4:
            break
        sample()
    times, spent, loss = [], 0.0, None
    while not times or (spent < budget if len(times) < min_samples else spent < min(seconds, budget) and len(times) < max_samples):
        t = time.perf_counter()
        loss = sample()
        s = time.perf_counter() - t
        times.append(s / group)
        spent += s
    return {"secondsPerStep": statistics.median(times), "samples": len(times), "stepsPerSample": group,
            "firstLoss": first_loss, "loss": loss}


def train_gpt(torch, w, dev="cpu", budget=30.0, group=1, seconds=5.0, sync=None):
    """W4: the tiny GPT, AdamW, cross-entropy over the [B·T, vocab] logits, eager float32, a plain loop over 8
    batches of random tokens held on `dev`. tokensPerSecond = B·T / the median step, with time_steps' figures.
    `sync()` (torch.cuda.synchronize on a GPU) runs before each read of the loss."""
    torch.manual_seed(1)
    model = gpt(torch, w["gpt"]).to(dev).train()
    kind, opts = w["opt"]
    assert kind == "adamw", kind
    opt = torch.optim.AdamW(model.parameters(), **opts)  # betas 0.9/0.999, eps 1e-8, weight_decay 0.01
    data = token_batches(torch, w, 8, 4, dev)
    vocab, n = w["gpt"]["vocab"], itertools.count()

    def step():
        x, y = data[next(n) % len(data)]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x).view(-1, vocab), y)
        loss.backward()
        opt.step()
        return loss

    def read(loss):
        if sync:
            sync()
        return loss.item()

    r = time_steps(step, read, group, seconds=seconds, budget=budget)
    tokens = w["batch"] * w["gpt"]["contextLength"]
    return {"tokensPerSecond": tokens / r["secondsPerStep"], "tokensPerStep": tokens, **r,
            "optimizer": f"{type(opt).__name__} {opts}"}
