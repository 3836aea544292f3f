/*
 * veil/core.h - errors, memory, randomness and threads: the services every layer of Veil uses.
 *
 * Conventions used throughout the library:
 *  - every function that can fail returns a veil_status and writes its results through out-parameters,
 *    which come first;
 *  - a failing call also fills an optional caller-owned veil_error with a one-line explanation; the detail
 *    lives in that object (or in the object the call was given), never in global state, so concurrent
 *    calls never see each other's messages;
 *  - objects are opaque handles created by veil_<noun>_new and released by veil_<noun>_free, which accepts
 *    NULL; anything that may hold a secret is wiped before its memory is returned.
 */
#ifndef VEIL_CORE_H
#define VEIL_CORE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The exported API. Veil's libraries are built with -fvisibility=hidden: libveil.so exports only what is
 * declared between VEIL_API_BEGIN and VEIL_API_END (each public header wraps its declarations in one such
 * pair) or marked VEIL_EXPORT (a single declaration). Everything else, the library's internal functions
 * included, stays inside it. Users of the headers need not care: the three expand to nothing where the
 * compiler does not know GCC's visibility attributes.
 */
#if defined(__GNUC__) && !defined(_WIN32)
#define VEIL_API_BEGIN _Pragma("GCC visibility push(default)")
#define VEIL_API_END _Pragma("GCC visibility pop")
#define VEIL_EXPORT __attribute__((visibility("default")))
#else
#define VEIL_API_BEGIN
#define VEIL_API_END
#define VEIL_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

#define VEIL_VERSION_MAJOR 0
#define VEIL_VERSION_MINOR 1
#define VEIL_VERSION_PATCH 0
#define VEIL_VERSION_STRING "0.1.0"

/* Result codes. Values are stable: they may be stored and compared across versions. */
typedef enum veil_status {
    VEIL_OK = 0,
    VEIL_ERR_NULL = 1,        /* a required pointer argument was NULL */
    VEIL_ERR_ARGUMENT = 2,    /* an argument is out of range or malformed */
    VEIL_ERR_NO_MEMORY = 3,   /* an allocation failed or its size overflowed */
    VEIL_ERR_MISMATCH = 4,    /* operands belong to different rings, bases or forms */
    VEIL_ERR_UNSUPPORTED = 5, /* a valid request this build or this CPU cannot serve */
    VEIL_ERR_RANDOM = 6,      /* the randomness source failed */
    VEIL_ERR_NOT_FOUND = 7,   /* nothing satisfies the request (for example no prime of that size) */
    VEIL_ERR_INTERNAL = 8,    /* a bug in Veil: please report it */
    VEIL_ERR_INSECURE = 9,    /* parameters below the requested security level */
    VEIL_ERR_FORMAT = 10,     /* malformed, truncated or foreign serialized data */
    VEIL_ERR_IO = 11,         /* a file could not be read or written */
    VEIL_ERR_NOISE = 12,      /* a ciphertext has no noise budget left: decrypting it would give garbage */
    VEIL_ERR_BUDGET = 13      /* a release would exceed the key set's differential-privacy budget */
} veil_status;

/* A short, static English description of a status. Never NULL, also for unknown values. */
const char *veil_strerror(veil_status status);

/* The library's version as "MAJOR.MINOR.PATCH", for comparison with VEIL_VERSION_STRING at run time. */
const char *veil_version(void);

#define VEIL_DETAIL_MAX 256

/*
 * Caller-owned error detail. Pass a pointer to one as the last argument of any call (or NULL when the
 * detail is not wanted). On failure the call stores its status and a message saying what was wrong;
 * on success the object is left untouched.
 */
typedef struct veil_error {
    veil_status status;
    char detail[VEIL_DETAIL_MAX];
} veil_error;

/* Resets an error object to VEIL_OK with an empty detail. Accepts NULL. */
void veil_error_clear(veil_error *err);

/* ---- Memory ------------------------------------------------------------------------------------ */

#define VEIL_ALIGNMENT 64

/* 64-byte aligned allocation of count * size bytes, zero-filled. NULL on failure, overflow or 0 bytes. */
void *veil_alloc(size_t count, size_t size);
/* Frees memory from veil_alloc. Accepts NULL. */
void veil_free(void *ptr);
/* Wipes `size` bytes (sodium_memzero, which the compiler cannot remove), then frees. Accepts NULL. */
void veil_free_secret(void *ptr, size_t size);
/* Wipes `size` bytes in place. */
void veil_wipe(void *ptr, size_t size);

/* ---- Randomness -------------------------------------------------------------------------------- */

#define VEIL_SEED_BYTES 32

/*
 * A stream of random bytes. Two kinds:
 *  - OS: a ChaCha20 generator keyed with 32 bytes from the operating system's CSPRNG (libsodium
 *    randombytes_buf) and rekeyed from its own output at every 4 KiB refill (fast key erasure), so that
 *    its state never reveals bytes already served;
 *  - seeded: the ChaCha20 keystream (libsodium crypto_stream_chacha20, 64-bit nonce and block counter)
 *    under a 32-byte seed as key and a 64-bit stream identifier as nonce. The same (seed, stream id)
 *    expands to the same bytes on every machine; it regenerates the uniform half of seeded
 *    ciphertexts and keys. Different stream ids give independent streams under one seed.
 * A prng is used by one thread at a time. Its state is wiped when freed.
 */
typedef struct veil_prng veil_prng;

veil_status veil_prng_new_os(veil_prng **out, veil_error *err);
veil_status veil_prng_new_seeded(veil_prng **out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream_id,
                                 veil_error *err);
void veil_prng_free(veil_prng *prng);

/* Fills buf with len random bytes. Cannot fail once the prng exists. */
void veil_prng_bytes(veil_prng *prng, void *buf, size_t len);
/* The next 8 bytes of the stream as a little-endian 64-bit integer. */
uint64_t veil_prng_u64(veil_prng *prng);
/*
 * A uniform value in [0, bound) by rejection, without modulo bias: draws veil_prng_u64 values masked to the
 * bit length of bound - 1 until one is below bound (on average fewer than two draws). bound must be >= 1;
 * bound 1 returns 0 without consuming the stream (as does the invalid bound 0).
 */
uint64_t veil_prng_below(veil_prng *prng, uint64_t bound);

/* A fresh seed from the OS CSPRNG. */
veil_status veil_seed_new(uint8_t seed[VEIL_SEED_BYTES], veil_error *err);

/* ---- Threads ----------------------------------------------------------------------------------- */

/*
 * The thread count that new contexts use when their options leave it at 0: the VEIL_THREADS environment
 * variable when it holds a decimal integer in [1, 4096] (digits only: values such as "abc", "0", "-3",
 * "+3" or "4x" are ignored), otherwise OpenMP's default (usually the core count) capped by the CPUs the
 * process may run on (its CPU affinity) and by its cgroup's CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us,
 * rounded up; unreadable or malformed files are ignored), and never below 1. Read afresh at each call.
 * Results never depend on the thread count.
 *
 * Waiting: OpenMP threads (libgomp) spin for a while after each parallel region before they sleep, and
 * Veil's operations are many short regions. On a machine where other processes keep the cores busy the
 * spinning takes the CPU from the thread that has the work (an evaluation many times slower than on one
 * thread). Programs that use Veil should run with OMP_WAIT_POLICY=passive in their environment: libgomp reads
 * it once, when it is loaded, so setting it from main (or from any constructor) is too late. The veil and
 * veil-bench programs set it and execute themselves again when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is
 * set (docs/performance.md, "A busy machine").
 */
int veil_threads_default(void);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_CORE_H */
