#!/usr/bin/python3
"""Golden values from PyTorch for retrograd's attention and transformer modules: torch.nn.MultiheadAttention in its
general form (self- and cross-attention, L != S, batch first or not, unbatched, every kind of mask: bool and float
attn_mask [L, S] and [B*H, L, S], bool and float key padding masks hiding some keys, weights averaged or per head, no
bias), TransformerEncoderLayer / TransformerDecoderLayer (post- and pre-norm, relu and gelu, batch first or not, with
their masks), TransformerEncoder / TransformerDecoder stacks with a final norm and a whole Transformer; for each the
state dict, the inputs, the outputs and the gradients of a weighted sum of them with respect to the inputs and every
parameter. Then the state-dict keys and shapes of each module kind, and a small Transformer trained 20 steps with Adam
(the loss of every step and the final weights). Dropout is 0 everywhere, so everything is deterministic.

Run with Debian's python3-torch (1.13): /usr/bin/python3 test/golden/make_transformer_golden.py. Writes
test/golden/transformer.json; the tests (test/transformer-golden.test.ts) read that file and never need Python.
JSON has no infinities: a float mask's -inf is written as null.
"""
import json
import math
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float32)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformer.json")


def values(n, seed, scale=1.4):
    return [math.sin(1.7 * i + 0.9 * seed + 0.3) * scale for i in range(n)]


def tensor(shape, seed, scale=1.4):
    n = 1
    for d in shape:
        n *= d
    return torch.tensor(values(n, seed, scale), dtype=torch.float32).reshape(shape)


def short(v):
    """A float32 value in 9 significant digits (enough to give back the same float32), to keep the file small."""
    return float(f"{v:.9g}")


def flat(t):
    return [short(v) for v in t.detach().reshape(-1).tolist()]


def record(t):
    return {"shape": list(t.shape), "data": flat(t)}


def state(m):
    return {k: record(v) for k, v in m.state_dict().items()}


def keys(m):
    return [[k, list(v.shape)] for k, v in m.state_dict().items()]


def perturb(m, seed):
    """Biases and LayerNorm weights away from their 0 / 1 start, so that every parameter's gradient shows its use."""
    with torch.no_grad():
        for i, (name, p) in enumerate(m.named_parameters()):
            if p.dim() == 1:
                base = 1.0 if ("norm" in name and name.endswith("weight")) else 0.0
                p.copy_(base + tensor(list(p.shape), seed + i, 0.3))


# masks: bool ones hide some keys (never every key of a row); float ones mix finite values and -inf
def bool_mask(shape, seed, rate=0.3):
    n = 1
    for d in shape:
        n *= d
    v = [math.sin(2.3 * i + 1.1 * seed) > 1 - 2 * rate for i in range(n)]
    m = torch.tensor(v, dtype=torch.bool).reshape(shape)
    # keep the first key of every row visible
    m.reshape(-1, shape[-1])[:, 0] = False
    return m


def float_mask(shape, seed):
    m = tensor(shape, seed, 0.8)
    hide = bool_mask(shape, seed + 7, 0.25)
    return m.masked_fill(hide, float("-inf"))


def mask_record(m):
    if m.dtype == torch.bool:
        return {"kind": "bool", "shape": list(m.shape), "data": [int(v) for v in m.reshape(-1).tolist()]}
    return {"kind": "float", "shape": list(m.shape), "data": [None if v == float("-inf") else short(v) for v in m.reshape(-1).tolist()]}


def weighted_loss(outputs, seed):
    """sum of each output times fixed weights; returns the loss and the weights used."""
    total, ws = 0, []
    for k, o in enumerate(outputs):
        w = tensor(list(o.shape), seed + 13 * k, 1.0)
        total = total + (o * w).sum()
        ws.append(flat(w))
    return total, ws


def grads(m, inputs):
    g = {name: flat(t.grad) for name, t in inputs.items() if t.requires_grad}
    for n, p in m.named_parameters():
        g[n] = flat(p.grad if p.grad is not None else torch.zeros_like(p))
    return g


def leaf(shape, seed):
    return tensor(shape, seed).requires_grad_(True)


# ---- MultiheadAttention ----

def mha_case(name, E, H, *, L, S, B=3, batch_first=True, bias=True, same="none", kpm=None, attn=None, need_weights=True,
             average=True, unbatched=False, causal=False, seed=0):
    torch.manual_seed(100 + seed)
    m = nn.MultiheadAttention(E, H, bias=bias, batch_first=batch_first)
    perturb(m, 200 + seed)
    m.train()

    def shape(n):
        if unbatched:
            return [n, E]
        return [B, n, E] if batch_first else [n, B, E]

    q = leaf(shape(L), 300 + seed)
    inputs = {"query": q}
    if same == "self":
        k = v = q
    elif same == "kv":
        k = v = leaf(shape(S), 310 + seed)
        inputs["key"] = k
    else:
        k, v = leaf(shape(S), 310 + seed), leaf(shape(S), 320 + seed)
        inputs["key"], inputs["value"] = k, v
    out, weights = m(q, k, v, key_padding_mask=kpm, need_weights=need_weights, attn_mask=attn, average_attn_weights=average)
    outputs = [out] + ([weights] if weights is not None else [])
    loss, ws = weighted_loss(outputs, 400 + seed)
    loss.backward()
    return {
        "name": name, "E": E, "H": H, "options": {"batchFirst": batch_first, "bias": bias}, "same": same,
        "state": state(m), "inputs": {k2: record(t) for k2, t in inputs.items()},
        "keyPaddingMask": mask_record(kpm) if kpm is not None else None, "attnMask": mask_record(attn) if attn is not None else None,
        "needWeights": need_weights, "averageAttnWeights": average, "causal": causal,
        "output": record(out), "weights": record(weights) if weights is not None else None,
        "lossWeights": ws, "loss": short(loss.item()), "grads": grads(m, inputs),
    }


def mha_cases():
    B, L, S = 3, 4, 6
    sub = nn.Transformer.generate_square_subsequent_mask
    return [
        mha_case("self-attention, batch first, weights averaged", 15, 3, L=5, S=5, same="self", seed=1),
        mha_case("cross-attention L != S, key padding hides keys, weights per head", 15, 5, L=L, S=S, same="kv",
                 kpm=bool_mask([B, S], 2), average=False, seed=2),
        mha_case("cross-attention, sequence first, float attnMask [L, S] and bool key padding", 12, 4, L=L, S=S,
                 batch_first=False, same="kv", kpm=bool_mask([B, S], 3), attn=float_mask([L, S], 3), seed=3),
        mha_case("separate query, key and value, bool attnMask [B*H, L, S]", 10, 2, L=L, S=S, same="none",
                 attn=bool_mask([B * 2, L, S], 4), seed=4),
        mha_case("self-attention, float key padding mask", 9, 3, L=5, S=5, same="self", kpm=float_mask([B, 5], 5), seed=5),
        mha_case("no bias, bool attnMask [L, S] and key padding", 8, 2, L=L, S=S, bias=False, same="kv",
                 kpm=bool_mask([B, S], 6), attn=bool_mask([L, S], 16), seed=6),
        mha_case("unbatched query, key padding [S]", 6, 3, L=L, S=S, same="kv", kpm=bool_mask([S], 7), unbatched=True, seed=7),
        mha_case("unbatched, attnMask per head [H, L, S], weights per head", 6, 2, L=L, S=S, same="none",
                 attn=float_mask([2, L, S], 8), unbatched=True, average=False, seed=8),
        mha_case("self-attention without weights (the fused path)", 12, 3, L=7, S=7, same="self", need_weights=False, seed=9),
        mha_case("self-attention without weights, sequence first (the fused path)", 10, 5, L=5, S=5, batch_first=False,
                 same="self", need_weights=False, seed=10),
        mha_case("causal self-attention (the square subsequent mask)", 12, 4, L=6, S=6, same="self", attn=sub(6),
                 causal=True, seed=11),
        mha_case("causal self-attention without weights", 12, 4, L=6, S=6, same="self", attn=sub(6), need_weights=False,
                 causal=True, seed=12),
    ]


# ---- transformer layers and stacks ----

LAYER_KW = ("dim_feedforward", "activation", "layer_norm_eps", "batch_first", "norm_first")


def options_of(kw):
    names = {"dim_feedforward": "dimFeedforward", "activation": "activation", "layer_norm_eps": "layerNormEps",
             "batch_first": "batchFirst", "norm_first": "normFirst"}
    return {names[k]: v for k, v in kw.items() if k in LAYER_KW}


def seq(shape_bf, batch_first, seed):
    B, n, E = shape_bf
    return leaf([B, n, E] if batch_first else [n, B, E], seed)


def layer_case(name, kind, d, h, *, B=3, S=5, T=4, num_layers=2, masks=None, seed=0, **kw):
    torch.manual_seed(500 + seed)
    masks = masks or {}
    bf = kw.get("batch_first", False)
    if kind == "encoderLayer":
        m = nn.TransformerEncoderLayer(d, h, dropout=0.0, **kw)
    elif kind == "decoderLayer":
        m = nn.TransformerDecoderLayer(d, h, dropout=0.0, **kw)
    elif kind == "encoder":
        m = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, dropout=0.0, **kw), num_layers, norm=nn.LayerNorm(d))
    elif kind == "decoder":
        m = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, h, dropout=0.0, **kw), num_layers, norm=nn.LayerNorm(d))
    else:
        m = nn.Transformer(d, h, num_layers, num_layers, dropout=0.0, **kw)
    perturb(m, 600 + seed)
    m.train()
    src = seq([B, S, d], bf, 700 + seed)
    tgt = seq([B, T, d], bf, 710 + seed)
    if kind == "encoderLayer":
        inputs = {"src": src}
        out = m(src, src_mask=masks.get("srcMask"), src_key_padding_mask=masks.get("srcKeyPaddingMask"))
    elif kind == "encoder":
        inputs = {"src": src}
        out = m(src, mask=masks.get("mask"), src_key_padding_mask=masks.get("srcKeyPaddingMask"))
    elif kind in ("decoderLayer", "decoder"):
        inputs = {"tgt": tgt, "memory": src}
        out = m(tgt, src, tgt_mask=masks.get("tgtMask"), memory_mask=masks.get("memoryMask"),
                tgt_key_padding_mask=masks.get("tgtKeyPaddingMask"), memory_key_padding_mask=masks.get("memoryKeyPaddingMask"))
    else:
        inputs = {"src": src, "tgt": tgt}
        out = m(src, tgt, src_mask=masks.get("srcMask"), tgt_mask=masks.get("tgtMask"), memory_mask=masks.get("memoryMask"),
                src_key_padding_mask=masks.get("srcKeyPaddingMask"), tgt_key_padding_mask=masks.get("tgtKeyPaddingMask"),
                memory_key_padding_mask=masks.get("memoryKeyPaddingMask"))
    loss, ws = weighted_loss([out], 800 + seed)
    loss.backward()
    return {
        "name": name, "kind": kind, "dModel": d, "nhead": h, "numLayers": num_layers, "options": options_of(kw),
        "state": state(m), "inputs": {k: record(t) for k, t in inputs.items()},
        "masks": {k: mask_record(v) for k, v in masks.items()},
        "output": record(out), "lossWeights": ws, "loss": short(loss.item()), "grads": grads(m, inputs),
    }


def layer_cases():
    B, S, T = 3, 5, 4
    sub = nn.Transformer.generate_square_subsequent_mask
    return [
        layer_case("encoder layer, post-norm, relu, sequence first, float srcMask and key padding", "encoderLayer", 10, 2,
                   dim_feedforward=17, masks={"srcMask": float_mask([S, S], 20), "srcKeyPaddingMask": bool_mask([B, S], 21)}, seed=1),
        layer_case("encoder layer, pre-norm, gelu, batch first, key padding", "encoderLayer", 12, 3, dim_feedforward=16,
                   activation="gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-6,
                   masks={"srcKeyPaddingMask": bool_mask([B, S], 22)}, seed=2),
        layer_case("decoder layer, post-norm, relu, sequence first, causal tgtMask and both key paddings", "decoderLayer", 10, 5,
                   dim_feedforward=13, masks={"tgtMask": sub(T), "tgtKeyPaddingMask": bool_mask([B, T], 23),
                                              "memoryKeyPaddingMask": bool_mask([B, S], 24)}, seed=3),
        layer_case("decoder layer, pre-norm, gelu, batch first, bool memoryMask", "decoderLayer", 12, 4, dim_feedforward=20,
                   activation="gelu", batch_first=True, norm_first=True, masks={"memoryMask": bool_mask([T, S], 25)}, seed=4),
        layer_case("encoder of 2 layers with a final norm, sequence first, mask and key padding", "encoder", 8, 2,
                   dim_feedforward=12, masks={"mask": float_mask([S, S], 26), "srcKeyPaddingMask": bool_mask([B, S], 27)}, seed=5),
        layer_case("decoder of 2 layers with a final norm, batch first, pre-norm", "decoder", 8, 4, dim_feedforward=12,
                   batch_first=True, norm_first=True, masks={"tgtMask": sub(T), "memoryKeyPaddingMask": bool_mask([B, S], 28)}, seed=6),
        layer_case("Transformer, 2 + 2 layers, batch first, every mask", "transformer", 8, 2, dim_feedforward=16, batch_first=True,
                   masks={"srcMask": bool_mask([S, S], 29), "tgtMask": sub(T), "memoryMask": float_mask([T, S], 30),
                          "srcKeyPaddingMask": bool_mask([B, S], 31), "tgtKeyPaddingMask": bool_mask([B, T], 32),
                          "memoryKeyPaddingMask": bool_mask([B, S], 33)}, seed=7),
        layer_case("Transformer, sequence first, pre-norm, gelu", "transformer", 6, 3, dim_feedforward=10, activation="gelu",
                   norm_first=True, masks={"tgtMask": sub(T)}, seed=8),
    ]


def key_cases():
    torch.manual_seed(0)
    return {
        "MultiheadAttention(8, 2)": keys(nn.MultiheadAttention(8, 2, batch_first=True)),
        "MultiheadAttention(8, 2, bias false)": keys(nn.MultiheadAttention(8, 2, bias=False, batch_first=True)),
        "TransformerEncoderLayer(8, 2, dimFeedforward 16)": keys(nn.TransformerEncoderLayer(8, 2, 16)),
        "TransformerDecoderLayer(8, 2, dimFeedforward 16)": keys(nn.TransformerDecoderLayer(8, 2, 16)),
        "TransformerEncoder(layer, 2, norm)": keys(nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8))),
        "TransformerDecoder(layer, 3)": keys(nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 3)),
        "Transformer(dModel 8, nhead 2, 2 + 1 layers, dimFeedforward 16)": keys(nn.Transformer(8, 2, 2, 1, 16)),
    }


def training():
    """A small encoder-decoder trained 20 steps with Adam: MSE of its output against a target, causal tgtMask and a
    key padding mask on the source; data of each step from `values`."""
    torch.manual_seed(42)
    d, B, S, T = 8, 3, 5, 4
    m = nn.Transformer(d, 2, 1, 1, 16, dropout=0.0, batch_first=True)
    perturb(m, 900)
    m.train()
    initial = state(m)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(T)
    kpm = bool_mask([B, S], 40)
    losses = []
    for s in range(20):
        opt.zero_grad()
        out = m(tensor([B, S, d], 1000 + s), tensor([B, T, d], 1100 + s), tgt_mask=tgt_mask, src_key_padding_mask=kpm)
        loss = ((out - tensor([B, T, d], 1200 + s, 1.0)) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(short(loss.item()))
    return {"dModel": d, "nhead": 2, "dimFeedforward": 16, "B": B, "S": S, "T": T, "lr": 1e-2, "keyPaddingMask": mask_record(kpm),
            "initial": initial, "losses": losses, "final": state(m)}


def main():
    result = {
        "torch": torch.__version__,
        "mha": mha_cases(),
        "layers": layer_cases(),
        "keys": key_cases(),
        "training": training(),
    }
    with open(OUT, "w") as f:
        json.dump(result, f, allow_nan=False)
    print(f"wrote {OUT}: {len(result['mha'])} attention cases, {len(result['layers'])} layer cases, 20 training steps")


if __name__ == "__main__":
    main()
