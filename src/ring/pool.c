/*
 * A small cache of large blocks, owned by a ring, so that operations that need the same sizes again and
 * again (polynomials, key-switching scratch) reuse memory instead of asking the system for fresh pages
 * each time (fresh pages cost a page fault each, serialized in the kernel). Thread-safe (one mutex); blocks
 * are handed out whole and returned whole. A block returned "zeroed" is all zero bytes (polynomials are
 * wiped when freed), so that it can serve a request for zeroed memory without another pass. The cache is
 * sized for a CNN layer's outputs at N = 2^14 (hundreds of blocks of 0.4-0.8 MB each).
 */
#include <pthread.h>
#include <string.h>
#include "ring/ring_internal.h"

#define POOL_SLOTS 4096
#define POOL_MAX_BYTES ((size_t)1536 << 20)

typedef struct pool_block {
    void *ptr;
    size_t bytes;
    bool zeroed;
} pool_block;

struct veil_pool {
    pthread_mutex_t lock;
    pool_block blocks[POOL_SLOTS];
    size_t count, cached_bytes;
};

veil_pool *veil_pool_new(void)
{
    veil_pool *p = veil_alloc(1, sizeof *p);
    if (p && pthread_mutex_init(&p->lock, NULL) != 0) {
        veil_free(p);
        return NULL;
    }
    return p;
}

void veil_pool_free(veil_pool *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->count; i++) veil_free(p->blocks[i].ptr); /* zeroed or not secret (see put) */
    pthread_mutex_destroy(&p->lock);
    veil_free(p);
}

size_t veil_pool_block_bytes(size_t bytes)
{
    size_t step = 1;
    while ((step << 3) <= bytes) step <<= 1;
    return (bytes + step - 1) / step * step;
}

/* A block of `bytes`, or (fit) of up to half as much again when none has the size; *got its size. */
static void *pool_take(veil_pool *p, size_t bytes, bool zeroed, bool fit, size_t *got)
{
    if (bytes == 0) bytes = 1;
    void *ptr = NULL;
    bool is_zero = false;
    *got = bytes;
    if (p) {
        pthread_mutex_lock(&p->lock);
        size_t pick = p->count, larger = p->count;
        for (size_t i = 0; i < p->count; i++) {
            const size_t b = p->blocks[i].bytes;
            if (b == bytes) {
                pick = i;
                if (p->blocks[i].zeroed == zeroed) break; /* the best match */
            } else if (fit && b > bytes && b - bytes <= bytes / 2 && (larger == p->count || b < p->blocks[larger].bytes)) {
                larger = i;
            }
        }
        if (pick == p->count) pick = larger;
        if (pick < p->count) {
            ptr = p->blocks[pick].ptr;
            is_zero = p->blocks[pick].zeroed;
            *got = p->blocks[pick].bytes;
            p->cached_bytes -= *got;
            memmove(p->blocks + pick, p->blocks + pick + 1, (p->count - pick - 1) * sizeof *p->blocks);
            p->count--;
        }
        pthread_mutex_unlock(&p->lock);
    }
    if (!ptr) ptr = veil_alloc_scratch(bytes, 1);
    if (ptr && zeroed && !is_zero) memset(ptr, 0, bytes);
    return ptr;
}

void *veil_pool_get(veil_pool *p, size_t bytes, bool zeroed)
{
    size_t got;
    return pool_take(p, bytes, zeroed, false, &got);
}

void *veil_pool_get_fit(veil_pool *p, size_t bytes, bool zeroed, size_t *got)
{
    return pool_take(p, bytes, zeroed, true, got);
}

void veil_pool_put(veil_pool *p, void *ptr, size_t bytes, bool zeroed)
{
    if (!ptr) return;
    if (bytes == 0) bytes = 1;
    void *evicted[POOL_SLOTS];
    size_t n_evicted = 0;
    bool kept = false;
    if (p && bytes <= POOL_MAX_BYTES) {
        pthread_mutex_lock(&p->lock);
        /* full: the oldest blocks make room (a long computation moves through levels, hence through sizes,
         * and blocks of sizes it has left behind would otherwise hold the cache forever) */
        while (p->count > 0 && (p->count >= POOL_SLOTS || p->cached_bytes + bytes > POOL_MAX_BYTES)) {
            evicted[n_evicted++] = p->blocks[0].ptr;
            p->cached_bytes -= p->blocks[0].bytes;
            memmove(p->blocks, p->blocks + 1, (p->count - 1) * sizeof *p->blocks);
            p->count--;
        }
        p->blocks[p->count++] = (pool_block){ptr, bytes, zeroed};
        p->cached_bytes += bytes;
        kept = true;
        pthread_mutex_unlock(&p->lock);
    }
    for (size_t i = 0; i < n_evicted; i++) veil_free(evicted[i]); /* zeroed or not secret (see the callers) */
    if (!kept) veil_free(ptr);
}

void veil_pool_release(veil_pool *p, size_t min_bytes)
{
    if (!p) return;
    void *freed[POOL_SLOTS];
    size_t n_freed = 0, kept = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->count; i++) {
        if (p->blocks[i].bytes >= min_bytes) {
            freed[n_freed++] = p->blocks[i].ptr;
            p->cached_bytes -= p->blocks[i].bytes;
        } else {
            p->blocks[kept++] = p->blocks[i];
        }
    }
    p->count = kept;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < n_freed; i++) veil_free(freed[i]); /* zeroed or not secret (see veil_pool_put) */
}
