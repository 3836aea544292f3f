#!/usr/bin/env python3
"""A scikit-learn pipeline compiled as it is: StandardScaler + PCA + multinomial LogisticRegression on
scikit-learn's wine data (178 wines, 13 chemical measurements, 3 cultivars), evaluated on ciphertexts in
the throughput packing (one wine per slot: every test wine in one ciphertext set).

veil.compile writes the fitted pipeline as ONNX (Sub/Div for the scaler, Sub/MatMul for the PCA, Gemm and a
Softmax for the classifier); Veil folds the affine steps into one layer, and the Softmax is applied by the
data owner after decryption, exactly.

usage: sklearn_pipeline.py [--components K] [--repeat R]

  --components K  PCA components (default 5)
  --repeat R      encrypt the test set R times over (more samples per call: the throughput packing's point)

Needs: numpy, scikit-learn, onnx (Debian: python3-numpy, python3-sklearn, python3-onnx) and the veil package.
"""
import argparse
import sys
import time

import veil  # first: it sets OMP_WAIT_POLICY=passive before scikit-learn loads the OpenMP runtime

import numpy as np
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--components", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    data = load_wine()
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.3, random_state=0,
                                                        stratify=data.target)
    x_test, y_test = np.tile(x_test, (args.repeat, 1)), np.tile(y_test, args.repeat)
    pipe = make_pipeline(StandardScaler(), PCA(n_components=args.components, random_state=0),
                         LogisticRegression(max_iter=5000)).fit(x_train, y_train)

    m, t_compile = timed(lambda: veil.compile(pipe, packing="throughput", calibrate=x_train))
    print(f"== {' + '.join(type(s).__name__ for _, s in pipe.steps)} on the wine data, encrypted ==")
    print(m.plan())
    keys, t_keygen = timed(m.keygen)
    ct, t_encrypt = timed(m.encrypt, x_test, keys)
    out, t_run = timed(m.run, ct, keys.eval)
    prob, t_decrypt = timed(m.decrypt, out, keys)
    plain = m.predict(x_test)            # the pipeline as ONNX, in float64
    sk = pipe.predict_proba(x_test)      # scikit-learn itself

    n = len(y_test)
    print("timings:")
    for name, t in (("compile", t_compile), ("keygen", t_keygen), (f"encrypt {n} wines", t_encrypt),
                    (f"run (the server; {n / t_run:.0f} wines/s)", t_run), ("decrypt", t_decrypt)):
        print(f"  {name:<44} {t:8.3f} s")
    print("sizes:")
    print(f"  {'evaluation keys':<44} {len(keys.eval.to_bytes()):10d} bytes")
    print(f"  {'ciphertexts in / out':<44} {ct.nbytes:10d} / {out.nbytes} bytes")

    enc_cls, plain_cls, sk_cls = prob.argmax(1), plain.argmax(1), sk.argmax(1)
    same = int((enc_cls == plain_cls).sum())
    diff = float(np.max(np.abs(prob - plain)))
    print(f"results on {n} wines:")
    print(f"  {'accuracy, encrypted':<44} {np.mean(enc_cls == y_test):8.4f}")
    print(f"  {'accuracy, plaintext (scikit-learn)':<44} {np.mean(sk_cls == y_test):8.4f}")
    print(f"  {'identical classes':<44} {same:8d} of {n}")
    print(f"  {'largest |encrypted - plaintext| probability':<44} {diff:8.3g}")
    print(f"  {'largest |plaintext - scikit-learn| probability':<44} {np.max(np.abs(plain - sk)):8.3g}")
    if same != n or diff > 1e-3:
        sys.exit("sklearn_pipeline.py: the encrypted predictions differ from the plaintext pipeline's")


if __name__ == "__main__":
    main()
