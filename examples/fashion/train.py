#!/usr/bin/python3
"""A CryptoNets-shaped network on Fashion-MNIST (Debian's dataset-fashion-mnist), trained with PyTorch
(Debian's python3-torch) and exported as ONNX:

    28x28 image -> Conv 5x5, stride 2, 5 channels -> square -> dense 720 -> 100 -> square -> dense 100 -> 10

Veil evaluates it as three affine layers (the convolution is one of them) and two encrypted squares.

usage: train.py OUTDIR [TEST_ROWS]   writes model.onnx, test.csv (pixels in [0, 1], the first TEST_ROWS test
                                     images, default all 10,000) and labels.csv, and calib.csv and
                                     calib_labels.csv (the first 2,000 training images, for examples/quantize.py)
"""
import gzip
import os
import sys

import numpy as np
import torch

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    magic = int.from_bytes(raw[2:4], "big")
    dims = magic & 0xff
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def main(out, test_rows):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    x_train = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    y_train = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    x_test = idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y_test = idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 5, kernel_size=5, stride=2), Square(), torch.nn.Flatten(),
        torch.nn.Linear(5 * 12 * 12, 100), Square(), torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(4):
        perm = torch.randperm(len(x_train))
        for i in range(0, len(perm), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x_train[b]), y_train[b])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_test).unsqueeze(1)).argmax(1).numpy()
    print(f"train.py: plaintext accuracy on {len(y_test)} test images: {(pred == y_test).mean():.4f}")
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), os.path.join(out, "model.onnx"), input_names=["image"],
                      output_names=["scores"], dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=13)
    n = min(test_rows, len(y_test))
    np.savetxt(os.path.join(out, "test.csv"), x_test[:n].reshape(n, -1), delimiter=",", fmt="%.6g")
    np.savetxt(os.path.join(out, "labels.csv"), y_test[:n], fmt="%d")
    calib = x_train[:2000].numpy().reshape(2000, -1)
    np.savetxt(os.path.join(out, "calib.csv"), calib, delimiter=",", fmt="%.6g")
    np.savetxt(os.path.join(out, "calib_labels.csv"), y_train[:2000].numpy(), fmt="%d")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 10000)
