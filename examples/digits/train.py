#!/usr/bin/python3
"""A CryptoNets-style network on scikit-learn's 8x8 digits (1797 images, 10 classes): 64 -> 32 -> 10 with
the square activation, trained with PyTorch and exported with torch.onnx.export. Veil evaluates it with
two affine layers and one encrypted square; the class is the argmax of the decrypted scores.

usage: train.py OUTDIR   writes model.onnx, test.csv (pixels scaled to [0, 1]) and labels.csv
"""
import os
import sys

import numpy as np
import torch

from digits_data import Square, digits_split


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    x_train, x_test, y_train, y_test = digits_split()
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), Square(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for epoch in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    print(f"train.py: plaintext accuracy on {len(y_test)} test digits: {acc:.4f}")
    torch.onnx.export(model, torch.zeros(1, 64), os.path.join(out, "model.onnx"), input_names=["pixels"],
                      output_names=["scores"], dynamic_axes={"pixels": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=13)
    np.savetxt(os.path.join(out, "test.csv"), x_test, delimiter=",", fmt="%.9g")
    np.savetxt(os.path.join(out, "labels.csv"), y_test, fmt="%d")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
