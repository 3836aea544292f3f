#!/usr/bin/env python3
"""A PyTorch model compiled from the nn.Module: a CryptoNets-style MLP (64 -> 32 -> square -> 10) trained
briefly on scikit-learn's 8x8 digits, evaluated on ciphertexts in both packings:

  throughput  one image per slot: every test image in one ciphertext set (images per second)
  latency     one image per ciphertext (baby-step giant-step diagonals): the time to answer one image

veil.compile exports the module with torch.onnx (example_input: one batch of the input's shape); the square
activation is one encrypted multiplication, so the encrypted scores are the network's own up to CKKS's
rounding. --activation tanh puts a Tanh in its place: Veil evaluates a Chebyshev polynomial fitted over the
range the calibration images reach (printed by the model's report), so compile gets calibrate=.

usage: torch_model.py [--epochs E] [--images N] [--latency-images L] [--activation square|tanh]

  --epochs E          training epochs (full batch, Adam; default 300)
  --images N          test images for the throughput packing (default: all 450)
  --latency-images L  images answered one at a time in the latency packing (default 4; 0: skip)

Needs: numpy, scikit-learn, torch (Debian: python3-numpy, python3-sklearn, python3-torch) and the veil package.
"""
import argparse
import sys
import time

import veil  # first: it sets OMP_WAIT_POLICY=passive before torch or scikit-learn loads the OpenMP runtime

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


def train(x_train, y_train, epochs, activation):
    torch.manual_seed(0)
    act = Square() if activation == "square" else torch.nn.Tanh()
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), act, torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def compare(name, scores, plain, labels):
    """Prints accuracy encrypted vs plaintext and argmax agreement; True when every class agrees."""
    n = len(labels)
    enc_cls, plain_cls = scores.argmax(1), plain.argmax(1)
    same = int((enc_cls == plain_cls).sum())
    diff = float(np.max(np.abs(scores - plain)))
    print(f"results, {name}, on {n} images:")
    print(f"  {'accuracy, encrypted':<44} {np.mean(enc_cls == labels):8.4f}")
    print(f"  {'accuracy, plaintext':<44} {np.mean(plain_cls == labels):8.4f}")
    print(f"  {'identical classes (argmax)':<44} {same:8d} of {n}")
    print(f"  {'largest |encrypted - plaintext| score':<44} {diff:8.3g}")
    return same == n and diff <= 1e-3 * (1 + np.max(np.abs(plain)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--images", type=int, default=0)
    ap.add_argument("--latency-images", type=int, default=4)
    ap.add_argument("--activation", choices=("square", "tanh"), default="square")
    args = ap.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=0,
                                                        stratify=digits.target)
    if args.images:
        x_test, y_test = x_test[:args.images], y_test[:args.images]
    t0 = time.perf_counter()
    net = train(x_train, y_train, args.epochs, args.activation)
    print(f"== a PyTorch MLP ({args.activation}) on the digits, encrypted ==")
    print(f"trained in {time.perf_counter() - t0:.2f} s")
    with torch.no_grad():
        torch_scores = net(torch.from_numpy(x_test)).numpy()

    # input_range: the pixels' range, from which the plan bounds every value the encrypted network computes
    # (encrypt refuses pixels outside it). Not calibrate= alone: each feature's range over the training
    # images would be the keys' range, and a border pixel that is 0 in every training image would refuse a
    # test image where it is not. A Tanh also needs its input's range: calibrate= gives it.
    options = dict(example_input=torch.zeros(1, 64), input_range=(0.0, 1.0))
    if args.activation != "square":
        options.update(calibrate=x_train, degree=31)
    ok = True

    m = veil.compile(net, packing="throughput", **options)
    if args.activation != "square":
        print(m.report)
    print(m.plan())
    keys = m.keygen()
    t0 = time.perf_counter()
    ct = m.encrypt(x_test, keys)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = m.run(ct, keys.eval)
    t_run = time.perf_counter() - t0
    scores = m.decrypt(out, keys)
    plain = m.simulate(x_test)   # what the encrypted model computes (the polynomial, if any), in plaintext
    print(f"throughput: encrypt {t_enc:.3f} s, run {t_run:.3f} s for {len(x_test)} images "
          f"({len(x_test) / t_run:.0f} images/s on the server)")
    ok = compare("throughput", scores, plain, y_test) and ok
    print(f"  {'accuracy, PyTorch':<44} {np.mean(torch_scores.argmax(1) == y_test):8.4f}")
    # predict: the network itself in float64 (exact activations); simulate: with the server's polynomials
    print(f"  {'largest |simulate - predict| score':<44} {np.max(np.abs(plain - m.predict(x_test))):8.3g}")
    print(f"  {'largest |predict - PyTorch| score':<44} {np.max(np.abs(m.predict(x_test) - torch_scores)):8.3g}")

    if args.latency_images:
        lat = veil.compile(net, packing="latency", **options)
        print(lat.plan())
        lkeys = lat.keygen()
        xs = x_test[:args.latency_images]
        rows, times = [], []
        for row in xs:   # one image at a time, as a client asking for one answer would
            ct = lat.encrypt(row.reshape(1, -1), lkeys)
            t0 = time.perf_counter()
            out = lat.run(ct, lkeys.eval)
            times.append(time.perf_counter() - t0)
            rows.append(lat.decrypt(out, lkeys)[0])
        print(f"latency: {np.median(times) * 1e3:.1f} ms per image on the server (median of {len(times)}; "
              f"the first includes encoding the diagonals: {times[0] * 1e3:.1f} ms)")
        ok = compare("latency", np.array(rows), lat.simulate(xs), y_test[:len(xs)]) and ok
    if not ok:
        sys.exit("torch_model.py: the encrypted scores differ from the plaintext model's")


if __name__ == "__main__":
    main()
