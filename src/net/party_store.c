/*
 * /v1/groups' stored files (STORE/groups/NAME/, listed in party_api.c): reading and writing them, counting the
 * parties' files, who speaks for a party, and the checks every stored object shares. Used by party_switch.c and
 * party_api.c (party_internal.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/party_internal.h"
#include "veil/ml.h"

/* Reads a whole stored file (at most max bytes). */
int veil_srv_group_read(const char *path, veil_buffer *out, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    struct stat st;
    int ok = fstat(fileno(f), &st) == 0 && st.st_size >= 0 && (uint64_t)st.st_size <= max;
    out->len = ok ? (size_t)st.st_size : 0;
    out->data = ok ? malloc(out->len + 1) : NULL;
    ok = ok && out->data && fread(out->data, 1, out->len, f) == out->len;
    fclose(f);
    if (!ok) veil_buffer_free(out);
    return ok;
}

int veil_srv_group_write(const group_ref *g, const char *name, const uint8_t *data, size_t len)
{
    char path[4200];
    veil_error err = {0};
    file_in(path, sizeof path, g, name);
    return veil_file_write_atomic(path, data, len, &err) == VEIL_OK;
}

/* How many of the N parties' files "PREFIX.pP" are stored. */
size_t veil_srv_group_count(const group_ref *g, const char *prefix)
{
    char name[64], path[4200];
    size_t n = 0;
    for (size_t p = 1; p <= g->parties; p++) {
        snprintf(name, sizeof name, "%s.p%zu", prefix, p);
        file_in(path, sizeof path, g, name);
        n += exists(path);
    }
    return n;
}

/* Whether the tenant may speak for party p: the first tenant that does keeps it (recorded in party.P). */
int veil_srv_group_claim(const group_ref *g, size_t p, const char *tenant)
{
    char name[32], path[4200];
    snprintf(name, sizeof name, "party.%zu", p);
    file_in(path, sizeof path, g, name);
    veil_buffer b = {0};
    if (veil_srv_group_read(path, &b, VEIL_TENANT_MAX)) {
        const int mine = b.len == strlen(tenant) && !memcmp(b.data, tenant, b.len);
        veil_buffer_free(&b);
        return mine;
    }
    return veil_srv_group_write(g, name, (const uint8_t *)tenant, strlen(tenant));
}

/* The party number of a ?party= argument (0: missing or out of 1..N). */
size_t veil_srv_group_party_arg(struct MHD_Connection *c, request *r, const group_ref *g)
{
    const char *v = veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "party");
    char *end = NULL;
    if (!v || !*v) return 0;
    errno = 0;
    const unsigned long long p = strtoull(v, &end, 10);
    return errno || *end || p < 1 || p > g->parties ? 0 : (size_t)p;
}

enum MHD_Result veil_srv_group_send(struct MHD_Connection *c, request *r, const group_ref *g, const char *name,
                                 const char *header, const char *value)
{
    char path[4200];
    veil_buffer b = {0};
    file_in(path, sizeof path, g, name);
    if (!veil_srv_group_read(path, &b, (size_t)1 << 32)) return veil_srv_send_error(c, r, 500, "a stored file cannot be read");
    const enum MHD_Result ret = veil_srv_send_with(c, r, 200, "application/octet-stream", b.data, b.len, header, value);
    veil_buffer_free(&b);
    return ret;
}

/* The group's joint key set, loaded (NULL: none stored yet). */
veil_keyset *veil_srv_group_joint(const group_ref *g)
{
    char path[4200];
    veil_buffer b = {0};
    veil_keyset *ks = NULL;
    veil_error err = {0};
    file_in(path, sizeof path, g, "joint");
    if (veil_srv_group_read(path, &b, (size_t)1 << 32)) veil_keyset_load(&ks, b.data, b.len, &err);
    veil_buffer_free(&b);
    return ks;
}

/* The payload of an uncompressed object of the given type and size, of the group (NULL: it is not one). */
const uint8_t *veil_srv_group_object(const uint8_t *data, size_t len, veil_object_type type, size_t payload,
                                   const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    if (veil_object_peek(&info, data, len, &err) != VEIL_OK || info.type != type || info.flags != 0 ||
        info.payload_bytes != payload || len < VEIL_HEADER_BYTES + payload ||
        memcmp(info.params_hash, g->params_hash, sizeof g->params_hash) != 0 ||
        memcmp(data + VEIL_HEADER_BYTES, g->id, VEIL_PARTY_ID_BYTES) != 0)
        return NULL;
    return data + VEIL_HEADER_BYTES;
}

/* The payload of a share of a party share set: a party share of the group, long enough to name a set. */
const uint8_t *veil_srv_group_share(const uint8_t *data, size_t len, const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    if (veil_object_peek(&info, data, len, &err) != VEIL_OK || info.payload_bytes <= SHARE_SET_AT + 8) return NULL;
    return veil_srv_group_object(data, len, VEIL_OBJECT_PARTY_SHARE, info.payload_bytes, g);
}

/* The set of parties stored in the group's file name (8 bytes, little-endian; 0: none). */
uint64_t veil_srv_group_set(const group_ref *g, const char *name)
{
    char path[4200];
    veil_buffer b = {0};
    uint64_t set = 0;
    file_in(path, sizeof path, g, name);
    if (veil_srv_group_read(path, &b, 8) && b.len == 8) set = le64(b.data);
    veil_buffer_free(&b);
    return set;
}

int veil_srv_group_write_set(const group_ref *g, const char *name, uint64_t set)
{
    uint8_t raw[8];
    for (int i = 0; i < 8; i++) raw[i] = (uint8_t)(set >> (8 * i));
    return veil_srv_group_write(g, name, raw, 8);
}

int veil_srv_group_set_fits(const group_ref *g, uint64_t set, size_t party, char *why, size_t cap)
{
    size_t members = 0;
    for (uint64_t m = set; m; m &= m - 1) members++;
    if ((set & ~all_parties(g)) || members < g->threshold || party < 1 || party > g->parties ||
        !(set >> (party - 1) & 1)) {
        snprintf(why, cap, "party %zu's shares name a set of %zu parties: at least %zu of 1..%zu, the party among them",
                 party, members, g->threshold, g->parties);
        return 0;
    }
    return 1;
}

int veil_srv_group_check_ciphertexts(const group_ref *g, const uint8_t *data, size_t len, veil_error *err)
{
    veil_keyset *ks = veil_srv_group_joint(g);
    if (!ks) return 0;
    veil_ciphertexts *cts = NULL;
    const veil_status st = veil_ciphertexts_load(&cts, ks, NULL, data, len, err);
    veil_ciphertexts_free(cts);
    veil_keyset_free(ks);
    return st == VEIL_OK ? 1 : -1;
}
