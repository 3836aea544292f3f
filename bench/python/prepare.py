#!/usr/bin/python3
"""The tasks' data, made once and read by every tool's script (same records, same weights):

- lr.npz: scikit-learn's breast-cancer data (569 records, 30 features) standardized (the 569 records' mean
  and standard deviation), a logistic regression fitted on them (C = 1), and 8,192 records drawn with
  replacement from the 569 (seed 0): X, y, w, b, calib (the 569), plain (the plaintext model's classes of X).
  Also lr_model.pkl (the fitted scikit-learn model), X.csv and calib.csv (for the CLI).
- cnn.npz: the CryptoNets-shaped network of examples/fashion/train.py (trained there, model.onnx), its
  weights read back from the ONNX file, the first test images and their labels, 500 training images for
  calibration, the plaintext classes.

usage: prepare.py OUTDIR FASHION_DIR   (FASHION_DIR: where examples/fashion/train.py wrote model.onnx)
"""
import os
import pickle
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cnn_plain  # noqa: E402


def lr(out):
    data = load_breast_cancer()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    clf = LogisticRegression(C=1.0, max_iter=5000).fit(x, data.target)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(x), 8192)
    X, y = x[pick], data.target[pick]
    plain = clf.predict(X)
    np.savez(os.path.join(out, "lr.npz"), X=X, y=y, w=clf.coef_[0], b=clf.intercept_, calib=x, plain=plain)
    with open(os.path.join(out, "lr_model.pkl"), "wb") as f:
        pickle.dump(clf, f)
    np.savetxt(os.path.join(out, "X.csv"), X, delimiter=",", fmt="%.17g")
    np.savetxt(os.path.join(out, "calib.csv"), x, delimiter=",", fmt="%.17g")
    print(f"prepare.py: logistic regression, plaintext accuracy {np.mean(plain == y):.4f} on 8,192 records")


def cnn(out, fashion):
    model = onnx.load(os.path.join(fashion, "model.onnx"))
    arrays = [numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer]
    by_shape = {a.shape: a for a in arrays}
    d = {"conv_w": by_shape[(5, 1, 5, 5)], "conv_b": by_shape[(5,)], "fc1_w": by_shape[(100, 720)],
         "fc1_b": by_shape[(100,)], "fc2_w": by_shape[(10, 100)], "fc2_b": by_shape[(10,)]}
    d["images"] = np.loadtxt(os.path.join(fashion, "test.csv"), delimiter=",", ndmin=2)
    d["labels"] = np.loadtxt(os.path.join(fashion, "labels.csv"), dtype=np.int64, ndmin=1)
    d["calib"] = np.loadtxt(os.path.join(fashion, "calib.csv"), delimiter=",", ndmin=2)[:500]
    d["plain"] = np.argmax(cnn_plain(d, d["images"]), axis=1)
    np.savez(os.path.join(out, "cnn.npz"), **d)
    print(f"prepare.py: CNN, plaintext accuracy {np.mean(d['plain'] == d['labels']):.4f} on "
          f"{len(d['labels'])} test images")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    os.makedirs(sys.argv[1], exist_ok=True)
    lr(sys.argv[1])
    cnn(sys.argv[1], sys.argv[2])
