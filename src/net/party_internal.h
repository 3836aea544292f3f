/*
 * /v1/groups' parts (src/net), each calling only into those before it: party_store.c (the group's stored files),
 * party_switch.c (public-key switching to a receiver), party_api.c (the groups, their rounds, updates, sums,
 * decryption shares, deletion and limits; the dispatch). Every function runs under the server's lock.
 */
#ifndef VEIL_NET_PARTY_INTERNAL_H
#define VEIL_NET_PARTY_INTERNAL_H

#include <stdio.h>
#include <sys/stat.h>
#include "net/serve_internal.h"
#include "veil/party.h"
#include "veil/serial.h"

#define SHARE_SET_META 64                                   /* src/ml/party.c: "VEIL-PD1", kind, party, count, key id */
#define SHARE_SET_AT (VEIL_PARTY_ID_BYTES + 6 * 8 + 32 + 8) /* a threshold share's set (src/serial/serial.c) */

/* A group as a request sees it: its folder and what its group object says. */
typedef struct group_ref {
    char dir[4096];
    uint8_t id[VEIL_PARTY_ID_BYTES];
    uint8_t params_hash[VEIL_PARAMS_HASH_BYTES];
    size_t parties;
    size_t threshold; /* 0 or parties: N-out-of-N */
} group_ref;

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static inline void file_in(char *out, size_t cap, const group_ref *g, const char *name)
{
    snprintf(out, cap, "%s/%.100s", g->dir, name);
}

static inline int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether the group is t-out-of-N with t < N (box keys, deals, threshold decryption and switching shares). */
static inline int is_threshold(const group_ref *g)
{
    return g->threshold && g->threshold < g->parties;
}

/* The set of all the group's parties (bit j-1: party j). */
static inline uint64_t all_parties(const group_ref *g)
{
    return g->parties == 64 ? ~UINT64_C(0) : (UINT64_C(1) << g->parties) - 1;
}

/* ---- party_store.c ---- */
/* Reads a whole stored file (at most max bytes): 1, or 0 (out freed). */
int veil_srv_group_read(const char *path, veil_buffer *out, size_t max);
/* Writes the group's file name atomically (veil_file_write_atomic). */
int veil_srv_group_write(const group_ref *g, const char *name, const uint8_t *data, size_t len);
/* How many of the N parties' files "PREFIX.pP" are stored. */
size_t veil_srv_group_count(const group_ref *g, const char *prefix);
/* Whether the tenant may speak for party p: the first tenant that does keeps it (recorded in party.P). */
int veil_srv_group_claim(const group_ref *g, size_t p, const char *tenant);
/* The party number of a ?party= argument (0: missing or out of 1..N). */
size_t veil_srv_group_party_arg(struct MHD_Connection *c, request *r, const group_ref *g);
/* Answers with a stored file (header: one more header, NULL for none). */
enum MHD_Result veil_srv_group_send(struct MHD_Connection *c, request *r, const group_ref *g, const char *name,
                                    const char *header, const char *value);
/* The group's joint key set, loaded (NULL: none stored yet). */
veil_keyset *veil_srv_group_joint(const group_ref *g);
/* The payload of an uncompressed object of the given type and size, of the group (NULL: it is not one). */
const uint8_t *veil_srv_group_object(const uint8_t *data, size_t len, veil_object_type type, size_t payload,
                                     const group_ref *g);
/* The payload of one share of a party share set: a party share of the group that can name a set (NULL: not one). */
const uint8_t *veil_srv_group_share(const uint8_t *data, size_t len, const group_ref *g);
/* The set of parties (bit j-1: party j) stored in the group's file name (0: none), and writing it. */
uint64_t veil_srv_group_set(const group_ref *g, const char *name);
int veil_srv_group_write_set(const group_ref *g, const char *name, uint64_t set);
/* Whether data is a ciphertext set under the group's joint keys: 1 it is, 0 the group has no joint keys yet, -1 it
 * is not (err says why). */
int veil_srv_group_check_ciphertexts(const group_ref *g, const uint8_t *data, size_t len, veil_error *err);
/* Whether a t-out-of-N set of parties is valid for party's shares: at least t of 1..N, the party among them (0:
 * why says not). */
int veil_srv_group_set_fits(const group_ref *g, uint64_t set, size_t party, char *why, size_t cap);

/* ---- party_switch.c ---- */
/* The stored name of the ciphertext set the parties switch: "sw.in" when a member PUT one, else "sum". */
const char *veil_srv_switch_input(const group_ref *g);
/* PUT .../switch/to (the receiver's evaluation keys), PUT .../switch/in (the set to switch), POST
 * .../switch?party=P (a party's switching shares), GET .../switch[/to|/in] (rest: what follows "switch"). */
enum MHD_Result veil_srv_put_switch_to(struct MHD_Connection *c, request *r, const group_ref *g);
enum MHD_Result veil_srv_put_switch_in(struct MHD_Connection *c, request *r, const group_ref *g);
enum MHD_Result veil_srv_post_switch_share(struct MHD_Connection *c, request *r, const group_ref *g);
enum MHD_Result veil_srv_get_switch(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest);

#endif /* VEIL_NET_PARTY_INTERNAL_H */
