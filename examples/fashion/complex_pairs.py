#!/usr/bin/python3
"""Not part of Veil yet (docs/performance.md, "Batches side by side"): checks, in floating point without
encryption, the complex packing of two images per slot on the CryptoNets-shaped Fashion-MNIST network:
Z = x_a + i x_b; affine layers with real weights and the bias times (1 + i); each square as
a^2 + i b^2 = ((Z + W)/2)^2 - i ((Z - W)/2)^2 with W = conj(Z) (W either the conjugate of Z taken by a key
switch, or, for the first square, the convolution of the client's conjugate input), against the network on
each image alone.

usage: complex_pairs.py DIR    (DIR written by train.py: model.onnx, test.csv)"""
import sys
import numpy as np
import onnx
from onnx import numpy_helper

if len(sys.argv) != 2:
    sys.exit(__doc__)
d = sys.argv[1]
m = onnx.load(d + "/model.onnx")
w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
x = np.loadtxt(d + "/test.csv", delimiter=",")
n = len(x) // 2 * 2
x = x[:n].reshape(n, 28, 28)

def conv(img, bias_factor):                 # img: (k, 28, 28), real or complex; 5x5 stride 2 -> (k, 5, 12, 12)
    k = img.shape[0]
    out = np.zeros((k, 5, 12, 12), dtype=img.dtype)
    for c in range(5):
        for i in range(5):
            for j in range(5):
                out[:, c] += w["0.weight"][c, 0, i, j] * img[:, i:i + 24:2, j:j + 24:2]
        out[:, c] += w["0.bias"][c] * bias_factor
    return out.reshape(k, 720)

def dense(v, name, bias_factor):
    return v @ w[name + ".weight"].T + w[name + ".bias"] * bias_factor

def plain(img):
    h = conv(img, 1.0) ** 2
    h = dense(h, "3", 1.0) ** 2
    return dense(h, "5", 1.0)

def square_pair(z, wconj):                  # a^2 + i b^2 from z = a + i b and wconj = a - i b
    return ((z + wconj) / 2) ** 2 - 1j * ((z - wconj) / 2) ** 2

a, b = x[0::2], x[1::2]
z = a + 1j * b
c1 = conv(z, 1 + 1j)
c1w = conv(np.conj(z), 1 - 1j)              # the client's conjugate input through the same convolution
assert np.allclose(c1w, np.conj(c1))
h = square_pair(c1, c1w)
h = dense(h, "3", 1 + 1j)
h = square_pair(h, np.conj(h))              # the key-switched conjugation
out = dense(h, "5", 1 + 1j)
pa, pb = plain(a), plain(b)
err = max(np.abs(out.real - pa).max(), np.abs(out.imag - pb).max())
same = (out.real.argmax(1) == pa.argmax(1)).sum() + (out.imag.argmax(1) == pb.argmax(1)).sum()
print(f"{n} images as {n // 2} complex slots: max |complex - real| {err:.3g}, argmax equal {same}/{n}, "
      f"largest |output| real {np.abs(pa).max():.1f}, complex modulus {np.abs(out).max():.1f}")
