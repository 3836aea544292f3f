/* Status strings, version, and the per-call error detail. */
#include <stdarg.h>
#include <stdio.h>
#include "core/core_internal.h"

const char *veil_strerror(veil_status status)
{
    switch (status) {
    case VEIL_OK: return "success";
    case VEIL_ERR_NULL: return "a required pointer argument is NULL";
    case VEIL_ERR_ARGUMENT: return "invalid argument";
    case VEIL_ERR_NO_MEMORY: return "out of memory";
    case VEIL_ERR_MISMATCH: return "operands do not match (ring, base or form)";
    case VEIL_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case VEIL_ERR_RANDOM: return "the randomness source failed";
    case VEIL_ERR_NOT_FOUND: return "nothing satisfies the request";
    case VEIL_ERR_INTERNAL: return "internal error (a bug in Veil)";
    case VEIL_ERR_INSECURE: return "parameters below the requested security level";
    case VEIL_ERR_FORMAT: return "malformed or foreign serialized data";
    case VEIL_ERR_IO: return "file input/output failed";
    case VEIL_ERR_NOISE: return "the noise budget of a ciphertext is exhausted";
    case VEIL_ERR_BUDGET: return "the differential-privacy budget would be exceeded";
    }
    return "unknown status code";
}

const char *veil_version(void)
{
    return VEIL_VERSION_STRING;
}

void veil_error_clear(veil_error *err)
{
    if (!err) return;
    err->status = VEIL_OK;
    err->detail[0] = '\0';
}

veil_status veil_fail(veil_error *err, veil_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}
