#!/usr/bin/python3
"""A deep MLP on scikit-learn's 8x8 digits (1797 images, 10 classes) for bootstrapping: 64 -> W -> ... -> W -> 10
with L hidden layers and the Tanh activation (which Veil approximates by Chebyshev polynomials, its outputs
within [-1, 1]: the bootstrap's range), trained with PyTorch and exported with torch.onnx.export. Deep enough
(L = 8 layers of width 8 by default, 8 levels per layer with the degree-31 approximation: 65) that no leveled parameter set holds it: `veil plan` inserts bootstraps.

usage: train.py OUTDIR [LAYERS [WIDTH [ACTIVATION]]]   writes model.onnx, train.csv (calibration rows), test.csv
    (pixels in [0, 1]), labels.csv and plain.csv (the plaintext model's scores); ACTIVATION tanh (default) or
    square (x * x: one level, for the CLI tests on the small insecure test set)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "digits"))
from digits_data import Square, digits_split  # noqa: E402


def main(out, layers, width, activation):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    x_train, x_test, y_train, y_test = digits_split()
    act = torch.nn.Tanh if activation == "tanh" else Square
    mods = [torch.nn.Linear(64, width), act()]
    for _ in range(layers - 1):
        mods += [torch.nn.Linear(width, width), act()]
    mods.append(torch.nn.Linear(width, 10))
    model = torch.nn.Sequential(*mods)
    # weight decay keeps the pre-activations' worst case (over the inputs' range) narrow, where the degree-31
    # approximation of tanh holds
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for epoch in range(1500):
        opt.zero_grad()
        # and an L1 penalty on the first layer, whose inputs' range (the pixels widened by half their span) is
        # the widest: its worst case is the sum of |w| over a row
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + 2e-3 * mods[0].weight.abs().sum()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(x_test)).numpy()
    acc = (scores.argmax(1) == y_test).mean()
    print(f"train.py: {layers} hidden layers of {width}, plaintext accuracy on {len(y_test)} test digits: {acc:.4f}")
    torch.onnx.export(model, torch.zeros(1, 64), os.path.join(out, "model.onnx"), input_names=["pixels"],
                      output_names=["scores"], dynamic_axes={"pixels": {0: "batch"}, "scores": {0: "batch"}},
                      opset_version=13)
    np.savetxt(os.path.join(out, "train.csv"), x_train, delimiter=",", fmt="%.9g")
    np.savetxt(os.path.join(out, "test.csv"), x_test, delimiter=",", fmt="%.9g")
    np.savetxt(os.path.join(out, "labels.csv"), y_test, fmt="%d")
    np.savetxt(os.path.join(out, "plain.csv"), scores, delimiter=",", fmt="%.9g")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3, 4, 5) or (len(sys.argv) == 5 and sys.argv[4] not in ("tanh", "square")):
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8, int(sys.argv[3]) if len(sys.argv) > 3 else 8,
         sys.argv[4] if len(sys.argv) > 4 else "tanh")
