"""The benchmark workloads' PyTorch models, shared by the CPU and GPU peers (bench/workloads.mjs has the
same definitions for retrograd)."""


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


def build(torch, w):
    """The model of workload w: the CNN when it has "cnn", else the MLP of its "sizes"."""
    return cnn(torch, w["cnn"]) if "cnn" in w else mlp(torch, w["sizes"])
