/* 64-byte aligned, zero-filled allocation and secure wiping (libsodium). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "core/core_internal.h"

void *veil_alloc(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size) return NULL;
    size_t bytes = count * size;
    if (bytes > SIZE_MAX - (VEIL_ALIGNMENT - 1)) return NULL;
    bytes = (bytes + VEIL_ALIGNMENT - 1) & ~(size_t)(VEIL_ALIGNMENT - 1);
    void *p = NULL;
    if (posix_memalign(&p, VEIL_ALIGNMENT, bytes) != 0) return NULL;
    memset(p, 0, bytes);
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
