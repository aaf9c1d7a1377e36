#!/usr/bin/python3
"""PyTorch twin of examples/resnet.mjs: the same ResNet from the same initial weights, the same batches in the same
order, the same optimiser and schedule; prints the same lines.

  /usr/bin/python3 examples/twins/resnet.py [--epochs 4] [--quick] [--threads N]
"""
import time

import numpy as np
import torch

from common import digits, init_deterministic, permutation, twin_args
from models import ResNet
from steps import classifier_step


def main():
    a = twin_args(4)
    epochs = a.epochs
    batch, max_lr = 64, 0.1
    data = digits()
    n_train = 1024 if a.quick else len(data["yTrain"])
    model = init_deterministic(ResNet(width=16), 1)
    steps = n_train // batch
    opt = torch.optim.SGD(model.parameters(), lr=max_lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=epochs * steps)
    x_test = torch.from_numpy(data["xTest"]).reshape(-1, 1, 28, 28)
    y_test = torch.from_numpy(data["yTest"])

    def test_accuracy():
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x_test[i:i + 500]).argmax(1) == y_test[i:i + 500]).sum()) for i in range(0, len(y_test), 500))
        model.train()
        return correct / len(y_test)

    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; ResNet on {n_train} MNIST digits, {epochs} epochs")
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = np.array(permutation(n_train, 100 + epoch))
        total = 0.0
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            x = torch.from_numpy(data["xTrain"][idx]).reshape(batch, 1, 28, 28)
            y = torch.from_numpy(data["yTrain"][idx])
            loss = classifier_step(model, opt, x, y)
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: training loss {total / steps:.4f}, test accuracy {100 * test_accuracy():.2f}% ({time.perf_counter() - t0:.1f} s)")
    print(f"test accuracy: {100 * test_accuracy():.2f}% on {len(y_test)} digits after {epochs} epochs, {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
