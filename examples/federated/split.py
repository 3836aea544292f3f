#!/usr/bin/env python3
"""Three hospitals' shares of scikit-learn's breast-cancer set, for examples/federated/fedavg.

  split.py OUTDIR [--idash]
            writes OUTDIR/hospital1.csv .. hospital3.csv (45%, 35%, 20% of the training rows) and
            OUTDIR/test.csv: 30 standardized features, then the label (1 benign, 0 malignant); with --idash,
            the iDASH-2017-shaped set of examples/training/make_data.py instead (1,579 training records x 18
            features from the UCI digits, the 18 pixels of highest variance, label 1 for digits 5..9; the
            remaining 218 images the test rows)

The features are standardized with the training rows' mean and deviation (a simplification: a real
federation would agree on them first, for example by the same encrypted sum of counts, sums and squares)."""
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
if "--idash" in sys.argv[2:]:
    d = load_digits()
    pixels = np.argsort(-d.data[:1579].var(axis=0), kind="stable")[:18]
    X, y = d.data[:, pixels], (d.target >= 5).astype(int)
    X_train, X_test, y_train, y_test = X[:1579], X[1579:], y[:1579], y[1579:]
else:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
std_floor = 1e-12
mean, std = X_train.mean(axis=0), np.maximum(X_train.std(axis=0), std_floor)
X_train, X_test = (X_train - mean) / std, (X_test - mean) / std
order = np.random.default_rng(0).permutation(len(X_train))
cuts = [0, int(0.45 * len(order)), int(0.80 * len(order)), len(order)]


def save(path, rows, labels):
    np.savetxt(path, np.column_stack([rows, labels]), delimiter=",", fmt="%.10g")


for k in range(3):
    idx = order[cuts[k]:cuts[k + 1]]
    save(os.path.join(out, f"hospital{k + 1}.csv"), X_train[idx], y_train[idx])
save(os.path.join(out, "test.csv"), X_test, y_test)
print(f"{out}: hospitals of {[cuts[k + 1] - cuts[k] for k in range(3)]} rows, test {len(X_test)} rows")
