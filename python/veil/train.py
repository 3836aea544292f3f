"""Encrypted training of linear and logistic regression (veil/train.h, docs/training.md), as estimators.

    est = veil.train.LogisticRegression(iterations=7).fit(X, y)     # all four steps, here
    est.coef_, est.intercept_, est.predict(X), est.to_onnx()

The four steps apart (the server holds only keys.eval and the ciphertexts):

    keys = est.keygen(features=X.shape[1])          # the data owner
    data = est.encrypt(X, y, keys)                  # the data owner
    model = est.run(data, keys.eval)                # the server: gradient descent on ciphertexts
    est.decrypt(model, keys)                        # the data owner: sets coef_ and intercept_
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ._lib import STREAM_ENCRYPT, call, ffi, lib, new_handle, prng, progress_callback, take_bytes
from .keys import Ciphertexts, EvalKeys, KeySet, as_rows, decrypt_options
from .model import PlanInfo, _SECURITY, _plan_info, keygen_for_plan


class _Trainer:
    _task = 0

    def __init__(self, iterations: int = 7, *, learning_rate: float = 1.0, l2: float = 0.0,
                 security=128, ring_degree: int = 0, threads: Optional[int] = None, flood_room: bool = False):
        from .model import _integer, check_threads
        if _integer(iterations, "iterations") < 1:
            raise ValueError("iterations must be at least 1")
        check_threads(threads)
        if security not in _SECURITY:
            raise ValueError(f"security is 128, 192, 256 or 'none', not {security!r}")
        self.iterations = int(iterations)
        self.learning_rate = float(learning_rate)
        self.l2 = float(l2)
        self.security = security
        self.ring_degree = int(ring_degree)
        self.threads = threads
        self.flood_room = bool(flood_room)  # keys with room for flooded weights (`veil keygen --flood`)

    # ---- the request, the plan ----

    def _request(self, features: int):
        r = ffi.new("veil_train_request *")
        r.task = self._task
        r.features = int(features)
        r.iterations = self.iterations
        r.security = _SECURITY[self.security]
        r.ring_degree = self.ring_degree
        r.flood = 1 if self.flood_room else 0
        self._fill_request(r)
        return r

    def _fill_request(self, r) -> None:
        pass

    def _options(self):
        o = ffi.new("veil_train_options *")
        o.iterations = self.iterations
        o.learning_rate = self.learning_rate
        o.l2 = self.l2
        o.threads = int(self.threads or 0)
        return o

    def _plan(self, features: int):
        r = self._request(features)
        return new_handle("veil_plan", lambda out: call(lib.veil_train_plan, out, r), lib.veil_plan_free)

    def plan(self, features: int) -> PlanInfo:
        """The parameters and sizes training on `features` features for `iterations` iterations needs."""
        return _plan_info(self._plan(features))

    # ---- the four steps ----

    def keygen(self, features: int, *, seed: Optional[bytes] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> KeySet:
        return keygen_for_plan(self._plan(features), seed=seed, progress=progress)

    def encrypt(self, X, y, keys: KeySet, *, seed: Optional[bytes] = None) -> Ciphertexts:
        """Records (n, features) and their labels (n,) under the data owner's keys."""
        info = _train_info(lib.veil_keyset_get_train_info, keys._h)
        x = as_rows(X, info.features, "X")
        labels = _labels(y, x.shape[0])
        stream = prng(seed, STREAM_ENCRYPT)
        h = new_handle("veil_ciphertexts",
                       lambda out: call(lib.veil_train_encrypt, out, keys._h, ffi.from_buffer("double[]", x),
                                        ffi.from_buffer("double[]", labels), x.shape[0], stream),
                       lib.veil_ciphertexts_free, keys._h)
        return Ciphertexts._bound(h, keys._context, keys._h)

    def run(self, data: Ciphertexts, eval_keys: EvalKeys, *,
            progress: Optional[Callable[[int, int], None]] = None) -> Ciphertexts:
        """The server: `iterations` iterations of gradient descent on the encrypted records."""
        if isinstance(eval_keys, KeySet):
            eval_keys = eval_keys.eval
        h_in = data._handle_for(eval_keys)
        opts = self._options()
        report = progress_callback(progress)
        h = new_handle("veil_ciphertexts",
                       lambda out: call(lib.veil_train_run, out, eval_keys._h, h_in, opts, report, ffi.NULL),
                       lib.veil_ciphertexts_free, eval_keys._h)
        return Ciphertexts._bound(h, eval_keys._context, eval_keys._h)

    def decrypt(self, model: Ciphertexts, keys: KeySet, *, flood: bool = True):
        """The trained weights (on the raw features) into coef_ and intercept_; returns self. flood (the default,
        as `veil decrypt --onnx`): noise flooding for weights handed on; refused where the keys leave no room
        (docs/training.md): flood=False for weights the key holder keeps."""
        info = _train_info(lib.veil_keyset_get_train_info, keys._h)
        w = np.empty(info.features + 1, dtype=np.float64)
        call(lib.veil_train_decrypt_ex, ffi.from_buffer("double[]", w, require_writable=True), keys._h,
             model._handle_for(keys), decrypt_options(flood))
        self._set_weights(w)
        return self

    def fit(self, X, y, *, seed: Optional[bytes] = None):
        """The four steps in one process (the data owner and the server both here): encrypted training."""
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"X must be a 2-D array (samples, features), not of shape {x.shape}")
        keys = self.keygen(x.shape[1], seed=seed)
        return self.decrypt(self.run(self.encrypt(x, y, keys, seed=seed), keys.eval), keys, flood=False)  # kept here

    def fit_plain(self, X, y):
        """The same algorithm in float64 on the plaintext (same scaling, polynomial and schedule): the reference."""
        x = as_rows(X, np.asarray(X).shape[1] if np.ndim(X) == 2 else 0, "X")
        labels = _labels(y, x.shape[0])
        r, o = self._request(x.shape[1]), self._options()
        w = np.empty(x.shape[1] + 1, dtype=np.float64)
        call(lib.veil_train_run_plain, ffi.from_buffer("double[]", w, require_writable=True), r, o,
             ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", labels), x.shape[0], ffi.NULL)
        self._set_weights(w)
        return self

    # ---- the trained model ----

    def _set_weights(self, w: np.ndarray) -> None:
        self.intercept_ = float(w[0])
        self.coef_ = w[1:].copy()

    def decision_function(self, X) -> np.ndarray:
        x = np.asarray(X, dtype=np.float64)
        return x @ self.coef_ + self.intercept_

    def to_onnx(self) -> bytes:
        """A standard ONNX model of the trained weights (ending in a Sigmoid for logistic regression)."""
        w = np.ascontiguousarray(np.concatenate([[self.intercept_], self.coef_]))
        return take_bytes(lambda buf, err: lib.veil_train_to_onnx(buf, self._task, ffi.from_buffer("double[]", w),
                                                                  self.coef_.shape[0], err))


class LogisticRegression(_Trainer):
    """Binary logistic regression trained on ciphertexts: Nesterov's accelerated gradient with a polynomial
    sigmoid of degree 3, 5 or 7 fitted over [-sigmoid_range, sigmoid_range] (Kim et al. 2018)."""
    _task = 0

    def __init__(self, iterations: int = 7, *, degree: int = 3, sigmoid_range: int = 8, **kw):
        super().__init__(iterations, **kw)
        self.degree = int(degree)
        self.sigmoid_range = int(sigmoid_range)

    def _fill_request(self, r) -> None:
        r.degree = self.degree
        r.range = self.sigmoid_range

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2): the probabilities of classes 0 and 1, as scikit-learn's."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(np.int64)


class LinearRegression(_Trainer):
    """Least-squares linear regression (ridge with l2 > 0) trained on ciphertexts by gradient descent."""
    _task = 1

    def predict(self, X) -> np.ndarray:
        return self.decision_function(X)


def _labels(y, rows: int) -> np.ndarray:
    """y as rows float64 labels: a 1-D array or one column, as many as the rows, every value finite."""
    raw = np.asarray(y)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"y must hold numbers, not {raw.dtype} values")
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per row), not of shape {raw.shape}")
    if raw.shape[0] != rows:
        raise ValueError(f"X has {rows} rows and y {raw.shape[0]} labels")
    labels = np.ascontiguousarray(raw, dtype=np.float64)
    if not np.isfinite(labels).all():
        raise ValueError("y holds a value that is not a finite number")
    return labels


class _Info:
    def __init__(self, i):
        self.features = int(i.features)
        self.max_iterations = int(i.max_iterations)


def _train_info(fn, handle) -> _Info:
    i = ffi.new("veil_train_info *")
    call(fn, handle, i)
    return _Info(i)
