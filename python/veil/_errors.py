"""Veil's statuses as Python exceptions: each carries `status` (the C library's veil_status number), `name`
and `detail` (the call's one-line explanation), and derives from the built-in exception that fits, so that
`except ValueError` catches bad input as it would elsewhere in Python."""
from __future__ import annotations


class VeilError(Exception):
    """A Veil call failed. `status`: veil_status (veil/core.h); `detail`: what was wrong."""

    status = 0
    name = "VEIL_ERROR"

    def __init__(self, detail: str, status: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status

    def __reduce__(self):
        return (type(self), (self.detail, self.status))


class NullError(VeilError, ValueError):
    status, name = 1, "VEIL_ERR_NULL"


class ArgumentError(VeilError, ValueError):
    status, name = 2, "VEIL_ERR_ARGUMENT"


class OutOfMemoryError(VeilError, MemoryError):
    status, name = 3, "VEIL_ERR_NO_MEMORY"


class MismatchError(VeilError, ValueError):
    """Keys, ciphertexts or a model of another set."""
    status, name = 4, "VEIL_ERR_MISMATCH"


class UnsupportedError(VeilError, ValueError):
    """A valid request this build or this model cannot serve (an ONNX operator, a depth)."""
    status, name = 5, "VEIL_ERR_UNSUPPORTED"


class RandomnessError(VeilError, OSError):
    status, name = 6, "VEIL_ERR_RANDOM"


class NotFoundError(VeilError, LookupError):
    status, name = 7, "VEIL_ERR_NOT_FOUND"


class InternalError(VeilError, RuntimeError):
    status, name = 8, "VEIL_ERR_INTERNAL"


class InsecureError(VeilError, ValueError):
    """Parameters below the requested security level."""
    status, name = 9, "VEIL_ERR_INSECURE"


class FormatError(VeilError, ValueError):
    """Malformed, truncated or foreign serialized data."""
    status, name = 10, "VEIL_ERR_FORMAT"


class VeilIOError(VeilError, OSError):
    status, name = 11, "VEIL_ERR_IO"


class NoiseError(VeilError, ArithmeticError):
    """A ciphertext without noise budget: decrypting it would give garbage, so nothing was."""
    status, name = 12, "VEIL_ERR_NOISE"


class BudgetError(VeilError):
    """A release that would exceed the key set's differential-privacy budget: nothing was released."""
    status, name = 13, "VEIL_ERR_BUDGET"


_BY_STATUS = {cls.status: cls for cls in (NullError, ArgumentError, OutOfMemoryError, MismatchError,
                                          UnsupportedError, RandomnessError, NotFoundError, InternalError,
                                          InsecureError, FormatError, VeilIOError, NoiseError, BudgetError)}


def error_for(status: int, detail: str) -> VeilError:
    cls = _BY_STATUS.get(status, VeilError)
    return cls(detail, status)
