/* Internal helpers of the core layer, shared by every layer above it. */
#ifndef VEIL_CORE_INTERNAL_H
#define VEIL_CORE_INTERNAL_H

#include "veil/core.h"

/* Stores status and a printf-style detail into err (when not NULL) and returns status. */
veil_status veil_fail(veil_error *err, veil_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns VEIL_ERR_NULL with the argument's name when ptr is NULL. */
#define VEIL_REQUIRE(ptr, err)                                                                      \
    do {                                                                                            \
        if ((ptr) == NULL) return veil_fail((err), VEIL_ERR_NULL, "%s: argument '%s' is NULL",    \
                                            __func__, #ptr);                                        \
    } while (0)

/* 64-byte aligned scratch memory that is not zero-filled (free with veil_free or veil_free_secret). */
void *veil_alloc_scratch(size_t count, size_t size);

/* Propagates a failing status. */
#define VEIL_TRY(expr)                                                                              \
    do {                                                                                            \
        veil_status veil_try_status_ = (expr);                                                      \
        if (veil_try_status_ != VEIL_OK) return veil_try_status_;                                  \
    } while (0)

/*
 * CPU quotas of cgroups, for veil_threads_default (exposed for the tests). The CPUs a cgroup v2 cpu.max text
 * allows ("QUOTA PERIOD", in microseconds): ceil(QUOTA / PERIOD), at most 4096; 0 when it sets no limit ("max
 * PERIOD") or is not such a text (signs, spaces, other words, numbers of more than 18 digits, a zero quota or
 * period). Trailing spaces and newlines are allowed.
 */
int veil_cgroup_cpu_max_parse(const char *text);
/* The same for cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us texts (a quota of -1 sets no limit: 0). */
int veil_cgroup_cfs_parse(const char *quota_text, const char *period_text);

#endif
