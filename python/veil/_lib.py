"""The C library through cffi (ABI mode): `ffi`, `lib`, and the one way every call's status becomes an exception.

cffi releases the GIL around each C call, so that other Python threads run while Veil computes.
"""
from __future__ import annotations

import os
import threading
import weakref

import cffi

from ._errors import error_for

SEED_BYTES = 32  # VEIL_SEED_BYTES (the preprocessor's constants do not reach cffi)
_HERE = os.path.dirname(os.path.abspath(__file__))

# libgomp reads its wait policy once, when it is loaded: without this its threads spin after each of Veil's
# many short parallel regions and take the CPU from the thread that has the work (veil/core.h, "Waiting").
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

try:  # the declarations as parsed at build time (setup.py); else parsed now from the headers' text
    from ._ffi import ffi
except ImportError:
    ffi = cffi.FFI()
    with open(os.path.join(_HERE, "_cdef.h")) as _f:
        ffi.cdef(_f.read())
lib = ffi.dlopen(os.environ.get("VEIL_LIBRARY") or os.path.join(_HERE, "libveil.so"))


def call(fn, *args):
    """fn(*args, err): raises the VeilError of its status, carrying the call's detail."""
    err = ffi.new("veil_error *")
    status = fn(*args, err)
    if status != lib.VEIL_OK:
        detail = ffi.string(err.detail).decode("utf-8", "replace")
        raise error_for(int(status), detail or ffi.string(lib.veil_strerror(status)).decode())


def take_bytes(fn, *args) -> bytes:
    """fn(buffer, *args, err) fills a veil_buffer: its bytes, the buffer wiped and freed."""
    buf = ffi.new("veil_buffer *")
    try:
        call(fn, buf, *args)
        return bytes(ffi.buffer(buf.data, buf.len))
    finally:
        lib.veil_buffer_free(buf)


class _Ref:
    """A C object and how many live things need it: its Python handle, plus each object made from it (a
    ciphertext set needs its keys' context, an evaluator its model and keys). Freed when the count reaches 0,
    then the objects it needed are released in turn, so that the C library's order (a set before its keys) holds
    whatever order the interpreter collects the handles in, reference cycles included."""

    __slots__ = ("ptr", "free", "needs", "keep", "count")

    def __init__(self, ptr, free, needs, keep):
        self.ptr, self.free, self.needs, self.keep, self.count = ptr, free, needs, keep, 1

    def release(self) -> None:
        with _LOCK:
            self.count -= 1
            if self.count:
                return
            _LIVE.pop(_address(self.ptr), None)
        self.free(self.ptr)
        self.keep = None
        for r in self.needs:
            r.release()


_LIVE = {}  # the address of every C object a handle owns -> its _Ref
_LOCK = threading.RLock()  # finalizers run in whichever thread triggered the collection


def _address(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


def owned(ptr, free, *needs):
    """The handle (ptr itself) of a new C object, freed by `free` once ptr is collected and every object made
    from it is freed. `needs`: the handles it depends on (kept alive, with their C objects, until it is freed);
    other Python objects given there are held until then too. weakref.finalize keeps the bookkeeping in its
    own registry, out of reach of the cycle collector, which may clear a cycle's objects in any order."""
    refs, keep = [], []
    with _LOCK:
        for n in needs:
            r = _LIVE.get(_address(n)) if isinstance(n, ffi.CData) else None
            if r is not None:
                r.count += 1
                refs.append(r)
            else:
                keep.append(n)
        ref = _Ref(ffi.cast(ffi.typeof(ptr), ptr), free, refs, keep)
        _LIVE[_address(ptr)] = ref
    weakref.finalize(ptr, ref.release)
    return ptr


def new_handle(ctype: str, make, free, *needs):
    """make(out) fills a `ctype **` out-parameter (a C handle): the new object's handle (see owned)."""
    out = ffi.new(ctype + " **")
    make(out)
    return owned(out[0], free, *needs)


# The stream of a seed each use draws from: one seed given to key generation and to encryption must not
# make the encryption's noise out of the secret key's bytes.
STREAM_KEYS, STREAM_ENCRYPT = 1, 2


def prng(seed: bytes | None, stream: int):
    """A seeded ChaCha20 stream for reproducible runs (tests), or NULL: the OS CSPRNG. `stream` names the use
    (STREAM_KEYS, STREAM_ENCRYPT): the same seed gives independent streams to different uses."""
    if seed is None:
        return ffi.NULL
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
        raise ValueError(f"a seed is {SEED_BYTES} bytes (for example os.urandom({SEED_BYTES}))")
    out = ffi.new("veil_prng **")
    call(lib.veil_prng_new_seeded, out, bytes(seed), stream)
    return ffi.gc(out[0], lib.veil_prng_free)


def progress_callback(fn):
    """A veil_progress_fn calling fn(done, total), or NULL; keep the result alive during the call."""
    if fn is None:
        return ffi.NULL

    @ffi.callback("void(void *, size_t, size_t)")
    def report(_arg, done, total):
        try:
            fn(int(done), int(total))
        except Exception:  # an exception cannot cross the C frames; progress is advisory
            pass

    return report
