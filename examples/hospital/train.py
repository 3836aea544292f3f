#!/usr/bin/python3
"""Trains the hospital's model: logistic regression on scikit-learn's breast-cancer data (569 patients,
30 features), and exports it as ONNX with the standardization inside the graph:
    x -> Sub(mean) -> Div(std) -> Gemm(w, b) -> Sigmoid -> probability of a benign tumour
Veil folds Sub, Div and Gemm into one affine layer and leaves the final Sigmoid to the data owner.

usage: train.py OUTDIR   writes model.onnx, test.csv (features, with a header), labels.csv, train.csv
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split


def main(out):
    os.makedirs(out, exist_ok=True)
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    clf = LogisticRegression(C=1.0, max_iter=5000)
    clf.fit((x_train - mean) / std, y_train)
    print(f"train.py: plaintext accuracy on {len(y_test)} test patients: "
          f"{clf.score((x_test - mean) / std, y_test):.4f}")

    f32 = np.float32
    inits = [
        numpy_helper.from_array(mean.astype(f32), "mean"),
        numpy_helper.from_array(std.astype(f32), "std"),
        numpy_helper.from_array(clf.coef_.astype(f32), "weight"),        # [1, 30]
        numpy_helper.from_array(clf.intercept_.astype(f32), "bias"),     # [1]
    ]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centered"], name="standardize_center"),
        helper.make_node("Div", ["centered", "std"], ["z"], name="standardize_scale"),
        helper.make_node("Gemm", ["z", "weight", "bias"], ["logit"], name="logistic_regression", transB=1),
        helper.make_node("Sigmoid", ["logit"], ["probability"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "breast_cancer_logistic_regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 30])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="veil-examples")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "model.onnx"))

    header = ",".join(name.replace(" ", "_") for name in data.feature_names)
    np.savetxt(os.path.join(out, "test.csv"), x_test, delimiter=",", header=header, comments="", fmt="%.17g")
    np.savetxt(os.path.join(out, "train.csv"), x_train, delimiter=",", header=header, comments="", fmt="%.17g")
    np.savetxt(os.path.join(out, "labels.csv"), y_test, fmt="%d")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
