#!/usr/bin/python3
"""Quantizes the CryptoNets-shaped network of train.py for exact inference in BGV (`veil keygen --scheme bgv`).

    pixels   x in [0, 1]  ->  integers round(x (2^a - 1)) in [0, 2^a - 1]
    Conv     integer weights round(w s1), s1 = (2^b - 1) / max|w|; bias at the scale of its output, s1 sx
    square   the scale squares
    Gemm     integer weights round(w s2), s2 = (2^b - 1) / max|w|; bias at s2 (s1 sx)^2; and so on
    output   a final Mul by 1 / (the output's scale): the data owner applies it after decryption

The ONNX file it writes is that integer network (float tensors holding integers, which is what ONNX's Conv and
Gemm take), so `veil plain` runs it too. The input bits a and weight bits b are chosen among a few widths: the
pair with the best accuracy on the first 2,000 training images whose worst-case output bound, propagated by
interval arithmetic from the input range as Veil's plan does, stays below 2^60.

usage: quantize.py DIR      reads DIR/model.onnx and DIR/test.csv (train.py's), writes DIR/model_q.onnx,
                            DIR/test_q.csv (integer pixels) and prints the chosen widths, the bound and the
                            accuracy of the quantized network beside the float one on the test images
"""
import gzip
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

DATA = "/usr/share/datasets/fashion-mnist"
LIMIT_BITS = 60


def idx(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def weights(path):
    model = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    by_shape = {v.shape: v for v in init.values()}
    conv = next(v for v in init.values() if v.ndim == 4)
    conv_b = next(v for k, v in init.items() if v.ndim == 1 and v.shape[0] == conv.shape[0] and "0." in k)
    fc1 = next(v for v in init.values() if v.ndim == 2 and v.shape[1] == 720)
    fc2 = next(v for v in init.values() if v.ndim == 2 and v.shape[0] == 10)
    fc1_b = next(v for k, v in init.items() if v.ndim == 1 and v.shape[0] == fc1.shape[0] and k.startswith("3."))
    fc2_b = next(v for k, v in init.items() if v.ndim == 1 and v.shape[0] == 10 and k.startswith("5."))
    del by_shape
    return conv, conv_b, fc1, fc1_b, fc2, fc2_b


def conv_windows(x):
    """x [n, 28, 28] -> [n, 144, 25]: the 5x5 windows at stride 2, row-major over the 12x12 outputs."""
    n = x.shape[0]
    cols = np.empty((n, 144, 25), dtype=x.dtype)
    for i in range(12):
        for j in range(12):
            cols[:, i * 12 + j, :] = x[:, 2 * i:2 * i + 5, 2 * j:2 * j + 5].reshape(n, 25)
    return cols


def quantize(params, a, b):
    conv, conv_b, fc1, fc1_b, fc2, fc2_b = params
    sx = 2 ** a - 1
    q = lambda w: (2 ** (b - 1) - 1) / np.abs(w).max()
    s1, s2, s3 = q(conv), q(fc1), q(fc2)
    c = np.round(conv * s1)
    cb = np.round(conv_b * s1 * sx)
    h_scale = (s1 * sx) ** 2
    w1 = np.round(fc1 * s2)
    b1 = np.round(fc1_b * s2 * h_scale)
    o_scale = (s2 * h_scale) ** 2
    w2 = np.round(fc2 * s3)
    b2 = np.round(fc2_b * s3 * o_scale)
    return dict(a=a, b=b, sx=sx, conv=c, conv_b=cb, fc1=w1, fc1_b=b1, fc2=w2, fc2_b=b2, scale=1.0 / (s3 * o_scale))


def run_integer(qm, x):
    """The integer network on integer pixels [n, 28, 28] (int64; the bound keeps it below 2^60)."""
    cols = conv_windows(x.astype(np.int64))
    k = qm["conv"].reshape(qm["conv"].shape[0], 25).astype(np.int64)
    h = np.einsum("npk,ck->ncp", cols, k) + qm["conv_b"].astype(np.int64)[None, :, None]
    h = (h * h).reshape(x.shape[0], -1)
    g = h @ qm["fc1"].T.astype(np.int64) + qm["fc1_b"].astype(np.int64)
    g = g * g
    return g @ qm["fc2"].T.astype(np.int64) + qm["fc2_b"].astype(np.int64)


def bound_bits(qm):
    """The worst case of every value over pixels in [0, 2^a - 1], by interval arithmetic."""
    hi_x = float(qm["sx"])
    k = qm["conv"].reshape(qm["conv"].shape[0], 25)
    lo = qm["conv_b"] + np.minimum(k, 0).sum(1) * hi_x
    hi = qm["conv_b"] + np.maximum(k, 0).sum(1) * hi_x
    worst = max(np.abs(lo).max(), np.abs(hi).max())
    sq_hi = np.maximum(lo ** 2, hi ** 2)
    sq_lo = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(lo ** 2, hi ** 2))
    lo1, hi1 = np.repeat(sq_lo, 144), np.repeat(sq_hi, 144)
    w = qm["fc1"]
    lo2 = qm["fc1_b"] + np.where(w > 0, w * lo1, w * hi1).sum(1)
    hi2 = qm["fc1_b"] + np.where(w > 0, w * hi1, w * lo1).sum(1)
    worst = max(worst, np.abs(lo2).max(), np.abs(hi2).max())
    sq_hi = np.maximum(lo2 ** 2, hi2 ** 2)
    sq_lo = np.where((lo2 <= 0) & (hi2 >= 0), 0.0, np.minimum(lo2 ** 2, hi2 ** 2))
    w = qm["fc2"]
    lo3 = qm["fc2_b"] + np.where(w > 0, w * sq_lo, w * sq_hi).sum(1)
    hi3 = qm["fc2_b"] + np.where(w > 0, w * sq_hi, w * sq_lo).sum(1)
    worst = max(worst, sq_hi.max(), np.abs(lo3).max(), np.abs(hi3).max())
    return float(np.log2(worst))


def pixels(x01, a):
    return np.round(x01 * (2 ** a - 1))


def write_onnx(qm, path):
    t = lambda name, v: numpy_helper.from_array(v.astype(np.float32), name)
    inits = [t("conv_w", qm["conv"]), t("conv_b", qm["conv_b"]), t("fc1_w", qm["fc1"]), t("fc1_b", qm["fc1_b"]),
             t("fc2_w", qm["fc2"]), t("fc2_b", qm["fc2_b"]), t("scale", np.array(qm["scale"]))]
    # float32 holds these integers exactly: weights below 2^8, biases checked below
    for name in ("conv_b", "fc1_b", "fc2_b"):
        if np.abs(qm[name]).max() >= 2 ** 24:
            inits = [numpy_helper.from_array(qm[name].astype(np.float64), name) if i.name == name else i for i in inits]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["c"], kernel_shape=[5, 5], strides=[2, 2]),
        helper.make_node("Mul", ["c", "c"], ["c2"]),
        helper.make_node("Flatten", ["c2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc1_w", "fc1_b"], ["h"], transB=1),
        helper.make_node("Mul", ["h", "h"], ["h2"]),
        helper.make_node("Gemm", ["h2", "fc2_w", "fc2_b"], ["y"], transB=1),
        helper.make_node("Mul", ["y", "scale"], ["scores"]),
    ]
    graph = helper.make_graph(nodes, "fashion_quantized",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main(d):
    params = weights(os.path.join(d, "model.onnx"))
    x_train = idx("train-images-idx3-ubyte.gz")[:2000].astype(np.float64) / 255.0
    y_train = idx("train-labels-idx1-ubyte.gz")[:2000]
    best = None
    for a in (2, 3, 4, 5, 6):
        for b in (3, 4, 5, 6, 7, 8):
            qm = quantize(params, a, b)
            bits = bound_bits(qm)
            if bits >= LIMIT_BITS:
                continue
            acc = (run_integer(qm, pixels(x_train, a)).argmax(1) == y_train).mean()
            if best is None or acc > best[0]:
                best = (acc, bits, qm)
    if best is None:
        sys.exit("quantize.py: no widths keep the bound below 2^%d" % LIMIT_BITS)
    acc, bits, qm = best
    x_test01 = np.loadtxt(os.path.join(d, "test.csv"), delimiter=",", ndmin=2)
    labels = np.loadtxt(os.path.join(d, "labels.csv"), dtype=np.int64, ndmin=1)
    xq = pixels(x_test01, qm["a"])
    np.savetxt(os.path.join(d, "test_q.csv"), xq, delimiter=",", fmt="%d")
    write_onnx(qm, os.path.join(d, "model_q.onnx"))
    q_pred = run_integer(qm, xq.reshape(-1, 28, 28)).argmax(1)
    print(f"quantize.py: {qm['a']}-bit pixels (0..{qm['sx']}), {qm['b']}-bit weights, worst-case bound 2^{bits:.1f}; "
          f"quantized accuracy on {len(labels)} test images {(q_pred == labels).mean():.4f} "
          f"(first 2,000 training images: {acc:.4f})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
