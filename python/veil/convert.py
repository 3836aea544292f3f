"""Models that are not ONNX files yet, written as ONNX: fitted scikit-learn linear models (and pipelines of
scalers and PCA in front of one), and PyTorch modules (exported by torch.onnx with an example input).

The scikit-learn graphs are built with onnx.helper from the estimators' own arrays: a standardization or
PCA becomes Sub/Div/MatMul nodes, the model a Gemm, a classifier's link a Sigmoid (binary) or Softmax.
Veil folds every affine run into one layer when it lowers the graph, so nothing is lost by writing them apart.
"""
from __future__ import annotations

import io
from typing import Any, Optional

import numpy as np


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:  # pragma: no cover - the message is the point
        raise ImportError("writing a scikit-learn model as ONNX needs the onnx package (Debian python3-onnx, or "
                          "pip install onnx)") from e
    return onnx, helper, numpy_helper


def _class_name(obj) -> str:
    return type(obj).__name__


def _steps(model) -> list:
    """The estimators of a Pipeline in order (or the model alone)."""
    if _class_name(model) == "Pipeline":
        return [step for _, step in model.steps if step is not None and step != "passthrough"]
    return [model]


def is_sklearn(model: Any) -> bool:
    return type(model).__module__.startswith("sklearn.")


def is_torch(model: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


class _Graph:
    def __init__(self, width: int):
        self.nodes, self.inits = [], []
        self.current = "x"
        self.width = width
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        _, _, numpy_helper = _onnx()
        self.count += 1
        full = f"{name}_{self.count}"
        # float64: a scaler's means and scales are applied to raw features, where float32 would lose digits
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float64), full))
        return full

    def node(self, op: str, *inputs: str, **attrs) -> None:
        _, helper, _ = _onnx()
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, [self.current, *inputs], [out], name=out, **attrs))
        self.current = out


def _add_transform(g: _Graph, step) -> None:
    name = _class_name(step)
    if name == "StandardScaler":
        if getattr(step, "mean_", None) is not None and step.with_mean:
            g.node("Sub", g.const("mean", step.mean_))
        if getattr(step, "scale_", None) is not None and step.with_std:
            g.node("Div", g.const("scale", step.scale_))
    elif name == "MinMaxScaler":
        if getattr(step, "clip", False):
            raise ValueError("veil.compile: MinMaxScaler(clip=True) clips its outputs, which is not affine: refit it "
                             "with clip=False")
        g.node("Mul", g.const("scale", step.scale_))
        g.node("Add", g.const("min", step.min_))
    elif name == "MaxAbsScaler":
        g.node("Div", g.const("scale", step.scale_))
    elif name == "PCA":
        if step.mean_ is not None:
            g.node("Sub", g.const("mean", step.mean_))
        comps = step.components_.T
        if getattr(step, "whiten", False):
            comps = comps / np.sqrt(step.explained_variance_)
        g.node("MatMul", g.const("components", comps))
        g.width = comps.shape[1]
    else:
        raise ValueError(f"veil.compile: cannot write a {name} step as ONNX (scalers, PCA and linear models are "
                         "supported; export other pipelines to ONNX yourself, e.g. with skl2onnx)")


_REGRESSORS = {"LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
               "SGDRegressor", "BayesianRidge", "ARDRegression", "HuberRegressor", "LinearSVR", "Lars", "LassoLars"}
_CLASSIFIERS = {"LogisticRegression", "LogisticRegressionCV", "SGDClassifier", "LinearSVC", "RidgeClassifier",
                "RidgeClassifierCV", "Perceptron"}


def _add_estimator(g: _Graph, est) -> None:
    name = _class_name(est)
    if name not in _REGRESSORS and name not in _CLASSIFIERS:
        raise ValueError(f"veil.compile: cannot write a {name} as ONNX (linear models only: "
                         f"{', '.join(sorted(_REGRESSORS | _CLASSIFIERS))})")
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(getattr(est, "intercept_", 0.0), dtype=np.float64))
    if intercept.size == 1 and coef.shape[0] > 1:
        intercept = np.repeat(intercept, coef.shape[0])
    if name in ("LogisticRegression", "LogisticRegressionCV"):
        multinomial = _logistic_multinomial(est)
        if coef.shape[0] > 1 and not multinomial:
            raise ValueError(f"veil.compile: this {name} is one-vs-rest over {coef.shape[0]} classes: its probabilities "
                             "are normalized sigmoids, which Veil does not apply after decryption; fit it with "
                             "multi_class='multinomial' (a softmax)")
        if coef.shape[0] == 1 and multinomial:  # scikit-learn's binary softmax: sigmoid(2 z)
            coef, intercept = 2 * coef, 2 * intercept
        g.node("Gemm", g.const("coef", coef), g.const("intercept", intercept), transB=1)
        g.node("Softmax" if coef.shape[0] > 1 else "Sigmoid", **({"axis": 1} if coef.shape[0] > 1 else {}))
        return
    g.node("Gemm", g.const("coef", coef), g.const("intercept", intercept), transB=1)
    if name == "SGDClassifier" and getattr(est, "loss", "") in ("log_loss", "log") and coef.shape[0] == 1:
        g.node("Sigmoid")


def _logistic_multinomial(est) -> bool:
    """Whether a fitted LogisticRegression uses a softmax (scikit-learn's rule for multi_class='auto')."""
    mc = getattr(est, "multi_class", "auto")
    if mc in ("auto", "deprecated", None):
        return getattr(est, "solver", "lbfgs") != "liblinear" and len(getattr(est, "classes_", [])) > 2
    return mc == "multinomial"


def labels_of(model: Any):
    """The class labels of a scikit-learn classifier (its classes_), or None."""
    if not is_sklearn(model):
        return None
    est = _steps(model)[-1]
    labels = getattr(est, "classes_", None)
    return None if labels is None or type(est).__name__ in _REGRESSORS else np.asarray(labels)


def sklearn_to_onnx(model: Any, width: Optional[int] = None) -> bytes:
    """A fitted scikit-learn linear model (or a Pipeline of scalers/PCA and one) as the bytes of an ONNX model."""
    onnx, helper, _ = _onnx()
    steps = _steps(model)
    est = steps[-1]
    if not hasattr(est, "coef_"):
        raise ValueError(f"veil.compile: {_class_name(est)} is not a fitted linear model (it has no coef_)")
    width = width or getattr(model, "n_features_in_", None) or np.atleast_2d(est.coef_).shape[1]
    g = _Graph(int(width))
    for step in steps[:-1]:
        _add_transform(g, step)
    _add_estimator(g, est)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, ["n", int(width)])
    y = helper.make_tensor_value_info(g.current, onnx.TensorProto.DOUBLE, None)
    graph = helper.make_graph(g.nodes, "sklearn_" + _class_name(est), [x], [y], g.inits)
    m = helper.make_model(graph, producer_name="veil", opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m.SerializeToString()


def torch_to_onnx(module: Any, example_input: Any) -> bytes:
    """A torch.nn.Module as ONNX bytes, traced with example_input (a tensor or array of one or more samples)."""
    import torch
    if example_input is None:
        raise ValueError("veil.compile: a torch.nn.Module needs example_input= (a batch of one or more samples) to be "
                         "exported to ONNX")
    x = example_input if isinstance(example_input, torch.Tensor) else torch.as_tensor(np.asarray(example_input),
                                                                                         dtype=torch.float32)
    training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with torch.no_grad():
            torch.onnx.export(module, (x,), buf, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=13)
    finally:
        module.train(training)  # the caller's module as it was
    return buf.getvalue()
