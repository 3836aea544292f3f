#!/usr/bin/python3
"""Linear regression on scikit-learn's diabetes data (442 patients, 10 features: disease progression after
one year), exported as ONNX: x -> Gemm(w, b) -> progression. Encrypted, the hospital learns the predicted
progression of its patients without showing them to the server.

usage: train.py OUTDIR   writes model.onnx, test.csv (features, with a header) and targets.csv
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split


def main(out):
    os.makedirs(out, exist_ok=True)
    data = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.25, random_state=0)
    reg = LinearRegression().fit(x_train, y_train)
    print(f"train.py: R^2 on {len(y_test)} test patients: {reg.score(x_test, y_test):.4f}")
    f32 = np.float32
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "weight", "bias"], ["progression"], name="linear_regression", transB=1)],
        "diabetes_linear_regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor_value_info("progression", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(reg.coef_.reshape(1, -1).astype(f32), "weight"),
         numpy_helper.from_array(np.array([reg.intercept_], dtype=f32), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="veil-examples")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "model.onnx"))
    np.savetxt(os.path.join(out, "test.csv"), x_test, delimiter=",", header=",".join(data.feature_names),
               comments="", fmt="%.17g")
    np.savetxt(os.path.join(out, "targets.csv"), y_test, fmt="%.17g")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
