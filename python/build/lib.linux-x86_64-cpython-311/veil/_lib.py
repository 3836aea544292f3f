"""The C library through cffi (ABI mode): `ffi`, `lib`, and the one way every call's status becomes an exception.

cffi releases the GIL around each C call, so that other Python threads run while Veil computes.
"""
from __future__ import annotations

import os

import cffi

from ._errors import error_for

SEED_BYTES = 32  # VEIL_SEED_BYTES (the preprocessor's constants do not reach cffi)
_HERE = os.path.dirname(os.path.abspath(__file__))

# libgomp reads its wait policy once, when it is loaded: without this its threads spin after each of Veil's
# many short parallel regions and take the CPU from the thread that has the work (veil/core.h, "Waiting").
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"

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


def owned(ptr, free, *keep):
    """A cdata freed by `free` when collected; `keep` (the objects it depends on: a context, keys, a model)
    stays alive until then, whatever order the interpreter collects things in."""
    return ffi.gc(ptr, lambda p, _keep=keep: free(p))


def new_handle(ctype: str, make, free, *keep):
    """make(out) fills a `ctype **` out-parameter (a C handle): the new object as an owned cdata."""
    out = ffi.new(ctype + " **")
    make(out)
    return owned(out[0], free, *keep)


def prng(seed: bytes | None):
    """A seeded ChaCha20 stream for reproducible runs (tests), or NULL: the OS CSPRNG."""
    if seed is None:
        return ffi.NULL
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_BYTES:
        raise ValueError(f"a seed is {SEED_BYTES} bytes (for example os.urandom({SEED_BYTES}))")
    out = ffi.new("veil_prng **")
    call(lib.veil_prng_new_seeded, out, bytes(seed), 0)
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
