/*
 * /v1/groups/NAME/switch: collective public-key switching (PCKS; Mouchet et al., PETS 2021, section 4) through
 * the server (docs/net.md, "Groups"; docs/multiparty.md, "The server as aggregator"). A member PUTs the
 * receiver's public evaluation keys (and, when it is not the sum, the ciphertext set to switch); each party
 * posts its switching shares (veil party switch), each combined at once with those in so that a share made for
 * another ciphertext or receiver is refused; with the last one the server stores the set under the receiver's
 * keys, which only the receiver decrypts. The server holds no secret: the shares are public by design.
 *
 *   STORE/groups/NAME/  sw.to (the receiver's evaluation keys), sw.in (the set to switch, when not the sum),
 *                       s.pP (party P's switching shares), sset (t-out-of-N: the set of parties the first
 *                       share named), switched (the set under the receiver's keys)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/party_internal.h"
#include "veil/ml.h"

/* The ciphertext set the parties switch: the one a member PUT (sw.in), else the sum. */
const char *veil_srv_switch_input(const group_ref *g)
{
    char path[4200];
    file_in(path, sizeof path, g, "sw.in");
    return exists(path) ? "sw.in" : "sum";
}

/* Stores a public object under name once: 201 stored, 200 the same bytes again, 409 other bytes. */
static enum MHD_Result put_once(struct MHD_Connection *c, request *r, const group_ref *g, const char *name,
                                const char *what)
{
    char path[4200], body[96];
    file_in(path, sizeof path, g, name);
    if (exists(path)) {
        veil_buffer b = {0};
        const int same = veil_srv_group_read(path, &b, (size_t)1 << 32) && b.len == r->len && !memcmp(b.data, r->body, b.len);
        veil_buffer_free(&b);
        if (!same) return veil_srv_send_error(c, r, 409, "the group holds another %s (one switch per group)", what);
        const int n = snprintf(body, sizeof body, "{\"%s\":\"same\"}\n", name);
        return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
    }
    if (!veil_srv_group_write(g, name, r->body, r->len)) return veil_srv_send_error(c, r, 500, "the %s cannot be stored", what);
    const int n = snprintf(body, sizeof body, "{\"%s\":\"stored\"}\n", name);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* PUT /v1/groups/NAME/switch/to: the receiver's evaluation keys (RECEIVER/eval/eval.keys: public), towards which
 * the parties make their switching shares. */
enum MHD_Result veil_srv_put_switch_to(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    veil_eval_keys *ek = NULL;
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK || (info.flags & VEIL_FLAG_SECRET))
        return veil_srv_send_error(c, r, 422, "not the receiver's public evaluation keys%s%s", err.detail[0] ? ": " : "",
                                   err.detail);
    if (memcmp(info.params_hash, g->params_hash, sizeof g->params_hash) != 0)
        return veil_srv_send_error(c, r, 409, "the receiver's keys are of another parameter set than the group (make "
                                   "them for the group's plan)");
    if (veil_eval_keys_load(&ek, r->body, r->len, &err) != VEIL_OK)
        return veil_srv_send_error(c, r, 422, "not evaluation keys (RECEIVER/eval/eval.keys): %s", err.detail);
    veil_eval_keys_free(ek);
    return put_once(c, r, g, "sw.to", "receiver's keys");
}

/* PUT /v1/groups/NAME/switch/in: the ciphertext set to switch (under the joint keys), in place of the sum; before
 * the first switching share. */
enum MHD_Result veil_srv_put_switch_in(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_error err = {0};
    const int ok = veil_srv_group_check_ciphertexts(g, r->body, r->len, &err);
    if (!ok) return veil_srv_send_error(c, r, 409, "the group has no joint keys yet");
    if (ok < 0)
        return veil_srv_send_error(c, r, 422, "not a ciphertext set under the group's joint keys: %s", err.detail);
    char path[4200];
    file_in(path, sizeof path, g, "sw.in");
    if (!exists(path) && veil_srv_group_count(g, "s"))
        return veil_srv_send_error(c, r, 409, "switching shares of the sum are in already: the set to switch is fixed");
    return put_once(c, r, g, "sw.in", "set to switch");
}

/*
 * A party's switching share set (veil party switch): tag, kind (6, or 8 in a t-out-of-N group), party, and every
 * share in it a public party share of this group, of that party and kind (t-out-of-N: all naming one set of at
 * least t parties with the party in it, *set). 0: not one (why says so).
 */
static int switch_share_set(const uint8_t *data, size_t len, const group_ref *g, size_t party, uint64_t *set,
                            char *why, size_t cap)
{
    veil_set_contents v;
    veil_error err = {0};
    const uint64_t kind = is_threshold(g) ? VEIL_PARTY_THRESHOLD_SWITCH : VEIL_PARTY_SWITCH;
    if (veil_set_open(&v, data, len, &err) != VEIL_OK) {
        snprintf(why, cap, "not a share set: %.150s", err.detail);
        return 0;
    }
    int ok = v.meta_len == SHARE_SET_META && !memcmp(v.meta, "VEIL-PD1", 8) && !v.secret && v.count >= 2 &&
             le64(v.meta + 8) == kind && !memcmp(v.params_hash, g->params_hash, sizeof g->params_hash);
    if (!ok)
        snprintf(why, cap, "not a switching share set of this group (veil party switch%s writes it)",
                 is_threshold(g) ? " --set J1,J2,.." : "");
    if (ok && le64(v.meta + 16) != party) {
        snprintf(why, cap, "these are party %llu's shares, not party %zu's", (unsigned long long)le64(v.meta + 16), party);
        ok = 0;
    }
    *set = 0;
    const size_t set_at = SHARE_SET_AT;
    for (size_t i = 1; ok && i < v.count; i++) {
        const uint8_t *p = veil_srv_group_share(v.items[i].data, v.items[i].len, g);
        ok = p && le64(p + VEIL_PARTY_ID_BYTES) == party && le64(p + VEIL_PARTY_ID_BYTES + 16) == kind;
        if (ok && kind == VEIL_PARTY_THRESHOLD_SWITCH) {
            const uint64_t s = le64(p + set_at);
            ok = s && (i == 1 || s == *set);
            *set = s;
        }
        if (!ok) snprintf(why, cap, "share %zu of the set is not party %zu's switching share of this group", i, party);
    }
    veil_set_contents_clear(&v);
    if (ok && kind == VEIL_PARTY_THRESHOLD_SWITCH) ok = veil_srv_group_set_fits(g, *set, party, why, cap);
    return ok;
}

/* The set of parties whose switching shares combine: all N, or the t-out-of-N set the first share named. */
static uint64_t switch_set(const group_ref *g)
{
    const uint64_t set = veil_srv_group_set(g, "sset");
    return set ? set : all_parties(g);
}

/* The switching shares in (of the parties of set), read into files[0..*count). */
static int read_switch_shares(const group_ref *g, uint64_t set, veil_buffer *files, size_t *count)
{
    char name[32], path[4200];
    *count = 0;
    for (size_t p = 1; p <= g->parties; p++) {
        if (!(set >> (p - 1) & 1)) continue;
        snprintf(name, sizeof name, "s.p%zu", p);
        file_in(path, sizeof path, g, name);
        if (!exists(path)) continue;
        if (!veil_srv_group_read(path, &files[*count], (size_t)1 << 32)) return 0;
        (*count)++;
    }
    return 1;
}

/*
 * Combines the switching shares in (veil_ciphertexts_switch_joint_ex: each share checked against the ciphertext
 * and the receiver's key it was made for, the smudging's error against the default tolerance). With every share
 * of the set in, the result is stored ("switched"); with some missing, only whether those in fit: *complete 0.
 * 0: they do not (why says so: the message of the combination, which names the party).
 */
static int try_switch(const group_ref *g, int *complete, char *why, size_t cap)
{
    veil_keyset *ks = veil_srv_group_joint(g);
    veil_eval_keys *to = NULL;
    veil_ciphertexts *cts = NULL, *out = NULL;
    veil_buffer files[VEIL_PARTY_MAX] = {{0}}, b = {0}, saved = {0}, group = {0};
    veil_error err = {0};
    size_t count = 0, members = 0;
    char path[4200];
    const uint64_t set = switch_set(g);
    for (uint64_t m = set; m; m &= m - 1) members++;
    file_in(path, sizeof path, g, "sw.to");
    int ok = ks && veil_srv_group_read(path, &b, (size_t)1 << 32) && veil_eval_keys_load(&to, b.data, b.len, &err) == VEIL_OK;
    veil_buffer_free(&b);
    file_in(path, sizeof path, g, veil_srv_switch_input(g));
    ok = ok && veil_srv_group_read(path, &b, (size_t)1 << 32) && veil_ciphertexts_load(&cts, ks, NULL, b.data, b.len, &err) == VEIL_OK;
    file_in(path, sizeof path, g, "group");
    ok = ok && veil_srv_group_read(path, &group, 4096) && read_switch_shares(g, set, files, &count);
    if (!ok) snprintf(why, cap, "a stored file cannot be read: %.180s", err.detail);
    *complete = count == members;
    double smudged = 0;
    const veil_status st = ok ? veil_ciphertexts_switch_joint_ex(&out, ks, group.data, group.len, cts, to, files,
                                                                 count, 0, &smudged, &err)
                              : VEIL_ERR_IO;
    if (ok && st != VEIL_OK && !(!*complete && st == VEIL_ERR_ARGUMENT)) { /* ARGUMENT: a party's share missing */
        snprintf(why, cap, "%.300s", err.detail);
        ok = 0;
    }
    if (ok && *complete)
        ok = veil_ciphertexts_save(&saved, out, &err) == VEIL_OK && veil_srv_group_write(g, "switched", saved.data, saved.len);
    if (!ok && !why[0]) snprintf(why, cap, "the switched set cannot be stored");
    for (size_t k = 0; k < count; k++) veil_buffer_free(&files[k]);
    veil_buffer_free(&b);
    veil_buffer_free(&saved);
    veil_buffer_free(&group);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(cts);
    veil_eval_keys_free(to);
    veil_keyset_free(ks);
    return ok;
}

/*
 * When a combination fails on another party's share than the one just posted (t-out-of-N: the shares are checked
 * against the ciphertext only once t are in, so an earlier share may be the one at fault), that share is removed
 * too, so that an honest party is not blocked by it. The combination's message names the party ("party J's
 * share ..."). Returns J when removed, else 0.
 */
static size_t drop_named_share(const group_ref *g, size_t posted, const char *why)
{
    const char *at = strstr(why, "party ");
    unsigned long named = 0;
    char tail[8] = "";
    if (!at || sscanf(at, "party %lu%7s", &named, tail) != 2 || strncmp(tail, "'s", 2) != 0 || named == posted ||
        named < 1 || named > g->parties)
        return 0;
    char name[32], path[4200];
    snprintf(name, sizeof name, "s.p%lu", named);
    file_in(path, sizeof path, g, name);
    return exists(path) && unlink(path) == 0 ? (size_t)named : 0;
}

/*
 * POST /v1/groups/NAME/switch?party=P: party P's switching shares of the set to switch towards the receiver's keys
 * (veil party switch --to RECEIVER/eval). Each is checked against what is in (a share for another ciphertext or
 * receiver, of another kind or set: 422, not kept); with the last one the server combines them into the set
 * under the receiver's keys (GET .../switch).
 */
enum MHD_Result veil_srv_post_switch_share(struct MHD_Connection *c, request *r, const group_ref *g)
{
    const size_t party = veil_srv_group_party_arg(c, r, g);
    if (!party) return veil_srv_send_error(c, r, 400, "?party=P (1..%zu) names whose shares these are", g->parties);
    char why[400] = "", name[32], path[4200];
    file_in(path, sizeof path, g, "sw.to");
    if (!exists(path)) return veil_srv_send_error(c, r, 409, "no receiver yet (PUT .../switch/to: its evaluation keys)");
    file_in(path, sizeof path, g, veil_srv_switch_input(g));
    if (!exists(path)) return veil_srv_send_error(c, r, 409, "nothing to switch yet (PUT .../switch/in, or the sum)");
    uint64_t set = 0;
    if (!switch_share_set(r->body, r->len, g, party, &set, why, sizeof why))
        return veil_srv_send_error(c, r, 422, "%s", why);
    file_in(path, sizeof path, g, "sset");
    const int named = exists(path);
    if (set && named && switch_set(g) != set)
        return veil_srv_send_error(c, r, 409, "these shares name another set of parties than the shares in already");
    file_in(path, sizeof path, g, "switched");
    if (exists(path)) return veil_srv_send_error(c, r, 409, "the set is switched already (GET .../switch)");
    snprintf(name, sizeof name, "s.p%zu", party);
    file_in(path, sizeof path, g, name);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %zu's switching shares are in already", party);
    if (!veil_srv_group_claim(g, party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %zu of this group", party);
    const int new_set = set && !named;
    if ((new_set && !veil_srv_group_write_set(g, "sset", set)) || !veil_srv_group_write(g, name, r->body, r->len)) {
        if (new_set) { /* no share behind it: it would hold every later share to this set */
            file_in(path, sizeof path, g, "sset");
            unlink(path);
        }
        return veil_srv_send_error(c, r, 500, "the shares cannot be stored");
    }
    int complete = 0;
    if (!try_switch(g, &complete, why, sizeof why)) {
        unlink(path); /* not kept */
        const size_t culprit = drop_named_share(g, party, why);
        if (set && !veil_srv_group_count(g, "s")) {
            file_in(path, sizeof path, g, "sset");
            unlink(path);
        }
        if (culprit)
            return veil_srv_send_error(c, r, 422, "the switching shares do not combine: %s (party %zu's shares are "
                                       "removed: it sends them again; party %zu sends its own again)", why, culprit,
                                       party);
        return veil_srv_send_error(c, r, 422, "party %zu's switching shares do not combine with those in: %s", party, why);
    }
    char body[128];
    const int n = snprintf(body, sizeof body, "{\"party\":%zu,\"in\":%zu,\"parties\":%zu,\"switched\":%s}\n", party,
                           veil_srv_group_count(g, "s"), g->parties, complete ? "true" : "false");
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* GET /v1/groups/NAME/switch[/to|/in]: the switched set (once every share is in), the receiver's keys, the set to
 * switch. */
enum MHD_Result veil_srv_get_switch(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest)
{
    char path[4200];
    const char *file = !*rest ? "switched" : !strcmp(rest, "/to") ? "sw.to" : !strcmp(rest, "/in") ? veil_srv_switch_input(g) : NULL;
    if (!file) return veil_srv_send_error(c, r, 404, "switch, switch/to or switch/in");
    file_in(path, sizeof path, g, file);
    if (!exists(path)) {
        if (*rest) return veil_srv_send_error(c, r, 409, "the group has no %s yet", rest[1] == 't' ? "receiver" : "set to switch");
        uint64_t set = switch_set(g);
        size_t in = 0, members = 0;
        for (size_t p = 1; p <= g->parties; p++) {
            if (!(set >> (p - 1) & 1)) continue;
            char name[32];
            snprintf(name, sizeof name, "s.p%zu", p);
            file_in(path, sizeof path, g, name);
            members++;
            in += exists(path);
        }
        return veil_srv_send_error(c, r, 409, "%zu of the %zu parties' switching shares are in", in, members);
    }
    return veil_srv_group_send(c, r, g, file, NULL, NULL);
}

