#!/usr/bin/python3
"""Safetensors interop with PyTorch, both ways (run by `npm run golden`; Debian's python3-torch and numpy).

1. Writes torch-mlp.safetensors with numpy alone (the format by hand: 8-byte little-endian header length,
   JSON header, raw little-endian data) from a PyTorch model's state_dict, and torch-mlp.json with inputs and
   PyTorch's outputs; test/io-interop.test.ts loads the file into the equivalent retrograd model.
2. Reads retrograd-mlp.safetensors (written by rg.save, see write_fixture.mjs) with numpy alone, loads it into
   the equivalent PyTorch model and checks that PyTorch's outputs equal retrograd's (retrograd-mlp.json).
Files are read and written in test/golden/, or in the folder given as the first argument (test/io-interop.test.ts
runs both steps in a temporary folder against what retrograd writes at that moment).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + arr.nbytes]}
        blobs.append(arr.tobytes())
        offset += arr.nbytes
    text = json.dumps(header).encode()
    text += b" " * ((8 - (len(text) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", e
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + en], dtype="<f4").reshape(e["shape"])
    return out, meta


def torch_to_retrograd():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(7, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4), torch.nn.GELU(), torch.nn.Linear(4, 2))
    write_safetensors(os.path.join(HERE, "torch-mlp.safetensors"), {k: v.detach().numpy() for k, v in model.state_dict().items()})
    x = torch.tensor([[math.sin(0.3 * i + j) for j in range(7)] for i in range(5)])
    with torch.no_grad():
        y = model(x)
    json.dump({"x": x.flatten().tolist(), "y": y.flatten().tolist(), "keys": list(model.state_dict().keys())},
              open(os.path.join(HERE, "torch-mlp.json"), "w"))
    print("wrote torch-mlp.safetensors")


def retrograd_to_torch():
    path = os.path.join(HERE, "retrograd-mlp.safetensors")
    if not os.path.exists(path):
        print("no retrograd-mlp.safetensors: run node test/golden/write_fixture.mjs first")
        return
    tensors, meta = read_safetensors(path)
    arch = json.loads(meta["architecture"])
    assert [l["type"] for l in arch["layers"]] == ["Linear", "Tanh", "Linear"], arch
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    ref = json.load(open(os.path.join(HERE, "retrograd-mlp.json")))
    with torch.no_grad():
        y = model(torch.tensor(ref["x"]).view(4, 6)).flatten()
    err = (y - torch.tensor(ref["y"])).abs().max().item()
    assert err < 1e-5, err
    print(f"retrograd-mlp.safetensors loads into PyTorch: outputs agree to {err:.1e}")


if __name__ == "__main__":
    torch_to_retrograd()
    retrograd_to_torch()
