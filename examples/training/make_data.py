#!/usr/bin/python3
"""Writes the two training data sets of examples/training into OUTDIR (CSV, a header, label column "label"):

  breast_train.csv / breast_test.csv   scikit-learn's breast-cancer data (Wisconsin diagnostic, 569 x 30),
                                       split 80/20 with a fixed seed; label 1 = malignant.
  idash.csv / idash_test.csv           a data set of the iDASH 2017 shape (1,579 records x 18 features)
                                       built from the UCI optical handwritten digits that Debian's
                                       python3-sklearn ships (sklearn.datasets.load_digits, 1,797 8x8 images):
                                       the first 1,579 images are the records, the 18 pixels of highest variance
                                       the features (0..16 ink levels), label 1 for the digits 5..9; the
                                       remaining 218 images are the test split.
"""
import sys
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits


def write(path, x, y, names):
    with open(path, "w") as f:
        f.write(",".join(names + ["label"]) + "\n")
        for row, label in zip(x, y):
            f.write(",".join("%.10g" % v for v in row) + ",%d\n" % label)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    bc = load_breast_cancer()
    x, y = bc.data, 1 - bc.target  # sklearn's target 0 is malignant
    order = np.random.RandomState(7).permutation(len(y))
    cut = int(0.8 * len(y))
    names = [n.replace(" ", "_") for n in bc.feature_names]
    write(out + "/breast_train.csv", x[order[:cut]], y[order[:cut]], names)
    write(out + "/breast_test.csv", x[order[cut:]], y[order[cut:]], names)

    d = load_digits()
    pixels = np.argsort(-d.data[:1579].var(axis=0), kind="stable")[:18]
    x, y = d.data[:, pixels], (d.target >= 5).astype(int)
    names = ["pixel_%d_%d" % (p // 8, p % 8) for p in pixels]
    write(out + "/idash.csv", x[:1579], y[:1579], names)
    write(out + "/idash_test.csv", x[1579:], y[1579:], names)


if __name__ == "__main__":
    main()
