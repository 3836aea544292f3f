"""Key sets, evaluation keys and ciphertext sets: the objects that travel between a data owner and a server.

Each is a handle on the C library's object, and each turns into Veil's wire format (`to_bytes`, `save`) and
back (`from_bytes`, `load`), validated as every file Veil reads; pickling uses the same bytes.

A key set made by `Model.keygen` and its evaluation keys share one context in memory, so that ciphertexts
move between them without copies; objects loaded separately have a context each, and a ciphertext set is
re-read (from its bytes) under the keys it is used with. Users need not care: every call takes whatever
set it is given.
"""
from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from ._lib import call, ffi, lib, new_handle, take_bytes

PathLike = Union[str, "os.PathLike[str]"]

MAX_FILE_BYTES = 1 << 34  # as the CLI: key and ciphertext files

_PACKINGS = {0: "throughput", 1: "latency", 2: "training"}
_SCHEMES = {0: "ckks", 1: "bgv"}
_FINAL_OPS = {0: None, 1: "sigmoid", 2: "softmax", 3: "logsoftmax", 4: "argmax"}


class _Context:
    """Names the C context a key object lives in (compared by identity)."""


def _read(path: PathLike) -> bytes:
    buf = ffi.new("veil_buffer *")
    try:
        call(lib.veil_file_read, buf, os.fsencode(path), MAX_FILE_BYTES)
        return bytes(ffi.buffer(buf.data, buf.len))
    finally:
        lib.veil_buffer_free(buf)


def _write_atomic(path: PathLike, data: bytes) -> None:
    """Complete or not at all; a secret key's file gets mode 0600 (the library recognises it)."""
    call(lib.veil_file_write_atomic, os.fsencode(path), data, len(data))


def _hex(id_bytes) -> str:
    return bytes(ffi.buffer(id_bytes, 32)).hex()


class EvalKeys:
    """The server's keys: public, relinearization and exactly the plan's Galois keys. Never a secret key."""

    def __init__(self, handle, context: _Context):
        self._h = handle
        self._context = context

    @classmethod
    def from_bytes(cls, data: bytes) -> "EvalKeys":
        """Reads an evaluation-key bundle; refuses one that holds a secret key, or any other object."""
        data = bytes(data)
        h = new_handle("veil_eval_keys", lambda out: call(lib.veil_eval_keys_load, out, data, len(data)),
                       lib.veil_eval_keys_free)
        return cls(h, _Context())

    def to_bytes(self) -> bytes:
        return take_bytes(lib.veil_eval_keys_save, self._h)

    @classmethod
    def load(cls, path: PathLike) -> "EvalKeys":
        """A bundle file, or a key folder's eval/ (or the folder itself: its eval/eval.keys)."""
        path = os.fspath(path)
        for candidate in (os.path.join(path, "eval.keys"), os.path.join(path, "eval", "eval.keys")):
            if os.path.isdir(path) and os.path.isfile(candidate):
                path = candidate
                break
        return cls.from_bytes(_read(path))

    def save(self, path: PathLike) -> None:
        """Writes the bundle to a file (atomically)."""
        _write_atomic(path, self.to_bytes())

    @property
    def id(self) -> str:
        """Hex of the 32 bytes naming the key set (a hash of its public key), equal in its ciphertexts."""
        return _hex(lib.veil_eval_keys_id(self._h))

    @property
    def packing(self) -> str:
        return _PACKINGS[int(lib.veil_eval_keys_packing(self._h))]

    @property
    def scheme(self) -> str:
        return _SCHEMES[int(lib.veil_eval_keys_scheme(self._h))]

    @property
    def batch(self) -> int:
        """Samples per ciphertext (1 in the latency packing)."""
        return int(lib.veil_eval_keys_batch(self._h))

    def __reduce__(self):
        return (EvalKeys.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return f"<veil.EvalKeys {self.scheme} {self.packing} id={self.id[:16]}>"



def decrypt_options(flood: bool):
    """veil_decrypt_options for flooded decryption, or NULL (plain)."""
    return ffi.new("veil_decrypt_options *", {"flood": 1}) if flood else ffi.NULL


class KeySet:
    """The data owner's keys: the secret key, the parameters and the plan, with the evaluation keys in `eval`.

    Holds a secret: `save` writes it with mode 0600 (in a folder it makes 0700); `to_bytes` and pickling carry it too.
    """

    def __init__(self, handle, eval_keys: Optional[EvalKeys], context: _Context):
        self._h = handle
        self._eval = eval_keys
        self._context = context

    # ---- files ----

    def save(self, directory: PathLike, *, overwrite: bool = False) -> None:
        """The CLI's layout: DIR/secret.key (0600) and DIR/eval/eval.keys (the server's), each written atomically.
        An existing key set is never replaced unless overwrite=True (its ciphertexts would become undecryptable)."""
        directory = os.fspath(directory)
        secret = os.path.join(directory, "secret.key")
        if os.path.exists(secret) and not overwrite:
            raise FileExistsError(f"{directory} already holds a key set; keys are never overwritten "
                                  "(overwrite=True replaces them)")
        if self._eval is not None and not isinstance(self._eval, EvalKeys):
            raise TypeError("a key set's evaluation keys must be veil.EvalKeys")
        created = not os.path.isdir(directory)
        os.makedirs(os.path.join(directory, "eval"), mode=0o700, exist_ok=True)
        if created:
            os.chmod(directory, 0o700)
        if self._eval is not None:
            self._eval.save(os.path.join(directory, "eval", "eval.keys"))
        _write_atomic(secret, self.to_bytes())

    @classmethod
    def load(cls, directory: PathLike) -> "KeySet":
        """A folder written by save or by `veil keygen`."""
        directory = os.fspath(directory)
        eval_path = os.path.join(directory, "eval", "eval.keys")
        ev = EvalKeys.from_bytes(_read(eval_path)) if os.path.isfile(eval_path) else None
        ks = cls.from_bytes(_read(os.path.join(directory, "secret.key")), ev)
        return ks

    def to_bytes(self) -> bytes:
        """The key set's file (holds the secret key)."""
        return take_bytes(lib.veil_keyset_save, self._h)

    @classmethod
    def from_bytes(cls, data: bytes, eval_keys: Optional[EvalKeys] = None) -> "KeySet":
        data = bytes(data)
        h = new_handle("veil_keyset", lambda out: call(lib.veil_keyset_load, out, data, len(data)),
                       lib.veil_keyset_free)
        ks = cls(h, None, _Context())
        if eval_keys is not None:
            if not isinstance(eval_keys, EvalKeys):
                raise TypeError(f"eval_keys must be veil.EvalKeys (the public part), not {type(eval_keys).__name__}")
            if eval_keys.id != ks.id:
                from ._errors import MismatchError
                raise MismatchError("these evaluation keys belong to another key set")
            ks._eval = eval_keys
        return ks

    def __reduce__(self):
        return (_keyset_from_state, (self.to_bytes(), self._eval.to_bytes() if self._eval is not None else None))

    # ---- what it is ----

    @property
    def eval(self) -> EvalKeys:
        """The public part, for the server."""
        if self._eval is None:
            raise ValueError("this key set was loaded without its evaluation keys")
        return self._eval

    @property
    def id(self) -> str:
        return _hex(lib.veil_keyset_id(self._h))

    @property
    def packing(self) -> str:
        return _PACKINGS[int(lib.veil_keyset_packing(self._h))]

    @property
    def scheme(self) -> str:
        return _SCHEMES[int(lib.veil_keyset_scheme(self._h))]

    @property
    def batch(self) -> int:
        return int(lib.veil_keyset_batch(self._h))

    @property
    def input_width(self) -> int:
        return int(lib.veil_keyset_input_width(self._h))

    @property
    def output_width(self) -> int:
        return int(lib.veil_keyset_output_width(self._h))

    @property
    def final_op(self) -> Optional[str]:
        """The model's final operation, applied at decryption: None, 'sigmoid', 'softmax', 'logsoftmax', 'argmax'."""
        return _FINAL_OPS[int(lib.veil_keyset_final_op(self._h))]

    def input_range(self):
        """CKKS inference keys: (lo, hi, output_bound), each input's range that encryption enforces and the
        outputs' worst-case |value| beyond which decryption refuses; None for other keys."""
        lo, hi = ffi.new("double **"), ffi.new("double **")
        bound = ffi.new("double *")
        width = lib.veil_keyset_input_range(self._h, lo, hi, bound)
        if width == 0:
            return None
        return (np.frombuffer(ffi.buffer(lo[0], 8 * width), dtype=np.float64).copy(),
                np.frombuffer(ffi.buffer(hi[0], 8 * width), dtype=np.float64).copy(), float(bound[0]))

    # ---- the data owner's two steps ----

    def encrypt(self, X, *, seed: Optional[bytes] = None) -> "Ciphertexts":
        """Rows of features (numpy (n, input_width)) into a ciphertext set, with the secret key."""
        from ._lib import STREAM_ENCRYPT, prng
        x = as_rows(X, self.input_width, "X")
        stream = prng(seed, STREAM_ENCRYPT)
        h = new_handle("veil_ciphertexts",
                       lambda out: call(lib.veil_ciphertexts_encrypt, out, self._h, ffi.from_buffer("double[]", x),
                                        x.shape[0], stream),
                       lib.veil_ciphertexts_free, self._h)
        return Ciphertexts._bound(h, self._context, self._h)

    def decrypt(self, ct: "Ciphertexts", *, raw: bool = False, flood: bool = False) -> np.ndarray:
        """numpy (n, output_width): the model's outputs with its final operation applied (raw=True: before it,
        (n, the program's width)). Refuses results beyond the bound the plan guarantees. flood=True: noise
        flooding for results others will see (veil_decrypt_options, SECURITY.md); refused where it cannot fit."""
        h = ct._handle_for(self)
        rows, width = int(lib.veil_ciphertexts_rows(h)), self.output_width
        raw_width = int(lib.veil_ciphertexts_width(h))
        out = np.empty((rows, width), dtype=np.float64)
        raw_out = np.empty((rows, raw_width), dtype=np.float64)
        call(lib.veil_ciphertexts_decrypt_ex, ffi.from_buffer("double[]", out, require_writable=True),
             ffi.from_buffer("double[]", raw_out, require_writable=True), self._h, h, decrypt_options(flood))
        return raw_out if raw else out

    def decrypt_integers(self, ct: "Ciphertexts") -> np.ndarray:
        """Exact inference (BGV): the integers the server computed, before the output scale and final operation."""
        h = ct._handle_for(self)
        rows, width = int(lib.veil_ciphertexts_rows(h)), int(lib.veil_ciphertexts_width(h))
        out = np.empty((rows, width), dtype=np.int64)
        call(lib.veil_ciphertexts_decrypt_integers, ffi.from_buffer("int64_t[]", out, require_writable=True),
             self._h, h)
        return out

    def __repr__(self) -> str:
        return f"<veil.KeySet {self.scheme} {self.packing} id={self.id[:16]} (secret)>"


def _keyset_from_state(data: bytes, eval_data: Optional[bytes]) -> KeySet:
    return KeySet.from_bytes(data, EvalKeys.from_bytes(eval_data) if eval_data is not None else None)


class Ciphertexts:
    """A set of encrypted rows (inputs, or a model's encrypted outputs).

    `to_bytes()` / `Ciphertexts.from_bytes(data)` carry it; a set read from bytes is checked against the keys
    it is used with (it must belong to them: the key set's id is in it).
    """

    def __init__(self, data: Optional[bytes] = None):
        self._data = data
        self._bound_to = None  # (C handle, the _Context it lives in), replaced whole

    @property
    def _h(self):
        return self._bound_to[0] if self._bound_to is not None else None

    @classmethod
    def _bound(cls, handle, context: _Context, keys_handle) -> "Ciphertexts":
        ct = cls()
        ct._bound_to = (handle, context)
        return ct

    @classmethod
    def from_bytes(cls, data: bytes, keys: Union[KeySet, EvalKeys, None] = None) -> "Ciphertexts":
        """A saved set; with keys, it is read and checked against them at once (else at its first use)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("Ciphertexts.from_bytes takes the bytes of a saved ciphertext set")
        ct = cls(bytes(data))
        if keys is not None:
            ct._handle_for(keys)
        return ct

    def to_bytes(self) -> bytes:
        if self._data is None:
            self._data = take_bytes(lib.veil_ciphertexts_save, self._bound_to[0])
        return self._data

    def save(self, path: PathLike) -> None:
        _write_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: PathLike, keys: Union[KeySet, EvalKeys, None] = None) -> "Ciphertexts":
        return cls.from_bytes(_read(path), keys)

    def _handle_for(self, keys: Union[KeySet, EvalKeys]):
        """The C set in the context of `keys`: this one, or read again from its bytes under them."""
        if not isinstance(keys, (KeySet, EvalKeys)):
            raise TypeError(f"expected a veil.KeySet or veil.EvalKeys, not {type(keys).__name__}")
        bound = self._bound_to
        if bound is not None and bound[1] is keys._context:
            return bound[0]
        data = self.to_bytes()
        ks = keys._h if isinstance(keys, KeySet) else ffi.NULL
        ek = keys._h if isinstance(keys, EvalKeys) else ffi.NULL
        h = new_handle("veil_ciphertexts", lambda out: call(lib.veil_ciphertexts_load, out, ks, ek, data, len(data)),
                       lib.veil_ciphertexts_free, keys._h)
        self._bound_to = (h, keys._context)
        return h

    @property
    def rows(self) -> int:
        """Rows (samples) in the set; a set read from bytes must have been used or given keys first."""
        if self._h is None:
            raise ValueError("this set was read from bytes without keys: use it with keys first")
        return int(lib.veil_ciphertexts_rows(self._h))

    def __len__(self) -> int:
        return self.rows

    @property
    def nbytes(self) -> int:
        """Its size in the wire format."""
        return len(self.to_bytes())

    def __reduce__(self):
        return (Ciphertexts.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        what = f"{self.rows} rows" if self._h is not None else f"unread, {len(self._data)} bytes"
        return f"<veil.Ciphertexts {what}>"


def as_rows(X, width: int, what: str) -> np.ndarray:
    """X as a C-contiguous float64 array (n, width), every value finite; clear errors otherwise."""
    raw = np.asarray(X)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"{what} must hold real numbers, not {raw.dtype} values")
    x = raw.astype(np.float64, copy=False)
    if x.ndim == 1 and width == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (samples, {width} features), not of shape {x.shape} "
                         "(one sample: X.reshape(1, -1))")
    if x.shape[1] != width:
        raise ValueError(f"{what} has {x.shape[1]} features per row; the model reads {width}")
    if x.shape[0] == 0:
        raise ValueError(f"{what} has no rows")
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"{what}[{r}, {c}] is {x[r, c]}: every value must be a finite number")
    return np.ascontiguousarray(x)
