#!/usr/bin/python3
"""Compares logistic-regression models on a test CSV (label column "label"): accuracy and AUC of the model
trained on ciphertexts (an ONNX file written by `veil decrypt --onnx`), of the same algorithm run in plaintext
(`veil train --plain --onnx`), and of scikit-learn's LogisticRegression trained on TRAIN.csv.

usage: evaluate.py TRAIN.csv TEST.csv ENCRYPTED.onnx PLAIN.onnx
The ONNX models are read with the onnx package (Gemm then Sigmoid) and evaluated with numpy.
"""
import sys
import numpy as np
import onnx
from onnx import numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def load_csv(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1]


def onnx_probabilities(path, x):
    model = onnx.load(path)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Gemm", "Sigmoid"], ops
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    z = x @ init["W"].astype(np.float64) + init["b"].astype(np.float64)
    return 1.0 / (1.0 + np.exp(-z[:, 0]))


def main():
    train, test, enc, plain = sys.argv[1:5]
    xtr, ytr = load_csv(train)
    xte, yte = load_csv(test)
    pe, pp = onnx_probabilities(enc, xte), onnx_probabilities(plain, xte)
    mean, dev = xtr.mean(0), np.abs(xtr - xtr.mean(0)).max(0)
    sk = LogisticRegression(max_iter=10000).fit((xtr - mean) / dev, ytr)
    ps = sk.predict_proba((xte - mean) / dev)[:, 1]
    print("  %-34s %8s %8s" % ("model (test split of %d)" % len(yte), "accuracy", "AUC"))
    for name, p in (("trained on ciphertexts (Veil)", pe), ("same algorithm in plaintext", pp),
                    ("scikit-learn LogisticRegression", ps)):
        print("  %-34s %8.4f %8.4f" % (name, ((p > 0.5) == (yte > 0.5)).mean(), roc_auc_score(yte, p)))
    same = ((pe > 0.5) == (pp > 0.5)).mean()
    print("  identical classes (encrypted vs plaintext algorithm): %.1f%%; largest probability difference %.2g"
          % (100 * same, np.abs(pe - pp).max()))


if __name__ == "__main__":
    main()
