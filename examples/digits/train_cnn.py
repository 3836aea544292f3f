#!/usr/bin/python3
"""A small CryptoNets-shaped CNN on scikit-learn's 8x8 digits, for exact (quantized, BGV) inference:

    8x8 image -> Conv 3x3, 4 channels -> square -> dense 144 -> 32 -> square -> dense 32 -> 10

trained with PyTorch and exported as ONNX; examples/quantize.py then makes its integer version. The digits'
pixels are integers 0..16, so the quantized inputs are the pixels themselves (INPUT_MAX 16).

usage: train_cnn.py OUTDIR   writes model_cnn.onnx, test.csv (pixels / 16) and labels.csv (the test split), and
                             calib.csv and calib_labels.csv (the training split, for examples/quantize.py)
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
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, kernel_size=3), Square(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 32), Square(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_train).reshape(-1, 1, 8, 8), torch.from_numpy(y_train).long()
    for epoch in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(x_test).reshape(-1, 1, 8, 8)).argmax(1).numpy() == y_test).mean()
    print(f"train_cnn.py: plaintext accuracy on {len(y_test)} test digits: {acc:.4f}")
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), os.path.join(out, "model_cnn.onnx"), input_names=["image"],
                      output_names=["scores"], dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=13)
    np.savetxt(os.path.join(out, "test.csv"), x_test, delimiter=",", fmt="%.9g")
    np.savetxt(os.path.join(out, "labels.csv"), y_test, fmt="%d")
    np.savetxt(os.path.join(out, "calib.csv"), x_train, delimiter=",", fmt="%.9g")
    np.savetxt(os.path.join(out, "calib_labels.csv"), y_train, fmt="%d")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
