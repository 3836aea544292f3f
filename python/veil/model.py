"""veil.compile and the Model: a model lowered to what CKKS (or BGV) evaluates, with its plan.

    m = veil.compile("model.onnx", calibrate=X_train)   # or a scikit-learn model, or a torch.nn.Module
    keys = m.keygen()                                    # the data owner
    ct = m.encrypt(X, keys)                              # the data owner
    out = m.run(ct, keys.eval)                           # the server: evaluation keys only
    Y = m.decrypt(out, keys)                             # the data owner
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from . import convert
from ._lib import STREAM_KEYS, call, ffi, lib, new_handle, owned, prng, progress_callback, take_bytes
from .keys import Ciphertexts, EvalKeys, KeySet, _Context, _FINAL_OPS, as_rows

_SECURITY = {128: 0, 192: 1, 256: 2, None: 3, "none": 3}
_ESTIMATE_UNIT = {"throughput": "batch", "latency": "sample",
                  "training": "iteration and ciphertext of records"}


@dataclasses.dataclass(frozen=True)
class PlanInfo:
    """What a plan chose and what it costs (veil_plan_info in veil/ml.h; the estimates: docs/ml.md)."""
    scheme: str
    packing: str
    n: int                      # ring degree
    slots: int
    batch: int                  # samples per ciphertext set
    depth: int                  # levels used
    scale_bits: int
    log_qp: int
    q_count: int
    p_count: int
    dnum: int                   # key-switching digits
    rotations: int              # Galois keys
    in_ciphertexts: int
    out_ciphertexts: int
    eval_key_bytes: int
    ciphertext_bytes: int       # one fresh input ciphertext
    estimated_seconds: float    # server time per batch (throughput) or sample (latency), one thread
    estimated_memory_bytes: float
    keygen_memory_bytes: float
    plain_moduli: Tuple[int, ...]  # BGV
    input_range: Tuple[float, float]  # CKKS: the hull of the inputs' range
    output_bound: float         # CKKS: the outputs' worst-case |value| over it

    def __str__(self) -> str:
        lines = [f"{self.scheme} {self.packing}: N = {self.n}, {self.slots} slots, batch {self.batch}, depth {self.depth}",
                 f"  log QP = {self.log_qp} ({self.q_count} + {self.p_count} primes, dnum {self.dnum}), "
                 f"scale 2^{self.scale_bits}, {self.rotations} rotation keys",
                 f"  evaluation keys {self.eval_key_bytes / 1e6:.2f} MB, one input ciphertext "
                 f"{self.ciphertext_bytes / 1e3:.0f} kB, " +
                 (f"about {self.estimated_seconds:.3g} s per {_ESTIMATE_UNIT[self.packing]} on one thread"
                  if self.estimated_seconds > 0 else "no time estimate (a plan read from a file has no model)")]
        if self.scheme == "bgv":
            lines.append(f"  plaintext moduli {', '.join(map(str, self.plain_moduli))}")
        # a training plan has no inputs' range, nor a plan read from a file (its keys carry the range)
        elif self.packing != "training" and self.output_bound > 0:
            lines.append(f"  inputs in [{self.input_range[0]:g}, {self.input_range[1]:g}], "
                         f"outputs bounded by {self.output_bound:g}")
        return "\n".join(lines)


def _plan_info(plan) -> PlanInfo:
    i = ffi.new("veil_plan_info *")
    lib.veil_plan_get_info(plan, i)
    scheme = "bgv" if i.scheme == lib.VEIL_ML_BGV else "ckks"
    return PlanInfo(scheme=scheme, packing={0: "throughput", 1: "latency", 2: "training"}[int(i.packing)],
                    n=i.n, slots=i.slots, batch=i.batch, depth=i.depth, scale_bits=i.scale_bits, log_qp=i.log_qp,
                    q_count=i.q_count, p_count=i.p_count, dnum=i.dnum, rotations=i.rotations,
                    in_ciphertexts=i.in_ciphertexts, out_ciphertexts=i.out_ciphertexts,
                    eval_key_bytes=int(i.eval_key_bytes), ciphertext_bytes=int(i.ciphertext_bytes),
                    estimated_seconds=i.estimated_seconds, estimated_memory_bytes=i.estimated_memory_bytes,
                    keygen_memory_bytes=i.keygen_memory_bytes,
                    plain_moduli=tuple(int(i.plain_moduli[k]) for k in range(i.crt_count)),
                    input_range=(i.input_lo, i.input_hi), output_bound=i.output_bound)


def _onnx_bytes(model: Any, example_input: Any) -> Tuple[bytes, str]:
    """The ONNX bytes of what compile was given, and a name for messages."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        with open(path, "rb") as f:
            return f.read(), path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "the ONNX model"
    if hasattr(model, "SerializeToString") and hasattr(model, "graph"):
        return model.SerializeToString(), "the ONNX model"
    if convert.is_sklearn(model):
        return convert.sklearn_to_onnx(model), type(model).__name__
    if convert.is_torch(model):
        return convert.torch_to_onnx(model, example_input), type(model).__name__
    raise TypeError(f"veil.compile takes an ONNX file's path or bytes, an onnx.ModelProto, a fitted scikit-learn "
                    f"linear model or a torch.nn.Module, not {type(model).__name__}")


def _pair(value, what: str) -> Tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{what} is a pair (lo, hi), not {value!r}") from None
    return lo, hi


class Model:
    """A model lowered for encrypted evaluation, with its plan. Made by veil.compile."""

    def __init__(self, handle, plan, onnx: bytes, name: str, scheme: str, keep: tuple, options: dict,
                 classes_=None):
        self._options = options
        self.classes_ = classes_  # a scikit-learn classifier's labels, which decrypt(argmax=True) gives
        self._h = handle
        self._plan = plan
        self.onnx = onnx
        self.name = name
        self.scheme = scheme
        self._keep = keep
        self._evaluators = {}
        self._lock = threading.Lock()

    # ---- what it is ----

    @property
    def input_width(self) -> int:
        """Features per sample."""
        return int(lib.veil_model_input_width(self._h))

    @property
    def output_width(self) -> int:
        """Values per sample after the final operation (what decrypt and predict return)."""
        return int(lib.veil_model_output_width(self._h))

    @property
    def final_op(self) -> Optional[str]:
        """The final operation the data owner applies after decryption: None, 'sigmoid', 'softmax', 'logsoftmax',
        'argmax'."""
        return _FINAL_OPS[int(lib.veil_model_final_op(self._h))]

    @property
    def report(self) -> str:
        """How the graph was lowered: its stages, each approximation and its error."""
        return ffi.string(lib.veil_model_report(self._h)).decode()

    def plan(self) -> PlanInfo:
        """The parameters, packing, keys, sizes and time the plan chose."""
        return _plan_info(self._plan)

    def plan_bytes(self) -> bytes:
        """The plan as a file: what a server gives clients that do not hold the model, so that they make keys."""
        return take_bytes(lib.veil_plan_save, self._plan)

    # ---- plaintext ----

    def predict(self, X) -> np.ndarray:
        """The original model in plaintext, float64 (its activations exact): the reference."""
        return self._run_plain(lib.veil_model_run_plain, X)

    def simulate(self, X) -> np.ndarray:
        """What the encrypted model returns, computed in plaintext: the same polynomial approximations (and, for
        exact models, the same integers and output scale), then the final operation. Accuracy without encrypting;
        the encrypted result equals it up to CKKS's rounding error (docs/ml.md)."""
        return self._run_plain(lib.veil_model_run_program, X)

    def _run_plain(self, fn, X) -> np.ndarray:
        x = as_rows(X, self.input_width, "X")
        out = np.empty((x.shape[0], self.output_width), dtype=np.float64)
        call(fn, self._h, ffi.from_buffer("double[]", out, require_writable=True), ffi.from_buffer("double[]", x),
             x.shape[0])
        return out

    # ---- the four steps ----

    def keygen(self, *, seed: Optional[bytes] = None, progress: Optional[Callable[[int, int], None]] = None) -> KeySet:
        """A key set for the plan (the data owner's; keys.eval is the server's part). seed: 32 bytes for
        reproducible keys (tests); None uses the OS CSPRNG. progress(done, total): one unit per key made."""
        return keygen_for_plan(self._plan, seed=seed, progress=progress)

    def encrypt(self, X, keys: KeySet, *, seed: Optional[bytes] = None) -> Ciphertexts:
        """numpy (n, input_width) under the data owner's keys. Refuses values outside the inputs' range the plan
        bounded the circuit from, and inputs that drive an approximated activation outside its fitted range."""
        if not isinstance(keys, KeySet):
            raise TypeError("encrypt takes the data owner's KeySet (keys.eval cannot encrypt for this model)")
        if keys.input_width != self.input_width:
            from ._errors import MismatchError
            raise MismatchError(f"the keys were made for a model of {keys.input_width} features; this one reads "
                                f"{self.input_width}")
        x = as_rows(X, self.input_width, "X")
        excess = ffi.new("double *")
        call(lib.veil_model_range_excess, self._h, ffi.from_buffer("double[]", x), x.shape[0], excess)
        if excess[0] > 0:
            from ._errors import ArgumentError
            raise ArgumentError(f"some inputs drive an approximated activation up to {excess[0]:g} outside the range "
                                "its polynomial was fitted on: the results would not be the model's (compile with "
                                "calibrate= data that covers them, or a wider range=)")
        return keys.encrypt(x, seed=seed)

    def run(self, ct: Ciphertexts, eval_keys: Union[EvalKeys, KeySet], *, threads: Optional[int] = None,
            progress: Optional[Callable[[int, int], None]] = None) -> Ciphertexts:
        """The server's step: the model on the ciphertexts with the evaluation keys only. The evaluator (the
        latency packing's encoded diagonals) is kept for the next call with the same keys."""
        if isinstance(eval_keys, KeySet):
            eval_keys = eval_keys.eval
        if not isinstance(eval_keys, EvalKeys):
            raise TypeError(f"run takes evaluation keys (keys.eval), not {type(eval_keys).__name__}")
        ev = self._evaluator(eval_keys, threads)
        h_in = ct._handle_for(eval_keys)
        report = progress_callback(progress)
        h = new_handle("veil_ciphertexts", lambda out: call(lib.veil_evaluator_run, ev, out, h_in, report, ffi.NULL),
                       lib.veil_ciphertexts_free, eval_keys._h)
        return Ciphertexts._bound(h, eval_keys._context, eval_keys._h)

    def decrypt(self, ct: Ciphertexts, keys: KeySet, *, argmax: bool = False, integers: bool = False,
                flood: bool = False) -> np.ndarray:
        """numpy (n, output_width), the final Sigmoid/Softmax applied. argmax: the classes (n,): the largest
        output's index (for one output ending in a Sigmoid: 1 above 0.5), mapped to the labels of a scikit-learn
        classifier (its classes_). integers: exact models' integers before the output scale.
        flood: noise flooding, for results others will see (KeySet.decrypt)."""
        if not isinstance(keys, KeySet):
            raise TypeError("decrypt takes the data owner's KeySet")
        if integers:
            return keys.decrypt_integers(ct)
        y = keys.decrypt(ct, flood=flood)
        if not argmax:
            return y
        if self.classes_ is not None and y.shape[1] == 1 and self.final_op is None:
            idx = (y[:, 0] > 0).astype(np.int64)  # a binary classifier's decision function, as scikit-learn's predict
        else:
            idx = classes(y, self.final_op)
        return self.classes_[idx] if self.classes_ is not None else idx

    def _evaluator(self, eval_keys: EvalKeys, threads: Optional[int]):
        threads = check_threads(threads) or int(lib.veil_threads_default())
        key = (id(eval_keys), threads)
        with self._lock:
            entry = self._evaluators.get(key)
            if entry is not None and entry[0] is eval_keys:
                return entry[1]
            ev = new_handle("veil_evaluator", lambda out: call(lib.veil_evaluator_new, out, self._h, eval_keys._h,
                                                               threads),
                            lib.veil_evaluator_free, self._h, eval_keys._h)
            if len(self._evaluators) >= 4:  # a few key sets at a time; the oldest evaluator goes
                self._evaluators.pop(next(iter(self._evaluators)))
            self._evaluators[key] = (eval_keys, ev)
            return ev

    def __reduce__(self):
        """Pickled as its ONNX bytes and compile options: unpickling compiles it again (same plan, same keys)."""
        return (_recompile, (self.onnx, self.name, self._options, self.classes_))

    def __repr__(self) -> str:
        return (f"<veil.Model {self.name}: {self.input_width} -> {self.output_width}, {self.scheme} "
                f"{self.plan().packing}>")


def check_threads(threads) -> int:
    """A thread count: None or 0 for the default, else an integer in [1, 4096] (as VEIL_THREADS)."""
    if threads is None:
        return 0
    t = _integer(threads, "threads")
    if not 0 <= t <= 4096:
        raise ValueError(f"threads is {threads}: between 1 and 4096 (0 or None: the default)")
    return t


def _integer(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    return int(value)


def classes(y: np.ndarray, final_op: Optional[str]) -> np.ndarray:
    """The class of each row: the largest output's index; for one output, 1 when its final Sigmoid is above 0.5."""
    if y.shape[1] == 1:
        if final_op == "argmax":
            return y[:, 0].astype(np.int64)
        if final_op != "sigmoid":
            raise ValueError("argmax of a single output needs a model ending in a Sigmoid (a probability)")
        return (y[:, 0] > 0.5).astype(np.int64)
    return np.argmax(y, axis=1)


def keygen_for_plan(plan, *, seed: Optional[bytes] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> KeySet:
    stream = prng(seed, STREAM_KEYS)
    report = progress_callback(progress)
    sk, ek = ffi.new("veil_keyset **"), ffi.new("veil_eval_keys **")
    call(lib.veil_keyset_generate, sk, ek, plan, stream, report, ffi.NULL)
    # the two share one context, counted by the C library: either may be freed first
    ks_h = owned(sk[0], lib.veil_keyset_free)
    ek_h = owned(ek[0], lib.veil_eval_keys_free)
    context = _Context()
    return KeySet(ks_h, EvalKeys(ek_h, context), context)


def compile(model: Any, *, packing: str = "throughput", scheme: str = "ckks", batch: int = 0,
            calibrate: Any = None, range: Optional[Sequence[float]] = None, input_range: Any = None,
            degree: int = 0, security: Union[int, str, None] = 128, server_sigmoid: bool = False,
            force_approximation: bool = False, example_input: Any = None, flood_room: bool = False) -> Model:
    """Lowers a model for encrypted evaluation and plans its parameters (the options of `veil keygen`/`veil plan`).

    model: an ONNX file's path or bytes, an onnx.ModelProto, a fitted scikit-learn linear model (or Pipeline of
        scalers/PCA and one), or a torch.nn.Module with example_input (a batch of samples), exported to ONNX.
    packing: "throughput" (one sample per slot, thousands per call) or "latency" (one sample per ciphertext).
    scheme: "ckks" (approximate) or "bgv" (exact inference of a quantized integer model; needs input_range as
        two integers).
    batch: throughput samples per call (0: as many as the slots hold).
    calibrate: the data owner's records (n, features): the inputs' range (each feature's over them, widened by half
        its span), and the range of Sigmoid/Tanh/Relu approximations inside the network.
    range: (lo, hi) for those approximations instead; degree: their Chebyshev degree (0: 15).
    input_range: the inputs' range, (lo, hi) for every feature or (lo_array, hi_array) per feature; without it
        or calibrate, the widest [-R, R] the parameters guarantee. The plan bounds every value from it (or
        refuses, naming the layer); encrypt refuses inputs outside it.
    security: 128, 192 or 256 bits; "none" only for tests (never for real data).
    server_sigmoid: evaluate a final Sigmoid on the server (degree-3 polynomial).
    force_approximation: keep an approximation erring by more than a tenth of its range.
    flood_room: keys whose outputs can be decrypted with flooding (predict/decrypt flood=True, for results
        others will see; `veil keygen --model M --flood`): a 2^60 scale and one more level, a larger ring
        (docs/ml.md gives the cost). CKKS only.
    """
    if packing not in ("throughput", "latency"):
        raise ValueError(f"packing is 'throughput' or 'latency', not {packing!r}")
    if scheme not in ("ckks", "bgv"):
        raise ValueError(f"scheme is 'ckks' or 'bgv', not {scheme!r}")
    if security not in _SECURITY:
        raise ValueError(f"security is 128, 192, 256 or 'none', not {security!r}")
    if flood_room and scheme == "bgv":
        raise ValueError("flood_room: exact (bgv) outputs decrypt without error and need no flooding")
    if _integer(batch, "batch") < 0:
        raise ValueError("batch must be >= 0")
    if not 0 <= _integer(degree, "degree") <= 1024:
        raise ValueError(f"degree is {degree}: between 1 and 1024 (0: the default, 15)")
    data, name = _onnx_bytes(model, example_input)
    options = dict(packing=packing, scheme=scheme, batch=batch, calibrate=calibrate, range=range,
                   input_range=input_range, degree=degree, security=security, server_sigmoid=server_sigmoid,
                   force_approximation=force_approximation, flood_room=flood_room)
    keep = []
    opts = ffi.new("veil_model_options *")
    opts.degree = int(degree)
    opts.server_sigmoid = bool(server_sigmoid)
    opts.integer = scheme == "bgv"
    opts.force_approximation = bool(force_approximation)
    if range is not None:
        opts.have_range, (opts.range_lo, opts.range_hi) = 1, _pair(range, "range")
    if calibrate is not None:
        c = np.asarray(calibrate, dtype=np.float64)
        if c.ndim != 2 or c.shape[0] == 0:
            raise ValueError(f"calibrate must be a 2-D array (samples, features), not of shape {c.shape}")
        c = as_rows(c, c.shape[1], "calibrate")
        keep.append(c)
        opts.calibration = ffi.from_buffer("double[]", c)
        opts.calibration_rows, opts.calibration_width = c.shape
    handle = new_handle("veil_model", lambda out: call(lib.veil_model_load_onnx, out, data, len(data), opts),
                        lib.veil_model_free)
    if calibrate is not None and keep[0].shape[1] != int(lib.veil_model_input_width(handle)):
        raise ValueError(f"calibrate has {keep[0].shape[1]} features per row; the model reads "
                         f"{int(lib.veil_model_input_width(handle))}")
    req = ffi.new("veil_plan_request *")
    req.packing = lib.VEIL_PACKING_LATENCY if packing == "latency" else lib.VEIL_PACKING_THROUGHPUT
    req.batch = int(batch)
    req.security = _SECURITY[security]
    req.scheme = lib.VEIL_ML_BGV if scheme == "bgv" else lib.VEIL_ML_CKKS
    req.flood = 1 if flood_room else 0
    width = int(lib.veil_model_input_width(handle))
    _set_input_range(req, input_range, scheme, width, keep)
    plan = new_handle("veil_plan", lambda out: call(lib.veil_model_plan, out, handle, req), lib.veil_plan_free)
    return Model(handle, plan, data, name, scheme, tuple(keep), options, convert.labels_of(model))


def _recompile(onnx: bytes, name: str, options: dict, classes_=None) -> Model:
    m = compile(onnx, **options)
    m.name, m.classes_ = name, classes_
    return m


def _set_input_range(req, input_range, scheme: str, width: int, keep: list) -> None:
    if scheme == "bgv":
        if input_range is None:
            raise ValueError("scheme='bgv' needs input_range=(lo, hi), the integer range of the quantized inputs (it "
                             "bounds every output, which fixes the plaintext moduli)")
        lo, hi = _pair(input_range, "input_range")
        if int(lo) != lo or int(hi) != hi or lo > hi:
            raise ValueError(f"input_range for BGV is two integers lo <= hi, not {input_range!r}")
        req.input_lo, req.input_hi = int(lo), int(hi)
        return
    if input_range is None:
        return
    lo, hi = _pair(input_range, "input_range")
    if np.ndim(lo) == 0 and np.ndim(hi) == 0:
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(f"input_range is two finite numbers lo <= hi, not {input_range!r}")
        req.have_range, req.range_lo, req.range_hi = 1, float(lo), float(hi)
        return
    box_lo = np.ascontiguousarray(np.broadcast_to(np.asarray(lo, dtype=np.float64), (width,)))
    box_hi = np.ascontiguousarray(np.broadcast_to(np.asarray(hi, dtype=np.float64), (width,)))
    if not (np.isfinite(box_lo).all() and np.isfinite(box_hi).all() and (box_lo <= box_hi).all()):
        raise ValueError("input_range's bounds must be finite with lo <= hi for every feature")
    keep.extend([box_lo, box_hi])
    req.box_lo, req.box_hi = ffi.from_buffer("double[]", box_lo), ffi.from_buffer("double[]", box_hi)
