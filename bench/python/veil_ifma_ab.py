#!/usr/bin/env python3
"""The dense layer's sums with AVX-512 IFMA against AVX2, interleaved in one process (docs/performance.md,
"Afterwards"): two key sets for the same breast-cancer logistic regression, one made with VEIL_NO_AVX512=1 (the
ring reads it when a context is made), and the 8,192-record batch's `m.run` on each, alternately.

usage: VEIL_THREADS=1 taskset -c 1 python bench/python/veil_ifma_ab.py [ALTERNATIONS (150)]
(a Python with the veil package installed; prints the minima and medians of both)
"""
import os
import sys
import time

import numpy as np

import veil  # before scikit-learn: OpenMP's wait policy (docs/python.md)
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def main(alternations):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LogisticRegression().fit(X, y)
    batch = X[np.random.default_rng(0).integers(0, len(X), 8192)]
    m = veil.compile(clf, calibrate=X)
    os.environ["VEIL_NO_AVX512"] = "1"
    avx2 = m.keygen()
    del os.environ["VEIL_NO_AVX512"]
    ifma = m.keygen()
    cases = [(avx2, m.encrypt(batch, avx2), []), (ifma, m.encrypt(batch, ifma), [])]
    outs = [m.decrypt(m.run(ct, k.eval, threads=1), k) for k, ct, _ in cases]
    assert np.abs(outs[0] - outs[1]).max() < 1e-6  # the same model, each with its own keys
    for _ in range(alternations):
        for keys, ct, times in cases:
            t0 = time.perf_counter()
            m.run(ct, keys.eval, threads=1)
            times.append(time.perf_counter() - t0)
    for name, (_, _, t) in zip(("AVX2", "IFMA"), cases):
        print(f"{name}: 8,192 records, min {min(t) * 1e3:.3f} ms, median {np.median(t) * 1e3:.3f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
