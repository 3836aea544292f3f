/*
 * Request bodies of `veil serve` (issue 21, bounded memory): up to VEIL_BODY_SPILL bytes are kept in memory;
 * a larger body (declared, or grown past the bound as it arrives) streams to an unlinked temporary file in
 * STORE/tmp and is mapped read-only once complete, so the loaders read it without a heap copy. The file has
 * no name from its first moment: a crash or kill -9 leaves nothing behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/core_internal.h"
#include "net/net_internal.h"

void veil_body_init(veil_body *b)
{
    memset(b, 0, sizeof *b);
    b->fd = -1;
}

/* A new unlinked file in tmp_dir, for the body. */
static veil_status open_spill(veil_body *b, const char *tmp_dir, veil_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/body.XXXXXX", tmp_dir) >= sizeof path)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "the store's path is too long");
    const int fd = mkstemp(path);
    if (fd < 0) return veil_fail(err, VEIL_ERR_IO, "a temporary file in %s: %s", tmp_dir, strerror(errno));
    unlink(path); /* nameless from now on: closed or killed, it is gone */
    b->fd = fd;
    return VEIL_OK;
}

static veil_status write_all(int fd, const uint8_t *p, size_t n, veil_error *err)
{
    while (n) {
        const ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return veil_fail(err, VEIL_ERR_IO, "writing a request's body to a temporary file: %s",
                                     w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
    }
    return VEIL_OK;
}

veil_status veil_body_expect(veil_body *b, const char *tmp_dir, uint64_t declared, veil_error *err)
{
    if (declared > VEIL_BODY_SPILL) return open_spill(b, tmp_dir, err);
    if (!declared) return VEIL_OK;
    b->heap = malloc((size_t)declared); /* one allocation for the whole (small) body */
    b->cap = b->heap ? (size_t)declared : 0;
    return VEIL_OK;
}

veil_status veil_body_append(veil_body *b, const char *tmp_dir, const void *data, size_t n, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (b->fd < 0 && b->len + n > VEIL_BODY_SPILL) { /* grown past the bound: what is held moves to a file */
        VEIL_CHECK(open_spill(b, tmp_dir, err));
        VEIL_CHECK(write_all(b->fd, b->heap, b->len, err));
        free(b->heap);
        b->heap = NULL;
        b->cap = 0;
    }
    if (b->fd >= 0) {
        VEIL_CHECK(write_all(b->fd, data, n, err));
        b->len += n;
        return VEIL_OK;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n) cap *= 2;
        uint8_t *grown = realloc(b->heap, cap);
        if (!grown) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "a request's body");
        b->heap = grown;
        b->cap = cap;
    }
    memcpy(b->heap + b->len, data, n);
    b->len += n;
done:
    return st;
}

veil_status veil_body_finish(veil_body *b, const uint8_t **data, veil_error *err)
{
    *data = NULL;
    if (b->fd < 0) {
        *data = b->heap;
        return VEIL_OK;
    }
    if (!b->len) return VEIL_OK;
    if (!b->map) {
        void *m = mmap(NULL, b->len, PROT_READ, MAP_PRIVATE, b->fd, 0);
        if (m == MAP_FAILED) return veil_fail(err, VEIL_ERR_IO, "mapping a request's body: %s", strerror(errno));
        b->map = m;
        b->map_len = b->len;
    }
    *data = b->map;
    return VEIL_OK;
}

void veil_body_free(veil_body *b)
{
    if (b->map) munmap(b->map, b->map_len);
    if (b->fd >= 0) close(b->fd);
    free(b->heap);
    veil_body_init(b);
}

veil_status veil_body_tmp_open(const char *tmp_dir, veil_error *err)
{
    if (mkdir(tmp_dir, 0700) != 0 && errno != EEXIST)
        return veil_fail(err, VEIL_ERR_IO, "store %s: %s", tmp_dir, strerror(errno));
    DIR *d = opendir(tmp_dir);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "store %s: %s", tmp_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) { /* nothing should be named here: a file is a leftover of an older server */
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4400];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) unlink(path);
    }
    closedir(d);
    return VEIL_OK;
}
