"""Veil: privacy-preserving machine learning with fully homomorphic encryption.

The data owner encrypts, a server evaluates the model holding only public evaluation keys, and the owner
decrypts:

    import veil
    m = veil.compile("model.onnx", calibrate=X_train)   # or a scikit-learn model, or a torch.nn.Module
    keys = m.keygen()                 # keys.save(dir) / veil.KeySet.load(dir); keys.eval: the public part
    ct = m.encrypt(X, keys)           # ct.to_bytes() / veil.Ciphertexts.from_bytes(data)
    out = m.run(ct, keys.eval)        # the server's step: no secret key involved
    Y = m.decrypt(out, keys)          # numpy (n, outputs)
    m.predict(X), m.simulate(X)       # the model in plaintext; the encrypted pipeline's arithmetic in plaintext

Also: veil.Client (against `veil serve`), veil.train (encrypted training), and CKKS/BGV vectors for research.
Errors are veil.VeilError subclasses carrying the C library's status and detail. docs/python.md is the guide.
"""
from ._errors import (ArgumentError, BudgetError, FormatError, InsecureError, InternalError, MismatchError,
                      NoiseError, NotFoundError, NullError, OutOfMemoryError, RandomnessError, UnsupportedError,
                      VeilError, VeilIOError)
from ._lib import ffi as _ffi, lib as _lib
from .client import Client
from .keys import Ciphertexts, EvalKeys, KeySet
from .model import Model, PlanInfo, compile
from .vectors import Context, CKKSVector, BGVVector
from . import train

__version__ = _ffi.string(_lib.veil_version()).decode()


def threads() -> int:
    """The thread count Veil uses by default (VEIL_THREADS, or the cores this process may use)."""
    return int(_lib.veil_threads_default())


__all__ = ["compile", "Model", "PlanInfo", "KeySet", "EvalKeys", "Ciphertexts", "Client", "train", "threads",
           "Context", "CKKSVector", "BGVVector",
           "VeilError", "NullError", "ArgumentError", "OutOfMemoryError", "MismatchError", "UnsupportedError",
           "RandomnessError", "NotFoundError", "InternalError", "InsecureError", "FormatError", "VeilIOError",
           "NoiseError", "BudgetError"]
