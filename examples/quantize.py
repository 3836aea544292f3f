#!/usr/bin/python3
"""Quantizes a CryptoNets-shaped network for exact inference in BGV (`veil keygen --scheme bgv`).

The network (as the examples' train scripts export it with torch.onnx.export):

    image [1, H, W] -> Conv (C channels, K x K, stride S, zero padding P) -> square -> Flatten -> Gemm
                    -> square -> Gemm

The padding may be the Conv's own (`pads`, the same on every side) or a constant-zero Pad node before it
(what torch exports for some layers); both are written as the Conv's `pads`.

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


def symmetric(pads, what):
    """The one padding of every spatial side, or exit."""
    if len(set(pads)) > 1:
        sys.exit(f"quantize.py: {what} pads {pads}: expected the same zero padding on every side")
    return int(pads[0]) if pads else 0


def fold_constants(nodes, init):
    """The values of the nodes that depend on no graph input (torch computes a Pad's pads so: Constant,
    ConstantOfShape, Concat, Reshape, Slice, Transpose, Cast), by name."""
    vals = dict(init)
    attr = lambda n, name, d=None: next((helper.get_attribute_value(a) for a in n.attribute if a.name == name), d)
    for n in nodes:
        if any(i and i not in vals for i in n.input) or n.op_type == "Constant" and not n.attribute:
            continue
        x = [vals[i] for i in n.input if i]
        op = n.op_type
        if op == "Constant":
            y = numpy_helper.to_array(attr(n, "value"))
        elif op == "ConstantOfShape":
            t = attr(n, "value")
            y = np.full(x[0].astype(np.int64), numpy_helper.to_array(t).ravel()[0] if t is not None else 0.0)
        elif op == "Concat":
            y = np.concatenate(x, axis=attr(n, "axis", 0))
        elif op == "Reshape":
            y = x[0].reshape(x[1].astype(np.int64))
        elif op == "Transpose":
            y = np.transpose(x[0], attr(n, "perm"))
        elif op == "Cast":
            y = x[0].astype(np.float64)
        elif op == "Slice":
            starts, ends = x[1].astype(np.int64), x[2].astype(np.int64)
            axes = x[3].astype(np.int64) if len(x) > 3 else range(len(starts))
            steps = x[4].astype(np.int64) if len(x) > 4 else [1] * len(starts)
            sl = [slice(None)] * x[0].ndim
            for a, b, e, st in zip(axes, starts, ends, steps):
                sl[a] = slice(int(b), None if e <= -2 ** 62 else int(max(e, -2 ** 62)), int(st))
            y = x[0][tuple(sl)]
        else:
            continue
        vals[n.output[0]] = np.asarray(y, dtype=np.float64)
    return vals


def pad_node_padding(node, init, consts):
    """A constant-zero Pad before the Conv: its spatial padding (NCHW pads: 0, 0, top, left, 0, 0, bottom, right)."""
    mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
    pads = next((list(a.ints) for a in node.attribute if a.name == "pads"), None)
    if pads is None and len(node.input) > 1:
        pads = list((init.get(node.input[1], consts.get(node.input[1]))).astype(np.int64))
    value = 0.0
    if len(node.input) > 2 and node.input[2]:
        value = float(np.asarray(init.get(node.input[2], consts.get(node.input[2]))).ravel()[0])
    if mode != "constant" or value != 0 or pads is None or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        sys.exit("quantize.py: a Pad before the Conv must be constant zero padding of the image's height and width")
    return symmetric([pads[2], pads[3], pads[6], pads[7]], "Pad")


def network(path):
    """The float network: its weights, and the convolution's geometry and input shape."""
    model = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    nodes = model.graph.node
    consts = fold_constants(nodes, init)
    conv = next(n for n in nodes if n.op_type == "Conv")
    gemms = [n for n in nodes if n.op_type == "Gemm"]
    attrs = {a.name: list(a.ints) for a in conv.attribute if a.ints}
    if len(gemms) != 2 or attrs.get("dilations", [1]) != [1] * len(attrs.get("dilations", [1])):
        sys.exit("quantize.py: expected Conv -> square -> Gemm -> square -> Gemm")
    pad = symmetric(attrs.get("pads", []), "Conv")
    pad += sum(pad_node_padding(n, init, consts) for n in nodes if n.op_type == "Pad" and n.output[0] == conv.input[0])
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    net = dict(conv=init[conv.input[1]], conv_b=init[conv.input[2]], stride=attrs.get("strides", [1])[0],
               shape=tuple(dims[1:]), pad=pad)
    for key, g in zip(("fc1", "fc2"), gemms):
        trans_b = next((a.i for a in g.attribute if a.name == "transB"), 0)
        w = init[g.input[1]]
        net[key] = w if trans_b else w.T
        net[key + "_b"] = init[g.input[2]]
    return net


def windows(x, k, s, p=0):
    """x [n, H, W] -> [n, positions, k*k]: the k x k windows at stride s over x padded with p zeros on every
    side, row-major over the outputs."""
    x = np.pad(x, ((0, 0), (p, p), (p, p)))
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
    return dict(b=b, input_max=input_max, stride=net["stride"], shape=net["shape"], pad=net["pad"],
                conv=np.round(net["conv"] * s1), conv_b=np.round(net["conv_b"] * s1 * input_max),
                fc1=np.round(net["fc1"] * s2), fc1_b=np.round(net["fc1_b"] * s2 * h_scale),
                fc2=np.round(net["fc2"] * s3), fc2_b=np.round(net["fc2_b"] * s3 * o_scale),
                scale=1.0 / (s3 * o_scale))


def run_integer(qm, x):
    """The integer network on integer inputs [n, H*W] (int64: the bound keeps every value below 2^60)."""
    c, _, k, _ = qm["conv"].shape
    h, w = qm["shape"][1:]
    cols = windows(x.reshape(-1, h, w).astype(np.int64), k, qm["stride"], qm["pad"])
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
    p = qm["pad"]  # padding adds zeros, inside [0, input_max]: the intervals below hold for them too
    positions = ((h + 2 * p - k) // qm["stride"] + 1) * ((w + 2 * p - k) // qm["stride"] + 1)
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
                         strides=[qm["stride"]] * 2, pads=[qm["pad"]] * 4),
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
