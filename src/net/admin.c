/*
 * The admin scope: tenants and their usage, tokens added and revoked, a tenant's bundles deleted, models loaded
 * and unloaded. Every operation answers 403 to a token of another scope.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "net/serve_internal.h"

/* A copy of the tokens as last read (*n of them; NULL when none or out of memory: *failed). */
static veil_token_entry *copy_tokens(veil_server *s, size_t *n, int *failed)
{
    pthread_mutex_lock(&s->auth_lock);
    veil_srv_refresh_tokens(s);
    *n = s->n_tokens;
    veil_token_entry *t = *n ? malloc(*n * sizeof *t) : NULL;
    if (t) memcpy(t, s->tokens, *n * sizeof *t);
    pthread_mutex_unlock(&s->auth_lock);
    *failed = *n && !t;
    return t;
}

/* One tenant's entry of the list: its tokens (of the n in t), scope, stored bundles and bytes. */
static size_t write_tenant(veil_server *s, char *out, size_t cap, const veil_token_entry *t, size_t n,
                           const char *tenant, int first)
{
    size_t tokens = 0, bundles = 0;
    int admin = 0;
    for (size_t j = 0; j < n; j++)
        if (!strcmp(t[j].tenant, tenant)) {
            tokens++;
            admin |= t[j].admin;
        }
    uint64_t bytes = 0;
    if (s->store->shared && !s->store->usage(s, tenant, &bundles, &bytes)) bundles = bytes = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t k = 0; k < s->n_stored && !s->store->shared; k++)
        if (veil_srv_owned_by(s->stored[k], tenant)) {
            bundles++;
            bytes += s->stored[k]->bytes;
        }
    pthread_mutex_unlock(&s->lock);
    return (size_t)snprintf(out, cap, "%s{\"name\":\"%s\",\"tokens\":%zu,\"admin\":%s,\"bundles\":%zu,\"bytes\":%llu}",
                            first ? "" : ",", tenant, tokens, admin ? "true" : "false", bundles,
                            (unsigned long long)bytes);
}

enum MHD_Result veil_srv_list_tenants(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (!r->admin) return veil_srv_send_error(c, r, 403, "listing the tenants needs a token of the admin scope");
    size_t n = 0;
    int failed = 0;
    veil_token_entry *t = copy_tokens(s, &n, &failed);
    const size_t cap = 64 + n * (VEIL_TENANT_MAX + 128);
    char *body = failed ? NULL : malloc(cap);
    if (!body) {
        free(t);
        return veil_srv_send_error(c, r, 500, "out of memory");
    }
    size_t len = (size_t)snprintf(body, cap, "{\"tenants\":[");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= !strcmp(t[j].tenant, t[i].tenant);
        if (seen) continue;
        len += write_tenant(s, body + len, cap - len, t, n, t[i].tenant, first);
        first = 0;
    }
    len += (size_t)snprintf(body + len, cap - len, "]}\n");
    sodium_memzero(t, n * sizeof *t);
    free(t);
    enum MHD_Result ret = veil_srv_send_bytes(c, r, 200, "application/json", body, len);
    free(body);
    return ret;
}

/* POST /v1/tenants/NAME/tokens[?admin=1]: a new token, shown once in the answer (only its hash is kept). */
static enum MHD_Result add_token(veil_server *s, struct MHD_Connection *c, request *r, const char *tenant)
{
    const char *scope = veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "admin");
    if (scope && strcmp(scope, "1") != 0 && strcmp(scope, "0") != 0)
        return veil_srv_send_error(c, r, 400, "admin is 1 (the admin scope) or 0");
    const int admin = scope && !strcmp(scope, "1");
    char token[VEIL_TOKEN_SIZE], id[17], body[256];
    veil_error err = {0};
    const veil_status st = veil_token_add(s->store_dir, tenant, admin, token, id, &err);
    if (st != VEIL_OK) return veil_srv_send_error(c, r, veil_srv_status_for(st), "%s", err.detail);
    const int n = snprintf(body, sizeof body, "{\"tenant\":\"%s\",\"admin\":%s,\"id\":\"%s\",\"token\":\"%s\"}\n",
                           tenant, admin ? "true" : "false", id, token);
    const enum MHD_Result ret = veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
    sodium_memzero(token, sizeof token);
    sodium_memzero(body, sizeof body);
    return ret;
}

/* DELETE /v1/tokens/ID (one token) or /v1/tenants/NAME/tokens (all of a tenant's): effective at once. */
static enum MHD_Result revoke(veil_server *s, struct MHD_Connection *c, request *r, const char *id, const char *tenant)
{
    if (id && (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16))
        return veil_srv_send_error(c, r, 400, "a token id is 16 hex digits (veil token list, GET /v1/tenants)");
    size_t revoked = 0;
    veil_error err = {0};
    const veil_status st = veil_token_revoke(s->store_dir, id, tenant, &revoked, &err);
    if (st == VEIL_ERR_NOT_FOUND) return veil_srv_send_error(c, r, 404, "%s", err.detail);
    if (st != VEIL_OK) return veil_srv_send_error(c, r, 500, "%s", err.detail);
    char body[64];
    const int n = snprintf(body, sizeof body, "{\"revoked\":%zu}\n", revoked);
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

/* DELETE /v1/tenants/NAME/keys: the tenant's ownership of every bundle (a bundle goes with its last owner). */
static enum MHD_Result delete_tenant_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *tenant)
{
    key_entry **freed = malloc(MAX_STORED * sizeof *freed);
    if (!freed) return veil_srv_send_error(c, r, 500, "out of memory");
    size_t deleted = 0, n_freed = 0;
    veil_error err = {0};
    const long in_store = s->store->shared ? s->store->disown(s, NULL, tenant, &err) : 0;
    if (in_store < 0) {
        free(freed);
        return veil_srv_send_error(c, r, 503, "the keys were not deleted (try again): %s", err.detail);
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = s->n_stored; i-- > 0;) /* downwards: disowning moves the last entry into i */
        if (veil_srv_owned_by(s->stored[i], tenant)) {
            key_entry *gone = s->store->shared ? veil_srv_forget_owner(s, s->stored[i], tenant)
                                               : veil_srv_disown(s, s->stored[i], tenant);
            if (gone) freed[n_freed++] = gone;
            deleted++;
        }
    pthread_mutex_unlock(&s->lock);
    if (s->store->shared) deleted = (size_t)in_store; /* the store's count: the index holds only those used here */
    for (size_t i = 0; i < n_freed; i++) veil_srv_free_entry(freed[i]);
    free(freed);
    char body[160];
    const int n = snprintf(body, sizeof body, "{\"tenant\":\"%s\",\"deleted\":%zu}\n", tenant, deleted);
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

/* POST /v1/models/NAME/load: DIR/NAME.onnx served from now on. DELETE /v1/models/NAME: no longer served. */
static enum MHD_Result manage_model(veil_server *s, struct MHD_Connection *c, request *r, admin_op op,
                                    const char *name)
{
    char body[256];
    if (!veil_srv_valid_name(name, NAME_MAX_LEN - 1)) return veil_srv_send_error(c, r, 400, "malformed model name");
    if (op == ADMIN_UNLOAD_MODEL) {
        if (!veil_srv_unload(s, name)) return veil_srv_send_error(c, r, 404, "no model named '%s' is served", name);
        veil_srv_drop_unloaded(s);
        const int n = snprintf(body, sizeof body, "{\"name\":\"%s\",\"unloaded\":true}\n", name);
        return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
    }
    veil_error err = {0};
    const veil_status st = veil_srv_load_named(s, name, &err);
    if (st != VEIL_OK)
        return veil_srv_send_error(c, r, st == VEIL_ERR_NOT_FOUND ? 404 : st == VEIL_ERR_ARGUMENT ? 409 : 422, "%s",
                                   err.detail);
    const int n = snprintf(body, sizeof body, "{\"name\":\"%s\",\"loaded\":true}\n", name);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

enum MHD_Result veil_srv_admin(veil_server *s, struct MHD_Connection *c, request *r, admin_op op, const char *name)
{
    if (!r->admin) return veil_srv_send_error(c, r, 403, "this operation needs a token of the admin scope");
    const int on_tenant = op == ADMIN_ADD_TOKEN || op == ADMIN_REVOKE_TENANT || op == ADMIN_DELETE_TENANT_KEYS;
    if (on_tenant && !veil_tenant_name_valid(name))
        return veil_srv_send_error(c, r, 400, "a tenant is 1 to %d letters, digits, '_' or '-'", VEIL_TENANT_MAX);
    switch (op) {
    case ADMIN_ADD_TOKEN: return add_token(s, c, r, name);
    case ADMIN_REVOKE_TENANT: return revoke(s, c, r, NULL, name);
    case ADMIN_REVOKE_TOKEN: return revoke(s, c, r, name, NULL);
    case ADMIN_DELETE_TENANT_KEYS: return delete_tenant_keys(s, c, r, name);
    default: return manage_model(s, c, r, op, name);
    }
}
