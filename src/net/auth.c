/*
 * Bearer tokens: STORE/tokens as last read, and the tenant of a request.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include "net/serve_internal.h"

/* STORE/tokens again when it changed since last read (a token added or revoked): under auth_lock. A token file
 * that cannot be read or is malformed leaves no token valid (said on stderr) until it is fixed. */
/* A shared store's tokens, read whole (an admin's list of the tenants; a request looks its token up alone,
 * lookup_shared); when the store cannot be reached, those last read stay (a revocation needs the store). */
static void refresh_shared(veil_server *s)
{
    veil_token_entry *e = NULL;
    size_t n = 0;
    veil_error err = {0};
    const veil_status st = s->store->tokens(s, &e, &n, &err);
    if (st != VEIL_OK) {
        if (st != VEIL_ERR_IO) { /* a malformed row: no token is accepted until it is fixed */
            fprintf(stderr, "veil: %s: no token is accepted until it is fixed\n", err.detail);
            e = NULL;
            n = 0;
        } else {
            return;
        }
    }
    if (s->tokens) sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    s->tokens = e;
    s->n_tokens = n;
    s->tokens_read = 1;
}

void veil_srv_refresh_tokens(veil_server *s)
{
    if (s->store->shared) {
        refresh_shared(s);
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokens", s->store_dir);
    struct stat sb;
    if (stat(path, &sb) != 0) memset(&sb, 0, sizeof sb);
    const struct stat *o = &s->tokens_seen;
    if (s->tokens_read && sb.st_ino == o->st_ino && sb.st_dev == o->st_dev && sb.st_size == o->st_size &&
        sb.st_mtim.tv_sec == o->st_mtim.tv_sec && sb.st_mtim.tv_nsec == o->st_mtim.tv_nsec &&
        sb.st_ctim.tv_sec == o->st_ctim.tv_sec && sb.st_ctim.tv_nsec == o->st_ctim.tv_nsec)
        return;
    veil_token_entry *e = NULL;
    size_t n = 0;
    veil_error err = {0};
    if (veil_tokens_read(s->store_dir, &e, &n, &err) != VEIL_OK) {
        fprintf(stderr, "veil: %s: no token is accepted until it is fixed\n", err.detail);
        e = NULL;
        n = 0;
    }
    if (s->tokens) sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    s->tokens = e;
    s->n_tokens = n;
    s->tokens_seen = sb;
    s->tokens_read = 1;
}

/*
 * A shared store's token found by its hash (the store's index) at every request, so that a token added or
 * revoked through another replica counts at once. s->tokens keeps those known valid (the last whole read, and
 * every token found since): while the store cannot say, they stay valid (a revocation needs the store, so none
 * was missed); a token the store no longer has leaves it. Under auth_lock. 1: found (*out), or 0.
 */
static int lookup_shared(veil_server *s, const uint8_t hash[32], veil_token_entry *out)
{
    enum { MAX_KEPT = 4096 };
    veil_token_entry e;
    const int found = s->store->token(s, hash, &e);
    size_t at = s->n_tokens;
    for (size_t i = 0; i < s->n_tokens; i++)
        if (sodium_memcmp(hash, s->tokens[i].hash, 32) == 0) at = i;
    int ok = 0;
    if (found == 1) {
        if (at == s->n_tokens && s->n_tokens < MAX_KEPT) { /* kept for when the store cannot be reached */
            veil_token_entry *t = realloc(s->tokens, (s->n_tokens + 1) * sizeof *t);
            if (t) {
                s->tokens = t;
                s->n_tokens++;
            }
        }
        if (at < s->n_tokens) s->tokens[at] = e;
        *out = e;
        ok = 1;
    } else if (found == 0 && at < s->n_tokens) { /* revoked: forgotten */
        s->tokens[at] = s->tokens[s->n_tokens - 1];
        sodium_memzero(&s->tokens[s->n_tokens - 1], sizeof *s->tokens);
        s->n_tokens--;
    } else if (found < 0 && at < s->n_tokens) {
        *out = s->tokens[at];
        ok = 1;
    }
    sodium_memzero(&e, sizeof e);
    return ok;
}

/* The tenant of the request's bearer token into r: 1, or 0 without a valid one. Every token is compared, in
 * constant time. Without authentication (--no-auth), every request is the tenant "anonymous". */
int veil_srv_authenticate(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (s->cfg.no_auth) {
        snprintf(r->tenant, sizeof r->tenant, "%s", VEIL_TENANT_ANONYMOUS);
        return 1;
    }
    const char *h = veil_srv_lookup(c, r, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    const char *t = h + 7;
    while (*t == ' ') t++;
    size_t len = strlen(t);
    while (len && t[len - 1] == ' ') len--;
    if (len == 0 || len > 512) return 0;
    uint8_t hash[32];
    veil_token_hash(t, len, hash);
    int found = -1;
    pthread_mutex_lock(&s->auth_lock);
    if (s->store->shared && s->store->token) {
        veil_token_entry e;
        if (lookup_shared(s, hash, &e)) {
            snprintf(r->tenant, sizeof r->tenant, "%.64s", e.tenant);
            r->admin = e.admin;
            found = 0;
        }
        sodium_memzero(&e, sizeof e);
    } else {
        veil_srv_refresh_tokens(s);
        for (size_t i = 0; i < s->n_tokens; i++)
            if (sodium_memcmp(hash, s->tokens[i].hash, sizeof hash) == 0) found = (int)i;
        if (found >= 0) {
            snprintf(r->tenant, sizeof r->tenant, "%.64s", s->tokens[found].tenant);
            r->admin = s->tokens[found].admin;
        }
    }
    pthread_mutex_unlock(&s->auth_lock);
    sodium_memzero(hash, sizeof hash);
    return found >= 0;
}
