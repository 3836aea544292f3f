"""The low-level API: CKKS and BGV vectors for researchers, with the keys made and the bookkeeping done.

    ctx = veil.Context.ckks(depth=4)                  # or Context.ckks("ckks-n8192-d2"), Context.bgv(depth=2)
    x = veil.CKKSVector(ctx, [1.0, 2.0, 3.0])         # encrypted (the secret key's encryption)
    y = (x * x + 0.5 * x).sum()                       # relinearized and rescaled after every product
    y.decrypt()                                       # array([15.])
    server = ctx.public()                             # the same keys without the secret: computes, cannot decrypt

Layout. A vector of `size` values lives in the first `size` slots of a period of `width` slots (a power of two
at least `size`), zeros after them, and that period is repeated over all the ciphertext's slots (CKKS: N/2 of
them; BGV: both rows of N/2). Slot rotations therefore act on the period cyclically, sums need log2(width)
rotations, and a matrix product is a linear transform in diagonal form over one period. Rotating a vector
whose size is not a power of two masks its two halves (one plaintext product: one level for CKKS).

Rotation keys: by default the powers of two in both directions (veil_rotation_key_set); any rotation is then
composed from them (the fewest keys, found by a breadth-first search over the period). A list of steps makes
exactly the keys veil_rotation_key_set chooses for it.

Bytes: a context and a vector each travel as one Veil set (veil_set_save: a digest over every byte, each object
with its own header and digest, validated by the C loaders), with a small metadata block this module checks.
A vector names its keys (a hash of the public key): it is read only under a context of the same keys.
"""
from __future__ import annotations

import hashlib
import math
import struct
from collections import deque
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._errors import ArgumentError, FormatError, MismatchError
from ._lib import STREAM_ENCRYPT, STREAM_KEYS, call, ffi, lib, new_handle, prng, take_bytes

__all__ = ["Context", "CKKSVector", "BGVVector"]

_SECURITY = {128: 0, 192: 1, 256: 2, "none": 3}
_SECURITY_NAMES = {0: 128, 1: 192, 2: 256, 3: "none"}
_CKKS, _BGV = 0, 1
_SCHEMES = {_CKKS: "ckks", _BGV: "bgv"}

_OBJ_PARAMS, _OBJ_SECRET, _OBJ_PUBLIC, _OBJ_SWITCH = 1, 2, 3, 4
_OBJ_CKKS_CT, _OBJ_BGV_CT = 6, 8

_FORMAT = 1
_CTX_MAGIC = b"veil.py.context\0"
_CTX_META = struct.Struct("<16sHBBBxxxI")  # magic, format, scheme, secret, scale bits, galois keys
_VEC_MAGIC = b"veil.py.vector\0\0"
_VEC_META = struct.Struct("<16sHBxII32s")  # magic, format, scheme, size, width, key id
_MAX_GALOIS = 256

Scalar = Union[int, float, np.integer, np.floating]


def _is_pow2(x: int) -> bool:
    return x >= 1 and (x & (x - 1)) == 0


def _pow2_at_least(x: int) -> int:
    return 1 if x <= 1 else 1 << (x - 1).bit_length()


def _security_code(security) -> int:
    if security not in _SECURITY:
        raise ValueError(f"security is 128, 192, 256 or 'none' (tests only), not {security!r}")
    return _SECURITY[security]


def _bytes_arg(data, what: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} takes bytes (from to_bytes), not {type(data).__name__}")
    return bytes(data)


class _Set:
    """A Veil set opened (veil_set_open) from bytes held alive here; anything else than a set is a FormatError."""

    def __init__(self, data: bytes):
        self.data = data
        view = ffi.new("veil_set_contents *")
        buf = ffi.from_buffer("uint8_t[]", data)
        try:
            call(lib.veil_set_open, view, buf, len(data))
        except MismatchError as e:  # a valid object that is not a set: foreign data here
            raise FormatError(f"not a Veil set: {e.detail}") from None
        try:
            self.meta = bytes(ffi.buffer(view.meta, view.meta_len)) if view.meta_len else b""
            self.items: List[Tuple[int, bytes]] = []
            for i in range(view.count):
                item = view.items[i]
                self.items.append((int(item.type), bytes(ffi.buffer(item.data, item.len))))
            self.secret = bool(view.secret)
            self.params_hash = bytes(ffi.buffer(view.params_hash, 32))
        finally:
            lib.veil_set_contents_clear(view)


def _save_set(params, meta: bytes, items: Sequence[bytes]) -> bytes:
    bufs = ffi.new("veil_buffer[]", max(1, len(items)))
    keep = []
    for i, b in enumerate(items):
        c = ffi.from_buffer(b)
        keep.append(c)
        bufs[i].data = ffi.cast("uint8_t *", c)
        bufs[i].len = len(b)
    return take_bytes(lib.veil_set_save, params, meta, len(meta), bufs, len(items))


def _params_hash(params) -> bytes:
    out = ffi.new("uint8_t[32]")
    lib.veil_params_hash(params, out)
    return bytes(out)


class _Core:
    """What a context and its public copies share: the C context, encoder and evaluation keys."""

    def __init__(self, scheme: int, params, scale_bits: int):
        self.scheme = scheme
        self.params = params
        self.scale_bits = scale_bits
        self.ctx = new_handle("veil_context", lambda o: call(lib.veil_context_new, o, params, ffi.NULL),
                              lib.veil_context_free, params)
        self.n = int(lib.veil_params_degree(params))
        self.slots = self.n // 2
        self.max_level = int(lib.veil_context_max_level(self.ctx))
        self.t = int(lib.veil_params_plain_modulus(params))
        if scheme == _CKKS:
            self.enc = new_handle("veil_ckks_encoder", lambda o: call(lib.veil_ckks_encoder_new, o, self.ctx),
                                  lib.veil_ckks_encoder_free, self.ctx)
        else:
            self.enc = new_handle("veil_bgv_encoder", lambda o: call(lib.veil_bgv_encoder_new, o, self.ctx),
                                  lib.veil_bgv_encoder_free, self.ctx)
            if not lib.veil_bgv_encoder_batching(self.enc):
                raise ArgumentError(f"t = {self.t} does not allow batching at N = {self.n} (it must be a prime "
                                    f"= 1 mod {2 * self.n}): BGV vectors need slots")
        self.pk = None
        self.pk_bytes = b""
        self.key_id = b""
        self.relin = None
        self.galois: Dict[int, object] = {}  # rotation step in [0, slots) -> its key
        self._paths: Dict[int, List[Optional[int]]] = {}
        self._step_of: Optional[Dict[int, int]] = None

    def set_public_key(self, pk, pk_bytes: bytes) -> None:
        self.pk, self.pk_bytes = pk, pk_bytes
        self.key_id = hashlib.blake2b(pk_bytes, digest_size=32).digest()

    def step_of(self, element: int) -> Optional[int]:
        """The rotation step (in [0, slots)) of a Galois element; None for one that is no rotation."""
        if self._step_of is None:
            self._step_of = {int(lib.veil_galois_element_rotation(self.ctx, s)): s for s in range(self.slots)}
        return self._step_of.get(int(element))

    def path(self, steps: int, period: int) -> List[int]:
        """The fewest keys whose rotations compose a left rotation by `steps` of period-periodic slots."""
        s = steps % period
        if s == 0:
            return []
        parents = self._paths.get(period)
        if parents is None:
            moves = sorted({k for k in self.galois if k % period})
            parents = [None] * period
            parents[0] = -1
            queue = deque([0])
            while queue:
                u = queue.popleft()
                for k in moves:
                    v = (u + k) % period
                    if parents[v] is None:
                        parents[v] = k
                        queue.append(v)
            self._paths[period] = parents
        if parents[s] is None:
            have = sorted(self.galois) or "none"
            raise ArgumentError(f"no rotation keys compose a rotation by {steps} slots (period {period}); this "
                                f"context's rotation keys: {have} (make the context with rotations='auto' or with "
                                "these steps)")
        out = []
        while s:
            k = parents[s]
            out.append(k)
            s = (s - k) % period
        return out


def _keygen(core: _Core, rotations, stream):
    ctx = core.ctx
    sk = new_handle("veil_secret_key", lambda o: call(lib.veil_secret_key_new, o, ctx, stream),
                    lib.veil_secret_key_free, ctx)
    pk = new_handle("veil_public_key", lambda o: call(lib.veil_public_key_new, o, ctx, sk, stream),
                    lib.veil_public_key_free, ctx)
    core.set_public_key(pk, take_bytes(lib.veil_public_key_save, pk, 0))
    core.relin = new_handle("veil_switch_key", lambda o: call(lib.veil_relin_key_new, o, ctx, sk, stream),
                            lib.veil_switch_key_free, ctx)
    if rotations is None:
        steps: List[int] = []
    elif isinstance(rotations, str):
        if rotations != "auto":
            raise ValueError(f"rotations is 'auto', None or a list of steps, not {rotations!r}")
        steps = []
        k = 1
        while k < core.slots:
            steps += [k, -k]
            k *= 2
    else:
        steps = [int(s) for s in rotations]
        if any(s % core.slots == 0 for s in steps):
            raise ValueError(f"rotation steps must not be multiples of the {core.slots} slots (no rotation)")
    if steps:
        cap = 4 * len(steps) + 64
        out = ffi.new("uint64_t[]", cap)
        count = ffi.new("size_t *")
        arr = ffi.new("long[]", steps)
        call(lib.veil_rotation_key_set, out, count, cap, ctx, arr, len(steps))
        for i in range(count[0]):
            element = int(out[i])
            step = core.step_of(element)
            if step is None:  # not expected from veil_rotation_key_set
                raise ArgumentError(f"Galois element {element} is no rotation")
            if step not in core.galois:
                core.galois[step] = new_handle(
                    "veil_switch_key", lambda o: call(lib.veil_galois_key_new, o, ctx, sk, element, stream),
                    lib.veil_switch_key_free, ctx)
    return sk


class Context:
    """A CKKS or BGV parameter set with its keys: the secret key (unless a public copy), the public key, the
    relinearization key and rotation keys. Made by Context.ckks, Context.bgv or Context.from_bytes.

    A context is immutable and may be shared by threads. `public()` is the same context without the secret key
    (a server's). `to_bytes()` writes the public part; `to_bytes(secret=True)` the secret key too. Pickling
    keeps whatever the context holds: a context with a secret key pickles WITH it (pickle ctx.public() to send
    it to a server).
    """

    def __init__(self, core: _Core, sk=None):
        self._core = core
        self._sk = sk

    # ---- making one ----

    @classmethod
    def ckks(cls, preset: Optional[str] = None, *, n: Optional[int] = None, depth: Optional[int] = None,
             scale_bits: int = 40, first_bits: Optional[int] = None, security: Union[int, str] = 128,
             rotations: Union[str, Sequence[int], None] = "auto", seed: Optional[bytes] = None) -> "Context":
        """A CKKS context. Either a preset name (veil.Context.presets()) or a depth: the products on the longest
        path, each costing one level (a rescale by a prime of scale_bits bits). n (the ring degree; vectors hold
        up to n/2 values) is chosen automatically at the security level, or given; first_bits (default
        scale_bits + 10) is the first prime's size: values at the last level must stay below
        2^(first_bits - scale_bits - 1) in magnitude. security: 128, 192, 256, or "none" (tests only, with n).
        rotations: "auto" (powers of two both ways, any rotation composed from them), None (no rotation keys),
        or a list of steps. seed: 32 bytes for reproducible keys (tests); None: the OS CSPRNG.
        """
        sec = _security_code(security)
        if preset is not None:
            if n is not None or depth is not None or first_bits is not None:
                raise ValueError("give a preset or n/depth/first_bits, not both")
            params = _preset(preset, "ckks")
            qc = int(lib.veil_params_q_count(params))
            scale_bits = round(math.log2(int(lib.veil_params_q(params, qc - 1)))) if qc > 1 else 40
        else:
            if depth is None:
                raise ValueError("Context.ckks needs a preset name or a depth")
            depth, scale_bits = int(depth), int(scale_bits)
            if not 20 <= scale_bits <= 60:
                raise ValueError(f"scale_bits is in [20, 60], not {scale_bits}")
            first = int(first_bits) if first_bits is not None else min(scale_bits + 10, 60)
            params = _ckks_params(depth, scale_bits, first, n, sec)
        return cls._make(_CKKS, params, scale_bits, rotations, seed)

    @classmethod
    def bgv(cls, preset: Optional[str] = None, *, n: Optional[int] = None, depth: Optional[int] = None,
            t: int = 65537, security: Union[int, str] = 128, rotations: Union[str, Sequence[int], None] = "auto",
            seed: Optional[bytes] = None) -> "Context":
        """A BGV context: exact integer arithmetic modulo t (a prime = 1 mod 2n, so that vectors have slots).
        Either a preset ("bgv-n8192", "bgv-n16384") or a depth (products on the longest path, 1..30), with n
        chosen at the security level (or at least n when given). security "none" (tests only) needs n: the primes
        of the 128-bit choice for this depth over a smaller ring. rotations and seed: as in Context.ckks."""
        sec = _security_code(security)
        if preset is not None:
            if n is not None or depth is not None:
                raise ValueError("give a preset or n/depth, not both")
            params = _preset(preset, "bgv")
        else:
            if depth is None:
                raise ValueError("Context.bgv needs a preset name or a depth")
            params = _bgv_params(int(depth), int(t), n, sec)
        return cls._make(_BGV, params, 0, rotations, seed)

    @classmethod
    def _make(cls, scheme: int, params, scale_bits: int, rotations, seed) -> "Context":
        core = _Core(scheme, params, scale_bits)
        sk = _keygen(core, rotations, prng(seed, STREAM_KEYS))
        return cls(core, sk)

    @staticmethod
    def presets() -> List[str]:
        """The parameter presets of the C library (veil_params_preset)."""
        names = lib.veil_params_preset_names()
        out, i = [], 0
        while names[i] != ffi.NULL:
            out.append(ffi.string(names[i]).decode())
            i += 1
        return out

    def public(self) -> "Context":
        """The same context without the secret key: every operation works, decrypt raises. Shares the keys in
        memory with this one, so vectors pass between the two freely."""
        return Context(self._core, None)

    # ---- what it is ----

    @property
    def scheme(self) -> str:
        """'ckks' or 'bgv'."""
        return _SCHEMES[self._core.scheme]

    @property
    def n(self) -> int:
        """The ring degree N."""
        return self._core.n

    @property
    def slots(self) -> int:
        """The most values a vector holds: N/2."""
        return self._core.slots

    @property
    def depth(self) -> int:
        """Levels above the last one (a fresh vector's level): CKKS products available."""
        return self._core.max_level

    @property
    def scale_bits(self) -> Optional[int]:
        """CKKS: log2 of the scale of fresh vectors. None for BGV."""
        return self._core.scale_bits if self._core.scheme == _CKKS else None

    @property
    def t(self) -> Optional[int]:
        """BGV: the plaintext modulus. None for CKKS."""
        return self._core.t if self._core.scheme == _BGV else None

    @property
    def security(self) -> Union[int, str]:
        """128, 192, 256 or 'none'."""
        return _SECURITY_NAMES.get(int(lib.veil_params_security(self._core.params)), "none")

    @property
    def has_secret_key(self) -> bool:
        """Whether this context can decrypt."""
        return self._sk is not None

    @property
    def rotation_steps(self) -> List[int]:
        """The rotations (left, in [0, slots)) that have a key; any other is composed from them."""
        return sorted(self._core.galois)

    @property
    def key_id(self) -> str:
        """Hex of a hash of the public key: equal for every copy of these keys, and in their vectors' bytes."""
        return self._core.key_id.hex()

    def __repr__(self) -> str:
        extra = f"scale 2^{self.scale_bits}" if self.scheme == "ckks" else f"t = {self.t}"
        return (f"<veil.Context {self.scheme} N={self.n} depth {self.depth} {extra}, "
                f"{len(self._core.galois)} rotation keys, {'secret' if self._sk is not None else 'public'}>")

    def _need_secret(self, what: str):
        if self._sk is None:
            raise ArgumentError(f"{what} needs the secret key, and this is a public context (ctx.public(), or read "
                                "from bytes without the secret): use the data owner's context")
        return self._sk

    # ---- bytes ----

    def to_bytes(self, secret: bool = False) -> bytes:
        """The context as one Veil set: parameters, public key, relinearization and rotation keys, and with
        secret=True the secret key (keep such bytes as you keep the key)."""
        core = self._core
        if secret:
            self._need_secret("to_bytes(secret=True)")
        items = [take_bytes(lib.veil_params_save, core.params, 0), core.pk_bytes,
                 take_bytes(lib.veil_switch_key_save, core.relin, 0)]
        if secret:
            items.append(take_bytes(lib.veil_secret_key_save, self._sk, 0))
        for step in sorted(core.galois):
            items.append(take_bytes(lib.veil_switch_key_save, core.galois[step], 0))
        meta = _CTX_META.pack(_CTX_MAGIC, _FORMAT, core.scheme, 1 if secret else 0, core.scale_bits,
                              len(core.galois))
        return _save_set(core.params, meta, items)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Context":
        """A context from to_bytes (with its secret key when it was written with it). Every byte is checked:
        damaged, truncated or foreign data raises veil.FormatError."""
        s = _Set(_bytes_arg(data, "Context.from_bytes"))
        if len(s.meta) != _CTX_META.size:
            raise FormatError("not a veil.Context (its metadata is missing or of another kind)")
        magic, fmt, scheme, secret, scale_bits, n_galois = _CTX_META.unpack(s.meta)
        if magic != _CTX_MAGIC:
            raise FormatError("not a veil.Context (another kind of Veil set)")
        if fmt != _FORMAT or scheme not in _SCHEMES or secret not in (0, 1) or n_galois > _MAX_GALOIS:
            raise FormatError("veil.Context: a metadata field is out of range (or a newer format)")
        if scheme == _CKKS and not 20 <= scale_bits <= 60 or scheme == _BGV and scale_bits != 0:
            raise FormatError("veil.Context: a metadata field is out of range")
        expect = [_OBJ_PARAMS, _OBJ_PUBLIC, _OBJ_SWITCH] + ([_OBJ_SECRET] if secret else []) + [_OBJ_SWITCH] * n_galois
        if [t for t, _ in s.items] != expect or bool(secret) != s.secret:
            raise FormatError("veil.Context: the set does not hold the objects its metadata declares")
        items = [b for _, b in s.items]
        pbytes = items[0]
        params = new_handle("veil_params", lambda o: call(lib.veil_params_load, o, pbytes, len(pbytes)),
                            lib.veil_params_free)
        if _params_hash(params) != s.params_hash:
            raise FormatError("veil.Context: the parameters are not those the set names")
        if (int(lib.veil_params_plain_modulus(params)) != 0) != (scheme == _BGV):
            raise FormatError("veil.Context: the parameter set is not of the scheme the metadata names")
        core = _Core(scheme, params, scale_bits)
        ctx = core.ctx

        def load(fn, ctype, free, b):
            return new_handle(ctype, lambda o: call(fn, o, ctx, b, len(b)), free, ctx)

        core.set_public_key(load(lib.veil_public_key_load, "veil_public_key", lib.veil_public_key_free, items[1]),
                            items[1])
        core.relin = load(lib.veil_switch_key_load, "veil_switch_key", lib.veil_switch_key_free, items[2])
        if int(lib.veil_switch_key_galois_element(core.relin)) != 0:
            raise FormatError("veil.Context: the relinearization key is a Galois key")
        sk = None
        rest = items[3:]
        if secret:
            sk = load(lib.veil_secret_key_load, "veil_secret_key", lib.veil_secret_key_free, rest[0])
            rest = rest[1:]
        for b in rest:
            key = load(lib.veil_switch_key_load, "veil_switch_key", lib.veil_switch_key_free, b)
            step = core.step_of(int(lib.veil_switch_key_galois_element(key)))
            if step is None or step == 0 or step in core.galois:
                raise FormatError("veil.Context: a rotation key that is no rotation, or twice the same")
            core.galois[step] = key
        return cls(core, sk)

    def __reduce__(self):
        return (Context.from_bytes, (self.to_bytes(secret=self._sk is not None),))


def _preset(name: str, scheme: str):
    if not isinstance(name, str):
        raise TypeError(f"a preset is a name such as 'ckks-n8192-d2', not {type(name).__name__}")
    params = new_handle("veil_params", lambda o: call(lib.veil_params_preset, o, name.encode()), lib.veil_params_free)
    if (int(lib.veil_params_plain_modulus(params)) != 0) != (scheme == "bgv"):
        raise ValueError(f"{name!r} is not a {scheme.upper()} preset (presets: {Context.presets()})")
    return params


def _spec_params(n: int, q_bits: Sequence[int], p_bits: Sequence[int], dnum: int, sec: int, t: int):
    qb = ffi.new("unsigned[]", list(q_bits))
    pb = ffi.new("unsigned[]", list(p_bits))
    spec = ffi.new("veil_params_spec *", dict(n=n, q_count=len(q_bits), q=ffi.NULL, q_bits=qb, p_count=len(p_bits),
                                              p=ffi.NULL, p_bits=pb, dnum=dnum, security=sec, plain_modulus=t))
    return new_handle("veil_params", lambda o: call(lib.veil_params_new, o, spec), lib.veil_params_free)


def _check_n(n) -> int:
    n = int(n)
    if not _is_pow2(n) or not 1024 <= n <= 131072:
        raise ValueError(f"n is a power of two in [1024, 131072], not {n}")
    return n


def _ckks_params(depth: int, scale_bits: int, first_bits: int, n: Optional[int], sec: int):
    if depth < 0:
        raise ValueError(f"depth is at least 0, not {depth}")
    if n is not None:
        n = _check_n(n)
    if sec != _SECURITY["none"]:
        req = ffi.new("veil_params_request *", dict(depth=depth, scale_bits=scale_bits, first_bits=first_bits,
                                                   slots=(n // 2) if n else 0, security=sec))
        params = new_handle("veil_params", lambda o: call(lib.veil_params_select, o, req), lib.veil_params_free)
        if n is None or int(lib.veil_params_degree(params)) == n:
            return params
    elif n is None:
        raise ValueError("security='none' (tests only) needs an explicit n")
    # a given degree: one digit per prime and one special prime larger than any (the C library checks security)
    return _spec_params(n, [first_bits] + [scale_bits] * depth, [60], depth + 1, sec, 0)


def _bgv_params(depth: int, t: int, n: Optional[int], sec: int):
    if n is not None:
        n = _check_n(n)
    none = sec == _SECURITY["none"]
    if none and n is None:
        raise ValueError("security='none' (tests only) needs an explicit n")
    req = ffi.new("veil_bgv_request *", dict(depth=depth, t=t, batching=True, min_n=n or 0,
                                            security=_SECURITY[128] if none else sec))
    params = new_handle("veil_params", lambda o: call(lib.veil_bgv_params_select, o, req), lib.veil_params_free)
    if not none:
        return params
    # the prime sizes of the 128-bit choice for a ring of at least n, over the ring of n (its noise grows no
    # faster), unchecked
    q = [int(lib.veil_params_q(params, i)).bit_length() for i in range(lib.veil_params_q_count(params))]
    p = [int(lib.veil_params_p(params, i)).bit_length() for i in range(lib.veil_params_p_count(params))]
    return _spec_params(n, q, p, int(lib.veil_params_dnum(params)), sec, t)


# ---- vectors -------------------------------------------------------------------------------------------


class _Vector:
    """What CKKS and BGV vectors share: the layout, rotations, sums, matrix products, bytes."""

    __array_ufunc__ = None  # numpy arrays on the left defer to the vector's reflected operators
    _scheme = -1
    _ct_type = ""
    _obj_type = 0
    _dtype: type = np.float64

    # the scheme's primitives, defined by the subclasses
    def _encrypt(self, values: np.ndarray, width: int, stream): raise NotImplementedError
    def _decrypt_values(self, core: _Core, sk, ct, size: int) -> np.ndarray: raise NotImplementedError
    def _c_add(self, a, b): raise NotImplementedError
    def _c_sub(self, a, b): raise NotImplementedError
    def _c_neg(self, a): raise NotImplementedError
    def _c_mul(self, a, b): raise NotImplementedError
    def _c_rot(self, a, step: int): raise NotImplementedError
    def _c_add_plain(self, a, values: np.ndarray, width: int): raise NotImplementedError
    def _c_mul_plain(self, a, values: np.ndarray, width: int): raise NotImplementedError
    def _c_mul_scalar(self, a, k): raise NotImplementedError
    def _c_add_scalar_all(self, a, k): raise NotImplementedError
    def _c_plain_products(self, pairs, width: int, finish: bool): raise NotImplementedError
    def _c_finish(self, a): return a
    def _coerce_scalar(self, k): raise NotImplementedError
    def _coerce_array(self, values) -> np.ndarray: raise NotImplementedError

    def __init__(self, context: Context, values, *, seed: Optional[bytes] = None):
        if not isinstance(context, Context):
            raise TypeError(f"the first argument is a veil.Context, not {type(context).__name__}")
        if context._core.scheme != self._scheme:
            raise TypeError(f"{type(self).__name__} needs a {_SCHEMES[self._scheme].upper()} context, "
                            f"not a {context.scheme.upper()} one")
        self._context = context
        v = self._coerce_array(values)
        if v.ndim != 1 or v.size == 0:
            raise ValueError(f"a vector is a non-empty 1-D sequence of values, not of shape {v.shape}")
        if v.size > context.slots:
            raise ValueError(f"{v.size} values: this context's vectors hold at most {context.slots} (N/2)")
        self._size = int(v.size)
        self._width = _pow2_at_least(self._size)
        self._h = self._encrypt(v, self._width, prng(seed, STREAM_ENCRYPT))

    @classmethod
    def _wrap(cls, context: Context, handle, size: int, width: int):
        v = cls.__new__(cls)
        v._context, v._h, v._size, v._width = context, handle, size, width
        return v

    def _new(self, handle, size: Optional[int] = None, width: Optional[int] = None):
        return type(self)._wrap(self._context, handle, self._size if size is None else size,
                                self._width if width is None else width)

    @property
    def _core(self) -> _Core:
        return self._context._core

    def _op(self, fn, *args):
        """fn(ctx, out, *args) of the scheme into a new ciphertext."""
        out = self._new_ct()
        call(fn, self._core.ctx, out, *args)
        return out

    def _new_ct(self):
        core = self._core
        fn = lib.veil_ckks_ciphertext_new if self._scheme == _CKKS else lib.veil_bgv_ciphertext_new
        free = lib.veil_ckks_ciphertext_free if self._scheme == _CKKS else lib.veil_bgv_ciphertext_free
        return new_handle(self._ct_type, lambda o: call(fn, o, core.ctx), free, core.ctx)

    # ---- what it is ----

    @property
    def context(self) -> Context:
        """The context this vector was made or read under."""
        return self._context

    @property
    def size(self) -> int:
        """The number of values."""
        return self._size

    def __len__(self) -> int:
        return self._size

    @property
    def level(self) -> int:
        """The ciphertext's level: q_0..q_level remain (CKKS: the products left)."""
        raise NotImplementedError

    def decrypt(self, context: Optional[Context] = None) -> np.ndarray:
        """The values (numpy, length size) with the secret key of this vector's context, or of `context` (the
        data owner's, when this vector was computed under a public copy or read from bytes)."""
        ctx = self._context if context is None else context
        sk = ctx._need_secret("decrypt")
        h = self._handle_in(ctx)
        return self._decrypt_values(ctx._core, sk, h, self._size)

    def with_context(self, context: Context) -> "_Vector":
        """This vector under another context of the same keys (ctx.public(), or one read from bytes)."""
        return type(self)._wrap(context, self._handle_in(context), self._size, self._width)

    def _handle_in(self, context: Context):
        if not isinstance(context, Context):
            raise TypeError(f"expected a veil.Context, not {type(context).__name__}")
        if context._core is self._core:
            return self._h
        if context._core.key_id != self._core.key_id or context._core.scheme != self._scheme:
            raise MismatchError("this vector belongs to another context (other keys): vectors of different "
                                "contexts do not mix")
        return type(self).from_bytes(context, self.to_bytes())._h

    # ---- operands ----

    def _other(self, other) -> "_Vector":
        """Another vector as one of this context, at this vector's width."""
        if not isinstance(other, _Vector):
            raise TypeError("not a vector")
        if type(other) is not type(self):
            raise TypeError(f"a {type(self).__name__} does not combine with a {type(other).__name__}")
        if other._size != self._size:
            raise ValueError(f"vectors of sizes {self._size} and {other._size} do not combine")
        if other._core is not self._core:
            other = type(self)._wrap(self._context, other._handle_in(self._context), other._size, other._width)
        return other

    def _aligned(self, other: "_Vector") -> Tuple[object, object, int]:
        """Both handles at the narrower width of the two (the wider folded: sums of rotations, no level)."""
        w = min(self._width, other._width)
        return self._narrow(w)._h, other._narrow(w)._h, w

    def _narrow(self, w: int) -> "_Vector":
        if w == self._width:
            return self
        h, step = self._h, w
        while step < self._width:
            h = self._c_add(h, self._rot_h(h, step, self._width))
            step *= 2
        return self._new(h, width=w)

    def _rot_h(self, h, steps: int, period: int):
        for k in self._core.path(steps, period):
            h = self._c_rot(h, k)
        return h

    def _binary(self, other, op: str):
        if isinstance(other, _Vector):
            o = self._other(other)
            a, b, w = self._aligned(o)
            if op == "add":
                return self._new(self._c_add(a, b), width=w)
            if op == "sub":
                return self._new(self._c_sub(a, b), width=w)
            if op == "rsub":
                return self._new(self._c_sub(b, a), width=w)
            return self._new(self._c_mul(a, b), width=w)
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            k = self._coerce_scalar(other)
            if op == "mul":
                return self._new(self._c_mul_scalar(self._h, k))
            if op == "rsub":
                return (-self)._binary(other, "add")
            if op == "sub":
                k = -k
            if self._size == self._width:
                return self._new(self._c_add_scalar_all(self._h, k))
            return self._new(self._c_add_plain(self._h, self._padded(np.full(self._size, k)), self._width))
        if isinstance(other, (list, tuple, np.ndarray)):
            v = self._coerce_array(other)
            if v.shape != (self._size,):
                raise ValueError(f"a plain operand of shape {v.shape} does not combine with a vector of size {self._size}")
            if op == "mul":
                return self._new(self._c_mul_plain(self._h, self._padded(v), self._width))
            if op == "rsub":
                return (-self)._binary(v, "add")
            if op == "sub":
                v = -v
            return self._new(self._c_add_plain(self._h, self._padded(v), self._width))
        return NotImplemented

    def _padded(self, v: np.ndarray, width: Optional[int] = None) -> np.ndarray:
        out = np.zeros(self._width if width is None else width, dtype=v.dtype)
        out[:v.size] = v
        return out

    def __add__(self, other) -> "_Vector":
        """self + other: a vector of the same size, a number, or a plain array of the same size."""
        return self._binary(other, "add")

    def __radd__(self, other) -> "_Vector":
        return self._binary(other, "add")

    def __sub__(self, other) -> "_Vector":
        """self - other, as +."""
        return self._binary(other, "sub")

    def __rsub__(self, other) -> "_Vector":
        return self._binary(other, "rsub")

    def __mul__(self, other) -> "_Vector":
        """self * other, elementwise (CKKS: rescaled, one level; by an integer: none)."""
        return self._binary(other, "mul")

    def __rmul__(self, other) -> "_Vector":
        return self._binary(other, "mul")

    def __neg__(self) -> "_Vector":
        return self._new(self._c_neg(self._h))

    def __pos__(self) -> "_Vector":
        return self

    def square(self) -> "_Vector":
        """self * self (CKKS: relinearized and rescaled, one level)."""
        return self._new(self._c_mul(self._h, self._h))

    def __pow__(self, k: int) -> "_Vector":
        """self ** k for an integer k >= 1, by repeated squaring (ceil(log2 k) levels for CKKS)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"a vector's power is an integer >= 1, not {k!r}")
        return self._power(int(k))

    def _power(self, k: int):
        result, base = None, self
        while True:
            if k & 1:
                result = base if result is None else result * base
            k >>= 1
            if not k:
                return result
            base = base.square()

    # ---- rotations, sums, products ----

    def rotate(self, steps: int) -> "_Vector":
        """The values rotated left by `steps` (negative: right), cyclically over the vector's size: the result
        holds numpy.roll(values, -steps). Composed from the context's rotation keys; a size that is not a power
        of two also masks the two parts (one plaintext product: one level for CKKS)."""
        steps = int(steps)
        s = steps % self._size
        if s == 0:
            return self
        if self._size == self._width:
            return self._new(self._rot_h(self._h, s, self._width))
        lo = np.zeros(self._width, dtype=self._dtype)
        hi = np.zeros(self._width, dtype=self._dtype)
        lo[:self._size - s] = 1
        hi[self._size - s:self._size] = 1
        a = self._rot_h(self._h, s, self._width)
        b = self._rot_h(self._h, s - self._size, self._width)
        return self._new(self._c_plain_products([(a, lo), (b, hi)], self._width, True))

    def __lshift__(self, steps: int) -> "_Vector":
        """rotate(steps)."""
        return self.rotate(steps)

    def __rshift__(self, steps: int) -> "_Vector":
        """rotate(-steps)."""
        return self.rotate(-steps)

    def sum(self) -> "_Vector":
        """The sum of the values, as a vector of size 1 (log2(width) rotations; no level)."""
        h, step = self._h, 1
        while step < self._width:
            h = self._c_add(h, self._rot_h(h, step, self._width))
            step *= 2
        return self._new(h, size=1, width=1)

    def dot(self, other) -> "_Vector":
        """The inner product with another vector or a plain array, as a vector of size 1: (self * other).sum()."""
        return (self * other).sum()

    def matmul(self, matrix) -> "_Vector":
        """self @ matrix for a plaintext matrix of shape (size, out): a vector of size out (out <= slots). The
        diagonal method by baby-step giant-step over one period of the slots: about 2 sqrt(period) rotations
        and one plaintext product per nonzero diagonal (CKKS: one level, one rescale at the end)."""
        m = self._coerce_array(matrix)
        if m.ndim != 2 or m.shape[0] != self._size or m.shape[1] < 1:
            raise ValueError(f"a vector of size {self._size} multiplies a matrix of shape ({self._size}, out), "
                             f"not {m.shape}")
        out = int(m.shape[1])
        if out > self._core.slots:
            raise ValueError(f"{out} outputs: this context's vectors hold at most {self._core.slots}")
        W = max(self._width, _pow2_at_least(out))
        size = self._size
        cols = np.arange(out)

        def diagonal(k: int) -> np.ndarray:
            # diagonal k of the W x W matrix A with A[o, i] = matrix[i, o] (o < out, i < size), 0 elsewhere: x is
            # W-periodic as well, and only its first `size` values may be read
            i = (cols + k) % W
            ok = i < size
            d = np.zeros(W, dtype=m.dtype)
            d[cols[ok]] = m[i[ok], cols[ok]]
            return d

        nonzero = [k for k in range(W) if diagonal(k).any()]
        b = int(lib.veil_ckks_linear_transform_baby(W))  # the least power of two with b * b >= W
        baby: Dict[int, object] = {0: self._h}
        for i in range(1, max((k % b for k in nonzero), default=0) + 1):
            baby[i] = self._rot_h(baby[i - 1], 1, W)
        # sum_j rot(sum_i rot(d_{jb+i}, -jb) * rot(x, i), jb), the giant steps by Horner's rule: rotations by b
        present = set(nonzero)
        g = None
        for j in reversed(range(-(-W // b))):
            if g is not None:
                g = self._rot_h(g, b, W)
            pairs = [(baby[i], np.roll(diagonal(j * b + i), j * b)) for i in range(b) if j * b + i in present]
            if pairs:
                inner = self._c_plain_products(pairs, W, False)
                g = inner if g is None else self._c_add(g, inner)
        if g is None:
            return self._new(self._c_mul_scalar(self._h, self._coerce_scalar(0)), size=out, width=W)
        return self._new(self._c_finish(g), size=out, width=W)

    def __matmul__(self, matrix) -> "_Vector":
        """self @ matrix: matmul."""
        return self.matmul(matrix)

    def polyval(self, coeffs: Sequence[Scalar], *args, **kwargs):
        raise NotImplementedError

    # ---- bytes ----

    def to_bytes(self) -> bytes:
        """The vector as a Veil set: its ciphertext, its size and layout, and its keys' id (no keys)."""
        core = self._core
        save = lib.veil_ckks_ciphertext_save if self._scheme == _CKKS else lib.veil_bgv_ciphertext_save
        meta = _VEC_META.pack(_VEC_MAGIC, _FORMAT, self._scheme, self._size, self._width, core.key_id)
        return _save_set(core.params, meta, [take_bytes(save, self._h, 0)])

    @classmethod
    def from_bytes(cls, context: Context, data: bytes) -> "_Vector":
        """A vector from to_bytes, under a context of the same keys (any copy: public, or read from bytes).
        Damaged, truncated or foreign bytes raise veil.FormatError; a vector of other keys veil.MismatchError."""
        if not isinstance(context, Context):
            raise TypeError(f"the first argument is a veil.Context, not {type(context).__name__}")
        s = _Set(_bytes_arg(data, f"{cls.__name__}.from_bytes"))
        if len(s.meta) != _VEC_META.size:
            raise FormatError(f"not a veil {cls.__name__} (its metadata is missing or of another kind)")
        magic, fmt, scheme, size, width, key_id = _VEC_META.unpack(s.meta)
        if magic != _VEC_MAGIC or fmt != _FORMAT:
            raise FormatError(f"not a veil {cls.__name__} (another kind of Veil set, or a newer format)")
        if scheme != cls._scheme:
            raise FormatError(f"these bytes hold a {_SCHEMES.get(scheme, '?').upper()} vector, not a {cls.__name__}")
        core = context._core
        if not (1 <= size <= width <= core.slots and _is_pow2(width)) or [t for t, _ in s.items] != [cls._obj_type]:
            raise FormatError(f"{cls.__name__}: a metadata field is out of range, or the set holds other objects")
        if s.params_hash != _params_hash(core.params) or key_id != core.key_id:
            raise MismatchError(f"this {cls.__name__} belongs to another context (other parameters or keys)")
        b = s.items[0][1]
        load = lib.veil_ckks_ciphertext_load if cls._scheme == _CKKS else lib.veil_bgv_ciphertext_load
        free = lib.veil_ckks_ciphertext_free if cls._scheme == _CKKS else lib.veil_bgv_ciphertext_free
        h = new_handle(cls._ct_type, lambda o: call(load, o, core.ctx, b, len(b)), free, core.ctx)
        return cls._wrap(context, h, size, width)

    def __reduce__(self):
        # the context travels along (pickle writes it once per dump, whatever number of vectors share it)
        return (_vector_from_state, (type(self), self._context, self.to_bytes()))

    def __repr__(self) -> str:
        return f"<veil.{type(self).__name__} size {self._size}, level {self.level}>"


def _vector_from_state(cls, context: Context, data: bytes):
    return cls.from_bytes(context, data)


class CKKSVector(_Vector):
    """An encrypted vector of up to N/2 real numbers (CKKS: approximate arithmetic).

    CKKSVector(ctx, values, seed=None) encrypts with the context's secret key when it holds one (a smaller
    ciphertext, stored in seeded form, and less noise), otherwise with the public key; seed (32 bytes) makes the
    encryption reproducible (tests), None uses the OS CSPRNG. Operations: + - * with another vector,
    a number or a plain array of the same size, unary -, square, ** k, sum, dot, rotate, matmul (@), polyval.
    Every product is relinearized and rescaled at once (one level); plain and constant products use one level
    too (except by integers: none); additions align levels and scales themselves.
    """

    _scheme = _CKKS
    _ct_type = "veil_ckks_ciphertext"
    _obj_type = _OBJ_CKKS_CT
    _dtype = np.float64

    def _coerce_array(self, values) -> np.ndarray:
        v = np.asarray(values)
        if v.dtype.kind == "c":
            raise TypeError("CKKSVector holds real values (complex values are not supported)")
        v = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(v)):
            raise ValueError("every value must be a finite number")
        return v

    def _coerce_scalar(self, k) -> float:
        k = float(k)
        if not math.isfinite(k):
            raise ValueError(f"{k} is not a finite number")
        return k

    @property
    def level(self) -> int:
        return int(lib.veil_ckks_ciphertext_level(self._h))

    @property
    def scale(self) -> float:
        """The ciphertext's scale (about 2^scale_bits; it drifts slightly with each rescale)."""
        return float(lib.veil_ckks_ciphertext_scale(self._h))

    def _plain(self, values: np.ndarray, width: int, scale: float, level: int):
        core = self._core
        pt = new_handle("veil_ckks_plaintext", lambda o: call(lib.veil_ckks_plaintext_new, o, core.ctx),
                        lib.veil_ckks_plaintext_free, core.ctx)
        v = np.ascontiguousarray(values, dtype=np.float64)
        call(lib.veil_ckks_encode_sparse, core.enc, pt, ffi.from_buffer("double[]", v), ffi.NULL, width, scale, level)
        return pt

    def _encrypt(self, values, width, stream):
        core = self._core
        pt = self._plain(self._padded(values, width), width, float(2 ** core.scale_bits), core.max_level)
        ct = self._new_ct()
        if self._context._sk is not None:
            call(lib.veil_ckks_encrypt_sk, core.ctx, ct, pt, self._context._sk, stream)
        else:
            call(lib.veil_ckks_encrypt_pk, core.ctx, ct, pt, core.pk, stream)
        return ct

    def _decrypt_values(self, core, sk, ct, size):
        pt = new_handle("veil_ckks_plaintext", lambda o: call(lib.veil_ckks_plaintext_new, o, core.ctx),
                        lib.veil_ckks_plaintext_free, core.ctx)
        call(lib.veil_ckks_decrypt, core.ctx, pt, ct, sk)
        out = np.empty(size, dtype=np.float64)
        call(lib.veil_ckks_decode, core.enc, ffi.from_buffer("double[]", out, require_writable=True), ffi.NULL,
             size, pt)
        return out

    def _c_add(self, a, b):
        return self._op(lib.veil_ckks_add, a, b)

    def _c_sub(self, a, b):
        return self._op(lib.veil_ckks_sub, a, b)

    def _c_neg(self, a):
        return self._op(lib.veil_ckks_negate, a)

    def _c_mul(self, a, b):
        return self._op(lib.veil_ckks_mul_relin_rescale, a, b, self._core.relin)

    def _c_rot(self, a, step):
        return self._op(lib.veil_ckks_rotate, a, step, self._core.galois[step])

    def _c_add_plain(self, a, values, width):
        pt = self._plain(values, width, float(lib.veil_ckks_ciphertext_scale(a)), int(lib.veil_ckks_ciphertext_level(a)))
        return self._op(lib.veil_ckks_add_plain, a, pt)

    def _c_plain_products(self, pairs, width, finish):
        # the plaintexts at the scale q_level, so that the rescale returns exactly to the operands' scale
        level = int(lib.veil_ckks_ciphertext_level(pairs[0][0]))
        q = float(int(lib.veil_params_q(self._core.params, level)))
        acc = None
        for ct, values in pairs:
            pt = self._plain(values, width, q, level)
            if acc is None:
                acc = self._op(lib.veil_ckks_mul_plain, ct, pt)
            else:
                call(lib.veil_ckks_mul_plain_accumulate, self._core.ctx, acc, ct, pt)
        return self._c_finish(acc) if finish else acc

    def _c_finish(self, a):
        return self._op(lib.veil_ckks_rescale, a)

    def _c_mul_plain(self, a, values, width):
        return self._c_plain_products([(a, values)], width, True)

    def _c_mul_scalar(self, a, k):
        if float(k).is_integer() and abs(k) < 2 ** 31:
            return self._op(lib.veil_ckks_mul_integer, a, int(k))
        return self._op(lib.veil_ckks_mul_constant, a, float(k))

    def _c_add_scalar_all(self, a, k):
        return self._op(lib.veil_ckks_add_constant, a, float(k))

    def polyval(self, coeffs: Sequence[float], domain: Tuple[float, float] = (-1.0, 1.0)) -> "CKKSVector":
        """p(values) for the polynomial of coefficients coeffs = [c0, c1, ..., cd], lowest degree first (as
        numpy.polynomial.polynomial.polyval; numpy.polyval takes them highest first). Evaluated in the Chebyshev
        basis over `domain` (veil_ckks_eval_chebyshev: veil_ckks_chebyshev_depth(d) levels), or by Horner's rule
        when that uses fewer levels (degree <= 2: d levels). The result is exact for any value; values outside
        `domain` lose precision (the Chebyshev polynomials grow quickly outside it)."""
        c = np.asarray(coeffs, dtype=np.float64).ravel()
        if c.size == 0 or not np.all(np.isfinite(c)):
            raise ValueError("polyval takes a non-empty list of finite coefficients, lowest degree first")
        lo, hi = (float(x) for x in domain)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"domain is a pair (lo, hi) with lo < hi, not {domain!r}")
        nz = np.nonzero(c)[0]
        d = int(nz[-1]) if nz.size else 0
        c = c[:d + 1]
        if d == 0:
            return self * 0 + float(c[0])
        if d == 1:
            return self * float(c[1]) + float(c[0])
        core = self._core
        if d < int(lib.veil_ckks_chebyshev_depth(d)):
            acc = self._c_mul_scalar(self._h, float(c[d]))
            for k in range(d - 1, 0, -1):
                acc = self._c_add_scalar_all(acc, float(c[k]))
                acc = self._c_mul(acc, self._h)
            return self._new(acc) + float(c[0])
        # p - c0 leaves the padding slots at 0 (they hold 0): c0 is added to the vector's values after
        q = c.copy()
        q[0] = 0.0
        cheb = np.polynomial.Chebyshev.cast(np.polynomial.Polynomial(q), domain=[lo, hi]).coef
        cheb = np.ascontiguousarray(np.pad(cheb, (0, d + 1 - cheb.size)), dtype=np.float64)
        out = self._op(lib.veil_ckks_eval_chebyshev, self._h, ffi.from_buffer("double[]", cheb), d, lo, hi, core.relin)
        return self._new(out) + float(c[0])


class BGVVector(_Vector):
    """An encrypted vector of up to N/2 integers modulo t (BGV: exact arithmetic).

    BGVVector(ctx, ints, seed=None) encrypts as CKKSVector does (the secret key when the context holds it).
    Values are taken modulo t and decrypt to their centered representatives in [-(t-1)/2, t/2] (so small
    negative numbers come back negative). Operations: + - * with another vector, an integer or a plain integer
    array of the same size, unary -, square, ** k, sum, dot, rotate, matmul (@), polyval. Products are
    relinearized; modulus switching is automatic (veil/bgv.h). Decryption raises veil.NoiseError when the noise
    budget is exhausted (never a wrong value); noise_budget() measures what is left.
    """

    _scheme = _BGV
    _ct_type = "veil_bgv_ciphertext"
    _obj_type = _OBJ_BGV_CT
    _dtype = np.int64

    def _coerce_array(self, values) -> np.ndarray:
        v = np.asarray(values)
        if v.dtype == object:
            try:
                v = np.array([int(x) % self._t_of() for x in v.ravel()], dtype=np.int64).reshape(v.shape)
            except (TypeError, ValueError):
                raise TypeError("BGVVector holds integers") from None
        if v.size and v.dtype.kind not in "iub":
            if v.dtype.kind == "f" and np.all(np.isfinite(v)) and np.all(v == np.round(v)):
                v = v.astype(np.int64)
            else:
                raise TypeError(f"BGVVector holds integers, not {v.dtype} values")
        return self._centered(v.astype(np.int64))

    def _t_of(self) -> int:
        return self._context._core.t

    def _centered(self, v: np.ndarray) -> np.ndarray:
        t = self._t_of()
        r = np.mod(v, t)
        return np.where(r > t // 2, r - t, r).astype(np.int64)

    def _coerce_scalar(self, k) -> int:
        if isinstance(k, (float, np.floating)):
            if not float(k).is_integer():
                raise TypeError(f"BGV vectors combine with integers, not {k!r}")
            k = int(k)
        return int(self._centered(np.array([int(k) % self._t_of()], dtype=np.int64))[0])

    @property
    def level(self) -> int:
        return int(lib.veil_bgv_ciphertext_level(self._h))

    def _plain(self, values: np.ndarray, width: int):
        core = self._core
        pt = new_handle("veil_bgv_plaintext", lambda o: call(lib.veil_bgv_plaintext_new, o, core.ctx),
                        lib.veil_bgv_plaintext_free, core.ctx)
        full = np.ascontiguousarray(np.tile(self._centered(np.asarray(values, dtype=np.int64)), core.n // width))
        call(lib.veil_bgv_encode_signed, core.enc, pt, ffi.from_buffer("int64_t[]", full), core.n)
        return pt

    def _encrypt(self, values, width, stream):
        core = self._core
        pt = self._plain(self._padded(values, width), width)
        ct = self._new_ct()
        if self._context._sk is not None:
            call(lib.veil_bgv_encrypt_sk, core.ctx, ct, pt, self._context._sk, stream)
        else:
            call(lib.veil_bgv_encrypt_pk, core.ctx, ct, pt, core.pk, stream)
        return ct

    def _decrypt_values(self, core, sk, ct, size):
        pt = new_handle("veil_bgv_plaintext", lambda o: call(lib.veil_bgv_plaintext_new, o, core.ctx),
                        lib.veil_bgv_plaintext_free, core.ctx)
        call(lib.veil_bgv_decrypt, core.ctx, pt, ct, sk)
        out = np.empty(size, dtype=np.int64)
        call(lib.veil_bgv_decode_signed, core.enc, ffi.from_buffer("int64_t[]", out, require_writable=True), size, pt)
        return out

    def _c_add(self, a, b):
        return self._op(lib.veil_bgv_add, a, b)

    def _c_sub(self, a, b):
        return self._op(lib.veil_bgv_sub, a, b)

    def _c_neg(self, a):
        return self._op(lib.veil_bgv_negate, a)

    def _c_mul(self, a, b):
        return self._op(lib.veil_bgv_mul_relin, a, b, self._core.relin)

    def _c_rot(self, a, step):
        return self._op(lib.veil_bgv_rotate_rows, a, step, self._core.galois[step])

    def _c_add_plain(self, a, values, width):
        return self._op(lib.veil_bgv_add_plain, a, self._plain(values, width))

    def _c_mul_plain(self, a, values, width):
        return self._op(lib.veil_bgv_mul_plain, a, self._plain(values, width))

    def _c_plain_products(self, pairs, width, finish):
        acc = None
        for ct, values in pairs:
            p = self._c_mul_plain(ct, values, width)
            acc = p if acc is None else self._c_add(acc, p)
        return acc

    def _c_mul_scalar(self, a, k):
        return self._op(lib.veil_bgv_mul_scalar, a, int(k))

    def _c_add_scalar_all(self, a, k):
        return self._op(lib.veil_bgv_add_scalar, a, int(k))

    def __pow__(self, k: int) -> "_Vector":
        """self ** k for an integer k >= 1 (veil_bgv_power: repeated squaring, relinearized)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"a vector's power is an integer >= 1, not {k!r}")
        return self._new(self._op(lib.veil_bgv_power, self._h, int(k), self._core.relin))

    def polyval(self, coeffs: Sequence[int]) -> "BGVVector":
        """p(values) mod t for integer coefficients [c0, c1, ..., cd], lowest degree first, by Horner's rule
        (d products)."""
        c = [self._coerce_scalar(x) for x in np.asarray(coeffs).ravel()]
        if not c:
            raise ValueError("polyval takes a non-empty list of integer coefficients, lowest degree first")
        while len(c) > 1 and c[-1] == 0:
            c.pop()
        if len(c) == 1:
            return self * 0 + c[0]
        acc = self._c_mul_scalar(self._h, c[-1])
        for k in range(len(c) - 2, 0, -1):
            acc = self._c_add_scalar_all(acc, c[k])
            acc = self._c_mul(acc, self._h)
        return self._new(acc) + c[0]

    def noise_budget(self, context: Optional[Context] = None) -> float:
        """The noise budget in bits, measured with the secret key (0 when exhausted: decryption would fail)."""
        ctx = self._context if context is None else context
        sk = ctx._need_secret("noise_budget")
        bits = ffi.new("double *")
        call(lib.veil_bgv_noise_budget, ctx._core.ctx, bits, self._handle_in(ctx), sk)
        return float(bits[0])

    def noise_budget_estimate(self) -> float:
        """The evaluator's estimate of the noise budget, without the secret key (at most the measured one)."""
        return float(lib.veil_bgv_noise_budget_estimate(self._h))
