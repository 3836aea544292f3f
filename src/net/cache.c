/*
 * Loaded bundles in memory (issue 21): an estimate of each one's memory, a budget, LRU eviction.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include "net/serve_internal.h"

/* An encrypted model's weights loaded for the bundle add about their file's bytes (their ciphertexts in memory). */
uint64_t veil_srv_cache_estimate(const key_entry *k) { return k->bytes * CACHE_FACTOR + k->weight_bytes; }

const veil_evaluator *veil_srv_key_evaluator(key_entry *k)
{
    pthread_mutex_lock(&k->load_lock);
    const veil_evaluator *ev = k->ev;
    pthread_mutex_unlock(&k->load_lock);
    return ev;
}

uint64_t veil_srv_memory_used(veil_server *s) { return atomic_load(&s->body_bytes) + atomic_load(&s->cache_bytes); }

/* Under lock: frees the keys and evaluator of the least recently used loaded bundles that no request holds
 * until the cache's estimate is at most target (a bundle in use is never freed under its request). */
static void evict_to(veil_server *s, uint64_t target)
{
    while (atomic_load(&s->cache_bytes) > target) {
        key_entry *lru = NULL;
        for (size_t i = 0; i < s->n_stored; i++) {
            key_entry *k = s->stored[i];
            if (k->cached && k->refs == 0 && (!lru || k->last_used < lru->last_used)) lru = k;
        }
        if (!lru) return;
        veil_evaluator_free(lru->ev);
        veil_eval_keys_free(lru->keys);
        lru->ev = NULL;
        lru->keys = NULL; /* reloaded from the store at its next use */
        atomic_fetch_sub(&s->cache_bytes, lru->cached);
        lru->cached = 0;
        atomic_fetch_add(&s->evictions, 1);
        atomic_store(&s->trim_wanted, 1);
    }
}

/* After an eviction, outside the lock: the allocator hands the freed pages back to the system. veil keeps freed
 * memory for reuse (mallopt in tools/veil.c), and an evaluator freed in one thread's arena would otherwise stay
 * in the process beside the one loaded in another's. */
void veil_srv_trim_freed(veil_server *s)
{
    if (!atomic_exchange(&s->trim_wanted, 0)) return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* Under lock: room for need more bytes of loaded bundles, evicting unused ones beyond the cache's budget; 1
 * with need counted in the cache, or 0 (nothing counted) when the memory budget has no room even so. */
int veil_srv_cache_reserve(veil_server *s, uint64_t need)
{
    evict_to(s, s->cfg.cache_bytes > need ? s->cfg.cache_bytes - need : 0);
    if (veil_srv_memory_used(s) + need > s->cfg.memory_budget) return 0;
    atomic_fetch_add(&s->cache_bytes, need);
    return 1;
}

/* k (held by the caller) in the cache: marked used, and its load counted when it is not loaded; 0 when the
 * memory budget has no room for it. */
int veil_srv_cache_admit(veil_server *s, key_entry *k)
{
    int ok = 1;
    pthread_mutex_lock(&s->lock);
    k->last_used = ++s->clock;
    if (!k->cached) {
        const uint64_t need = veil_srv_cache_estimate(k);
        ok = veil_srv_cache_reserve(s, need);
        if (ok) k->cached = need;
    }
    pthread_mutex_unlock(&s->lock);
    veil_srv_trim_freed(s);
    return ok;
}

/* Loads the bundle from the store and makes its evaluator, once (concurrent requests wait for the first); its
 * room in the cache is given back when that fails. */
veil_status veil_srv_load_key(veil_server *s, key_entry *k, veil_error *err)
{
    pthread_mutex_lock(&k->load_lock);
    const veil_status st = k->keys ? VEIL_OK : veil_srv_read_key(s, k, err);
    pthread_mutex_lock(&s->lock);
    if (st == VEIL_OK) {
        k->known_model = k->model;
    } else if (k->cached) {
        atomic_fetch_sub(&s->cache_bytes, k->cached);
        k->cached = 0;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&k->load_lock);
    return st;
}
