/* 64-byte aligned, zero-filled allocation and secure wiping (libsodium). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "core/core_internal.h"

/* Rounded-up byte count of count * size, or 0 on zero size or overflow. */
static size_t aligned_bytes(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return 0;
    size_t bytes = count * size;
    if (bytes > SIZE_MAX - (VEIL_ALIGNMENT - 1)) return 0;
    return (bytes + VEIL_ALIGNMENT - 1) & ~(size_t)(VEIL_ALIGNMENT - 1);
}

void *veil_alloc_scratch(size_t count, size_t size)
{
    size_t bytes = aligned_bytes(count, size);
    void *p = NULL;
    if (bytes == 0 || posix_memalign(&p, VEIL_ALIGNMENT, bytes) != 0) return NULL;
    return p;
}

void *veil_alloc(size_t count, size_t size)
{
    void *p = veil_alloc_scratch(count, size);
    if (p) memset(p, 0, aligned_bytes(count, size));
    return p;
}

void veil_free(void *ptr)
{
    free(ptr);
}

void veil_wipe(void *ptr, size_t size)
{
    if (ptr && size) sodium_memzero(ptr, size);
}

void veil_free_secret(void *ptr, size_t size)
{
    if (!ptr) return;
    veil_wipe(ptr, size);
    free(ptr);
}
