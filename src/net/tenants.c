/*
 * The server's tenants: bearer tokens kept as BLAKE2b-256 hashes in STORE/tokens (docs/net.md), written by
 * `veil token` (atomic rewrite, mode 0600, under a lock file) and read by the server when the file changes.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "veil/net.h"
#include "core/core_internal.h"
#include "net/net_internal.h"

#define TOKENS_HEADER "veil-tokens 1"
#define TOKENS_FILE_MAX (4u << 20)
#define TOKEN_PREFIX "veil_"

int veil_tenant_name_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++) {
        const char ch = name[n];
        if (n >= VEIL_TENANT_MAX || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return 0;
    }
    return n > 0 && strcmp(name, VEIL_TENANT_ANONYMOUS) != 0;
}

void veil_token_hash(const char *token, size_t len, uint8_t hash[32])
{
    crypto_generichash(hash, 32, (const uint8_t *)token, len, NULL, 0);
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

static int unhex(uint8_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < 2 * n; i++) {
        const char ch = s[i];
        const int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return 0;
        if (i % 2 == 0) out[i / 2] = (uint8_t)(v << 4);
        else out[i / 2] |= (uint8_t)v;
    }
    return s[2 * n] == 0;
}

static void token_path(char *out, size_t cap, const char *store_dir, const char *leaf)
{
    snprintf(out, cap, "%s/%s", store_dir, leaf);
}

/* Parses the file's text: the header line, then one "HASH TENANT SCOPE CREATED" line per token. */
static veil_status parse_tokens(const char *text, size_t len, const char *path, veil_token_entry **out, size_t *count,
                                veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_token_entry *e = NULL;
    size_t n = 0, cap = 0, line_no = 0;
    const char *at = text, *end = text + len;
    while (at < end) {
        const char *nl = memchr(at, '\n', (size_t)(end - at));
        if (!nl) VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: the last line has no newline (a cut-off file?)", path);
        char line[256];
        const size_t ll = (size_t)(nl - at);
        line_no++;
        if (ll >= sizeof line) VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s, line %zu: too long", path, line_no);
        memcpy(line, at, ll);
        line[ll] = 0;
        at = nl + 1;
        if (line_no == 1) {
            if (strcmp(line, TOKENS_HEADER) != 0)
                VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: not a token file of veil (no '" TOKENS_HEADER "' line)", path);
            continue;
        }
        char hash[80], tenant[80], scope[16];
        long long created = 0;
        int used = 0;
        if (sscanf(line, "%79s %79s %15s %lld%n", hash, tenant, scope, &created, &used) != 4 || line[used] != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s, line %zu: not 'HASH TENANT SCOPE CREATED'", path, line_no);
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            veil_token_entry *grown = realloc(e, cap * sizeof *e);
            if (!grown) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "tokens");
            e = grown;
        }
        veil_token_entry *t = &e[n];
        memset(t, 0, sizeof *t);
        if (strlen(hash) != 64 || !unhex(t->hash, hash, 32))
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s, line %zu: the hash is not 64 hex digits", path, line_no);
        if (!veil_tenant_name_valid(tenant))
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s, line %zu: bad tenant name", path, line_no);
        if (strcmp(scope, "tenant") != 0 && strcmp(scope, "admin") != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s, line %zu: the scope is tenant or admin", path, line_no);
        snprintf(t->tenant, sizeof t->tenant, "%.64s", tenant);
        t->admin = strcmp(scope, "admin") == 0;
        t->created = created;
        n++;
    }
    if (line_no == 0) VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: empty (not a token file of veil)", path);
    *out = e;
    *count = n;
    e = NULL;
done:
    free(e);
    return st;
}

veil_status veil_tokens_read(const char *store_dir, veil_token_entry **out, size_t *count, veil_error *err)
{
    veil_status st = VEIL_OK;
    char path[4096];
    veil_buffer b = {0};
    *out = NULL;
    *count = 0;
    if (veil_store_is_url(store_dir)) return veil_pg_tokens_read(store_dir, out, count, err);
    token_path(path, sizeof path, store_dir, "tokens");
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT) return VEIL_OK; /* no token yet */
        return veil_fail(err, VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) return veil_fail(err, VEIL_ERR_IO, "%s: not a regular file", path);
    if (sb.st_mode & 0022) return veil_fail(err, VEIL_ERR_IO, "%s: writable by others (chmod 600)", path);
    VEIL_CHECK(veil_file_read(&b, path, TOKENS_FILE_MAX, err));
    VEIL_CHECK(parse_tokens((const char *)b.data, b.len, path, out, count, err));
done:
    veil_buffer_free(&b);
    return st;
}

/* Writes the entries as the token file: a temporary file (0600), fsync, rename over STORE/tokens. */
static veil_status write_tokens(const char *store_dir, const veil_token_entry *e, size_t n, veil_error *err)
{
    veil_status st = VEIL_OK;
    char path[4096], tmp[4200];
    token_path(path, sizeof path, store_dir, "tokens");
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = NULL;
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(f = fdopen(fd, "w"))) {
        if (fd >= 0) close(fd);
        return veil_fail(err, VEIL_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    fprintf(f, TOKENS_HEADER "\n");
    for (size_t i = 0; i < n; i++) {
        char h[65];
        hex(h, e[i].hash, 32);
        fprintf(f, "%s %s %s %lld\n", h, e[i].tenant, e[i].admin ? "admin" : "tenant", e[i].created);
    }
    const int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0 || bad) VEIL_FAIL(err, VEIL_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0) VEIL_FAIL(err, VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    return VEIL_OK;
done:
    unlink(tmp);
    return st;
}

/* The store folder (made 0700 when missing) and its lock file, locked exclusively: *fd to close. */
static veil_status lock_store(const char *store_dir, int *fd, veil_error *err)
{
    char path[4096];
    if (mkdir(store_dir, 0700) != 0 && errno != EEXIST)
        return veil_fail(err, VEIL_ERR_IO, "store %s: %s", store_dir, strerror(errno));
    token_path(path, sizeof path, store_dir, "tokens.lock");
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) return veil_fail(err, VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    if (flock(*fd, LOCK_EX) != 0) {
        close(*fd);
        *fd = -1;
        return veil_fail(err, VEIL_ERR_IO, "%s: %s", path, strerror(errno));
    }
    return VEIL_OK;
}

static void token_id(char id[17], const uint8_t hash[32])
{
    hex(id, hash, 8);
}

veil_status veil_token_add(const char *store_dir, const char *tenant, int admin, char token[VEIL_TOKEN_SIZE],
                           char id[17], veil_error *err)
{
    VEIL_REQUIRE(store_dir, err);
    VEIL_REQUIRE(tenant, err);
    VEIL_REQUIRE(token, err);
    if (!veil_tenant_name_valid(tenant))
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "tenant '%.80s': 1 to %d letters, digits, '_' or '-' (and not '" VEIL_TENANT_ANONYMOUS "')",
                         tenant, VEIL_TENANT_MAX);
    if (sodium_init() < 0) return veil_fail(err, VEIL_ERR_RANDOM, "libsodium failed to initialise");
    veil_status st = VEIL_OK;
    veil_token_entry *e = NULL;
    size_t n = 0;
    int fd = -1;
    uint8_t raw[32];
    token[0] = 0;
    if (!veil_store_is_url(store_dir)) { /* a PostgreSQL store: one row inserted (below) */
        VEIL_CHECK(lock_store(store_dir, &fd, err));
        VEIL_CHECK(veil_tokens_read(store_dir, &e, &n, err));
    }
    veil_token_entry *grown = realloc(e, (n + 1) * sizeof *e);
    if (!grown) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "tokens");
    e = grown;
    randombytes_buf(raw, sizeof raw);
    memcpy(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    hex(token + sizeof TOKEN_PREFIX - 1, raw, sizeof raw);
    memset(&e[n], 0, sizeof e[n]);
    veil_token_hash(token, strlen(token), e[n].hash);
    snprintf(e[n].tenant, sizeof e[n].tenant, "%.64s", tenant);
    e[n].admin = admin != 0;
    e[n].created = (long long)time(NULL);
    if (id) token_id(id, e[n].hash);
    if (veil_store_is_url(store_dir)) VEIL_CHECK(veil_pg_token_add(store_dir, &e[n], err));
    else VEIL_CHECK(write_tokens(store_dir, e, n + 1, err));
done:
    sodium_memzero(raw, sizeof raw);
    if (st != VEIL_OK) sodium_memzero(token, VEIL_TOKEN_SIZE);
    if (fd >= 0) close(fd);
    free(e);
    return st;
}

veil_status veil_token_revoke(const char *store_dir, const char *id, const char *tenant, size_t *revoked,
                              veil_error *err)
{
    VEIL_REQUIRE(store_dir, err);
    if (!id == !tenant) return veil_fail(err, VEIL_ERR_ARGUMENT, "revoke a token by its id, or a tenant's tokens");
    if (veil_store_is_url(store_dir)) return veil_pg_token_revoke(store_dir, id, tenant, revoked, err);
    veil_status st = VEIL_OK;
    veil_token_entry *e = NULL;
    size_t n = 0, kept = 0;
    int fd = -1;
    VEIL_CHECK(lock_store(store_dir, &fd, err));
    VEIL_CHECK(veil_tokens_read(store_dir, &e, &n, err));
    for (size_t i = 0; i < n; i++) {
        char tid[17];
        token_id(tid, e[i].hash);
        const int match = id ? strcmp(tid, id) == 0 : strcmp(e[i].tenant, tenant) == 0;
        if (!match) e[kept++] = e[i];
    }
    if (kept == n) VEIL_FAIL(err, VEIL_ERR_NOT_FOUND, "no token %s %.80s", id ? "with id" : "of tenant", id ? id : tenant);
    VEIL_CHECK(write_tokens(store_dir, e, kept, err));
    if (revoked) *revoked = n - kept;
done:
    if (fd >= 0) close(fd);
    free(e);
    return st;
}

veil_status veil_token_list(const char *store_dir, veil_buffer *out, veil_error *err)
{
    VEIL_REQUIRE(store_dir, err);
    VEIL_REQUIRE(out, err);
    veil_status st = VEIL_OK;
    veil_token_entry *e = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    VEIL_CHECK(veil_tokens_read(store_dir, &e, &n, err));
    const size_t cap = 64 + n * (VEIL_TENANT_MAX + 64);
    char *text = malloc(cap);
    if (!text) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "tokens");
    size_t len = (size_t)snprintf(text, cap, "%-16s  %-6s  %-20s  %s\n", "ID", "SCOPE", "CREATED", "TENANT");
    for (size_t i = 0; i < n; i++) {
        char tid[17], when[32] = "?";
        token_id(tid, e[i].hash);
        const time_t t = (time_t)e[i].created;
        struct tm tm;
        if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        len += (size_t)snprintf(text + len, cap - len, "%-16s  %-6s  %-20s  %s\n", tid, e[i].admin ? "admin" : "tenant",
                                when, e[i].tenant);
    }
    out->data = (uint8_t *)text;
    out->len = len;
done:
    free(e);
    return st;
}
