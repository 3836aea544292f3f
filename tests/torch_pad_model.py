#!/usr/bin/python3
"""A small PyTorch CNN whose zero padding is a ZeroPad2d module, exported at opset 13:

    6x6 image -> ZeroPad2d(1) -> Conv 3x3, 2 channels -> square -> Flatten -> Linear 72 -> 3

torch computes the Pad node's pads through a constant subgraph (Constant, ConstantOfShape, Concat, Reshape,
Slice, Transpose, Cast), which Veil folds at import. Checks that the export still has that shape.

usage: torch_pad_model.py OUTDIR   writes model.onnx, x.csv (5 images in [0, 1]) and torch.csv (torch's outputs
                                   on them, computed in float64 from the same float32 weights)
"""
import os
import sys
import warnings

import numpy as np
import onnx
import torch


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.ZeroPad2d(1), torch.nn.Conv2d(1, 2, kernel_size=3), Square(),
                                torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 3))
    model.eval()
    path = os.path.join(out, "model.onnx")
    warnings.filterwarnings("ignore", message="Constant folding")  # torch's notes on the Slice it leaves to us
    torch.onnx.export(model, torch.zeros(1, 1, 6, 6), path, input_names=["image"], output_names=["scores"],
                      dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}}, opset_version=13)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    wanted = {"ConstantOfShape", "Slice", "Transpose", "Cast", "Pad"}
    if not wanted <= ops:
        sys.exit(f"torch_pad_model.py: the export lacks {sorted(wanted - ops)}: the test no longer covers them")
    rng = np.random.default_rng(7)
    np.savetxt(os.path.join(out, "x.csv"), rng.uniform(0, 1, (5, 36)), delimiter=",", fmt="%.9g")
    x = np.loadtxt(os.path.join(out, "x.csv"), delimiter=",")  # the values Veil reads
    with torch.no_grad():
        y = model.double()(torch.from_numpy(x).reshape(-1, 1, 6, 6)).numpy()
    np.savetxt(os.path.join(out, "torch.csv"), y, delimiter=",", fmt="%.17g")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
