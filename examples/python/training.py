#!/usr/bin/env python3
"""Encrypted training with veil.train beside scikit-learn: logistic regression on scikit-learn's
breast-cancer data (398 training records), trained by a server that holds only evaluation keys and
ciphertexts of the features and the labels (Nesterov's accelerated gradient, a degree-3 polynomial sigmoid;
docs/training.md). The data owner decrypts the weights into an estimator with coef_, intercept_ and
predict, and an ONNX model that veil.compile (or any ONNX runtime) runs.

usage: training.py [--iterations I] [--features F]

  --iterations I  gradient-descent iterations (default 7; each costs the server time and the keys depth)
  --features F    train on the first F features only (default: all 30)

Needs: numpy, scikit-learn (Debian: python3-numpy, python3-sklearn) and the veil package.
"""
import argparse
import sys
import time

import veil  # first: it sets OMP_WAIT_POLICY=passive before scikit-learn loads the OpenMP runtime

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=7)
    ap.add_argument("--features", type=int, default=0)
    args = ap.parse_args()

    data = load_breast_cancer()
    x, y = data.data, data.target
    if args.features:
        x = x[:, :args.features]
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    print(f"== encrypted training: logistic regression, {len(y_train)} records x {x.shape[1]} features, "
          f"{args.iterations} iterations ==")

    est = veil.train.LogisticRegression(iterations=args.iterations)
    print(est.plan(x.shape[1]))
    t = [time.perf_counter()]
    keys = est.keygen(x.shape[1])                       # the data owner
    t.append(time.perf_counter())
    data_ct = est.encrypt(x_train, y_train, keys)       # the data owner: features and labels
    t.append(time.perf_counter())
    sent = len(keys.eval.to_bytes()) + data_ct.nbytes
    model_ct = est.run(data_ct, keys.eval)              # the server: evaluation keys only
    t.append(time.perf_counter())
    est.decrypt(model_ct, keys, flood=False)            # the data owner, who keeps them: coef_, intercept_
    t.append(time.perf_counter())
    print(f"keygen {t[1] - t[0]:.1f} s, encrypt {t[2] - t[1]:.1f} s, training on the server {t[3] - t[2]:.1f} s, "
          f"decrypt {t[4] - t[3]:.2f} s; {sent / 1e6:.1f} MB sent to the server, {model_ct.nbytes / 1e3:.0f} kB back")

    plain = veil.train.LogisticRegression(iterations=args.iterations).fit_plain(x_train, y_train)
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_train, y_train)

    rows = (("encrypted (veil.train)", est.predict(x_test), est.predict_proba(x_test)[:, 1]),
            ("same algorithm in plaintext", plain.predict(x_test), plain.predict_proba(x_test)[:, 1]),
            ("scikit-learn", sk.predict(x_test), sk.predict_proba(x_test)[:, 1]))
    print(f"results on {len(y_test)} test patients:")
    for name, cls, prob in rows:
        print(f"  {name:<32} accuracy {np.mean(cls == y_test):.4f}  AUC {roc_auc_score(y_test, prob):.4f}")
    diff = float(np.max(np.abs(np.concatenate([[est.intercept_ - plain.intercept_], est.coef_ - plain.coef_]))))
    same = int((rows[0][1] == rows[1][1]).sum())
    print(f"  {'identical decisions, encrypted vs plaintext':<48} {same} of {len(y_test)}")
    print(f"  {'largest |encrypted - plaintext| weight':<48} {diff:.3g}")

    # the trained model is an ONNX model like any other: encrypted inference with it
    m = veil.compile(est.to_onnx(), calibrate=x_train)
    ikeys = m.keygen()
    prob = m.decrypt(m.run(m.encrypt(x_test, ikeys), ikeys.eval), ikeys)[:, 0]
    print(f"  {'encrypted inference with the trained model':<48} "
          f"largest difference {np.max(np.abs(prob - rows[0][2])):.3g}")
    if same < len(y_test) - 2:
        sys.exit("training.py: the encrypted training's decisions differ from the plaintext algorithm's")


if __name__ == "__main__":
    main()
