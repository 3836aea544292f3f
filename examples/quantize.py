#!/usr/bin/python3
"""Quantizes a CryptoNets-shaped network for exact inference in BGV (`veil keygen --scheme bgv`).

The network (as the examples' train scripts export it with torch.onnx.export):

    image [1, H, W] -> Conv (C channels, K x K, stride S) -> square -> Flatten -> Gemm -> square -> Gemm

Quantization, layer by layer (a and b bits for the inputs and the weights):

    inputs   x in [0, 1]  ->  integers round(x M), M = 2^a - 1 (or the given INPUT_MAX)
    Conv     integer weights round(w s1), s1 = (2^(b-1) - 1) / max|w|; the bias at its output's scale s1 M
    square   the scale squares
    Gemm     integer weights round(w s2); the bias at s2 (s1 M)^2; and so on
    output   a final Mul by 1 / (the output's scale), which the data owner applies after decryption

The ONNX file written is that integer network (float tensors holding integers, what ONNX's Conv and Gemm take),
so `veil plain` runs it as well. The widths are chosen among a few: the pair with the best accuracy on the
calibration rows whose worst-case bound, propagated by interval arithmetic from the input range as Veil's plan
does, stays below 2^60.

usage: quantize.py MODEL.onnx CALIB.csv CALIB_LABELS.csv OUT.onnx [INPUT_MAX]
           writes OUT.onnx and prints the input range for `veil keygen --input-range`
       quantize.py --inputs INPUT_MAX IN.csv OUT.csv
           the integer inputs: round(x INPUT_MAX) for x in [0, 1]
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

LIMIT_BITS = 60


def network(path):
    """The float network: its weights, and the convolution's geometry and input shape."""
    model = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    nodes = model.graph.node
    conv = next(n for n in nodes if n.op_type == "Conv")
    gemms = [n for n in nodes if n.op_type == "Gemm"]
    attrs = {a.name: list(a.ints) for a in conv.attribute if a.ints}
    if len(gemms) != 2 or any(attrs.get("pads", [0])) or attrs.get("dilations", [1]) != [1] * len(attrs.get("dilations", [1])):
        sys.exit("quantize.py: expected Conv (no padding) -> square -> Gemm -> square -> Gemm")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    net = dict(conv=init[conv.input[1]], conv_b=init[conv.input[2]], stride=attrs.get("strides", [1])[0],
               shape=tuple(dims[1:]))
    for key, g in zip(("fc1", "fc2"), gemms):
        trans_b = next((a.i for a in g.attribute if a.name == "transB"), 0)
        w = init[g.input[1]]
        net[key] = w if trans_b else w.T
        net[key + "_b"] = init[g.input[2]]
    return net


def windows(x, k, s):
    """x [n, H, W] -> [n, positions, k*k]: the k x k windows at stride s, row-major over the outputs."""
    n, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    cols = np.empty((n, oh * ow, k * k), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, i * ow + j, :] = x[:, s * i:s * i + k, s * j:s * j + k].reshape(n, k * k)
    return cols


def quantize(net, input_max, b):
    q = lambda w: (2 ** (b - 1) - 1) / np.abs(w).max()
    s1, s2, s3 = q(net["conv"]), q(net["fc1"]), q(net["fc2"])
    h_scale = (s1 * input_max) ** 2
    o_scale = (s2 * h_scale) ** 2
    return dict(b=b, input_max=input_max, stride=net["stride"], shape=net["shape"],
                conv=np.round(net["conv"] * s1), conv_b=np.round(net["conv_b"] * s1 * input_max),
                fc1=np.round(net["fc1"] * s2), fc1_b=np.round(net["fc1_b"] * s2 * h_scale),
                fc2=np.round(net["fc2"] * s3), fc2_b=np.round(net["fc2_b"] * s3 * o_scale),
                scale=1.0 / (s3 * o_scale))


def run_integer(qm, x):
    """The integer network on integer inputs [n, H*W] (int64: the bound keeps every value below 2^60)."""
    c, _, k, _ = qm["conv"].shape
    h, w = qm["shape"][1:]
    cols = windows(x.reshape(-1, h, w).astype(np.int64), k, qm["stride"])
    y = np.einsum("npk,ck->ncp", cols, qm["conv"].reshape(c, k * k).astype(np.int64))
    y = y + qm["conv_b"].astype(np.int64)[None, :, None]
    y = (y * y).reshape(x.shape[0], -1)
    g = y @ qm["fc1"].T.astype(np.int64) + qm["fc1_b"].astype(np.int64)
    g = g * g
    return g @ qm["fc2"].T.astype(np.int64) + qm["fc2_b"].astype(np.int64)


def square_interval(lo, hi):
    return np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(lo ** 2, hi ** 2)), np.maximum(lo ** 2, hi ** 2)


def affine_interval(w, b, lo, hi):
    return b + np.where(w > 0, w * lo, w * hi).sum(1), b + np.where(w > 0, w * hi, w * lo).sum(1)


def bound_bits(qm):
    """log2 of the largest |value| anywhere in the network over inputs in [0, input_max]."""
    c, _, k, _ = qm["conv"].shape
    h, w = qm["shape"][1:]
    positions = ((h - k) // qm["stride"] + 1) * ((w - k) // qm["stride"] + 1)
    kern = qm["conv"].reshape(c, k * k)
    lo, hi = affine_interval(kern, qm["conv_b"], np.zeros(k * k), np.full(k * k, float(qm["input_max"])))
    worst = np.abs(np.concatenate([lo, hi])).max()
    lo, hi = square_interval(np.repeat(lo, positions), np.repeat(hi, positions))
    worst = max(worst, hi.max())
    lo, hi = affine_interval(qm["fc1"], qm["fc1_b"], lo, hi)
    worst = max(worst, np.abs(np.concatenate([lo, hi])).max())
    lo, hi = square_interval(lo, hi)
    worst = max(worst, hi.max())
    lo, hi = affine_interval(qm["fc2"], qm["fc2_b"], lo, hi)
    return float(np.log2(max(worst, np.abs(np.concatenate([lo, hi])).max())))


def write_onnx(qm, path):
    c, _, k, _ = qm["conv"].shape
    # float32 holds integers below 2^24 exactly; larger biases are stored as float64
    t = lambda name, v: numpy_helper.from_array(v.astype(np.float32 if np.abs(v).max() < 2 ** 24 else np.float64), name)
    inits = [t("conv_w", qm["conv"]), t("conv_b", qm["conv_b"]), t("fc1_w", qm["fc1"]), t("fc1_b", qm["fc1_b"]),
             t("fc2_w", qm["fc2"]), t("fc2_b", qm["fc2_b"]), numpy_helper.from_array(np.array(qm["scale"], np.float32), "scale")]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], kernel_shape=[k, k],
                         strides=[qm["stride"]] * 2),
        helper.make_node("Mul", ["c", "c"], ["c2"]),
        helper.make_node("Flatten", ["c2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc1_w", "fc1_b"], ["h"], transB=1),
        helper.make_node("Mul", ["h", "h"], ["h2"]),
        helper.make_node("Gemm", ["h2", "fc2_w", "fc2_b"], ["y"], transB=1),
        helper.make_node("Mul", ["y", "scale"], ["scores"]),
    ]
    graph = helper.make_graph(nodes, "quantized",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", *qm["shape"]])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", qm["fc2"].shape[0]])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main(model, calib, calib_labels, out, input_max=None):
    net = network(model)
    x = np.loadtxt(calib, delimiter=",", ndmin=2)
    y = np.loadtxt(calib_labels, dtype=np.int64, ndmin=1)
    maxes = [input_max] if input_max else [2 ** a - 1 for a in (2, 3, 4, 5, 6)]
    best = None
    for m in maxes:
        for b in (3, 4, 5, 6, 7, 8):
            qm = quantize(net, m, b)
            bits = bound_bits(qm)
            if bits >= LIMIT_BITS:
                continue
            acc = (run_integer(qm, np.round(x * m)).argmax(1) == y).mean()
            if best is None or acc > best[0]:
                best = (acc, bits, qm)
    if best is None:
        sys.exit(f"quantize.py: no widths keep the worst-case bound below 2^{LIMIT_BITS}")
    acc, bits, qm = best
    write_onnx(qm, out)
    print(f"quantize.py: inputs 0..{qm['input_max']}, {qm['b']}-bit weights, worst-case bound 2^{bits:.1f}, "
          f"accuracy {acc:.4f} on the {len(y)} calibration rows; --input-range 0:{qm['input_max']}")


def quantize_inputs(input_max, src, dst):
    x = np.loadtxt(src, delimiter=",", ndmin=2)
    np.savetxt(dst, np.round(x * input_max), delimiter=",", fmt="%d")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--inputs":
        quantize_inputs(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) in (5, 6) and sys.argv[1] != "--inputs":
        main(*sys.argv[1:5], int(sys.argv[5]) if len(sys.argv) == 6 else None)
    else:
        sys.exit(__doc__)
