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

/*
 * The one error idiom. A function that calls fallible functions keeps its status in `veil_status st =
 * VEIL_OK;`, checks each call with VEIL_CHECK, reports a failure it finds itself with VEIL_FAIL, and ends
 * with a `done:` label that releases what it holds and returns st:
 *
 *     veil_status st = VEIL_OK;
 *     veil_poly *p = NULL;
 *     VEIL_CHECK(veil_poly_new(&p, ring, level, err));
 *     if (too_large(p)) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: ...", __func__);
 *     VEIL_CHECK(step(p, err));
 * done:
 *     veil_poly_free(p);
 *     return st;
 *
 * Argument checks at the top, before anything is held, may return directly (VEIL_REQUIRE, or
 * `return veil_fail(...)`).
 */
#define VEIL_CHECK(expr)                                                                            \
    do {                                                                                            \
        st = (expr);                                                                                \
        if (st != VEIL_OK) goto done;                                                               \
    } while (0)
#define VEIL_FAIL(...)                                                                              \
    do {                                                                                            \
        st = veil_fail(__VA_ARGS__);                                                                \
        goto done;                                                                                  \
    } while (0)

/*
 * Runs body(part), a veil_status expression that may write its detail to e_, for part = 0 .. parts - 1 on up
 * to `threads` threads (OpenMP), and leaves in st the first failure, with its detail in *err. Ring operations
 * inside run on one thread each: OpenMP does not nest here. With one thread or one part the loop runs outside
 * any parallel region, so the ring operations inside take the context's threads from OpenMP's pool: under a
 * team of one (an `if` clause that is false, num_threads(1)) libgomp would start and end fresh threads for every
 * one of their regions.
 */
#define VEIL_PARALLEL_PARTS(parts, threads, err, body)                                                             \
    do {                                                                                                           \
        volatile veil_status shared_ = VEIL_OK;                                                                    \
        veil_error first_ = {VEIL_OK, ""};                                                                         \
        const size_t parts_ = (parts);                                                                             \
        const int threads_ = (int)(threads);                                                                       \
        if (threads_ > 1 && parts_ > 1) {                                                                          \
            _Pragma("omp parallel for schedule(dynamic) num_threads(threads_)")                                    \
            for (size_t part = 0; part < parts_; part++) VEIL_PARALLEL_PART_(body)                                 \
        } else {                                                                                                   \
            for (size_t part = 0; part < parts_; part++) VEIL_PARALLEL_PART_(body)                                 \
        }                                                                                                          \
        st = shared_;                                                                                              \
        if (st != VEIL_OK && (err)) *(err) = first_;                                                               \
    } while (0)
/* One part of VEIL_PARALLEL_PARTS: skipped once a part failed; the first failure is kept. */
#define VEIL_PARALLEL_PART_(body)                                                                                  \
    {                                                                                                              \
        veil_error e_ = {VEIL_OK, ""};                                                                             \
        veil_status r_ = shared_ == VEIL_OK ? (body) : VEIL_OK;                                                    \
        if (r_ != VEIL_OK) {                                                                                       \
            _Pragma("omp critical(veil_parallel_parts_error)") if (shared_ == VEIL_OK) {                           \
                shared_ = r_;                                                                                      \
                first_ = e_;                                                                                       \
            }                                                                                                      \
        }                                                                                                          \
    }

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
