/*
 * /v1/groups: the server as a multi-party aggregator (docs/multiparty.md, "The server as aggregator";
 * docs/net.md, "Groups"). The server relays the parties' public round shares and, once it holds the group's
 * plan, combines each round itself (the joint key set, the round-1 aggregates, the joint evaluation keys);
 * it sums the encrypted updates and relays the decryption shares of the sum, and for t-out-of-N groups the
 * box keys, the sealed deals (each to its recipient only) and the threshold shares of a decrypting set. It
 * combines the parties' public-key switching shares (PCKS) of the sum, or of a set a member PUT, into that set
 * under a receiver's keys (party_switch.c). It never holds a secret share, and it validates every object it keeps (Veil framing
 * and digest, the group id, the party, the round). Groups are deleted by their maker or the admin scope, and
 * limited per tenant (--tenant-max-groups) and in bytes (--group-max-bytes).
 *
 *   STORE/groups/NAME/  group (the group object), creator (the tenant that made it), member.TENANT (one per
 *                       tenant that joined), party.P (the tenant that speaks for party P), plan, r1.pP r2.pP
 *                       (round shares), joint (the joint key set), r1agg (the round-1 aggregates), eval (the
 *                       joint evaluation keys), b.pP (box keys), deal.fI.tJ (sealed deals), u.pP and u.pP.n (an
 *                       encrypted update and its record count), sum and sum.n, d.pP (a decryption share of the
 *                       sum), dset (the decrypting set); sw.to (the receiver's evaluation keys), sw.in (the set
 *                       to switch, when not the sum), s.pP (switching shares), sset (t-out-of-N: their set),
 *                       switched (the set under the receiver's keys)
 *
 * Every file is written with veil_file_write_atomic (temporary file, fsync, rename, fsync of the folder), as
 * key bundles are. A group is visible only to the tenants that PUT it (the same bytes): to any other it does
 * not exist (404). The first tenant that sends something as party P speaks for P from then on (403 for
 * another). All operations run under the server's lock: they are small (a sum of N ciphertext sets at most).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "net/party_internal.h"
#include "veil/serial.h"
#include "veil/party.h"
#include "veil/ml.h"

#define GROUP_META_BYTES 56 /* the party files' metadata (tools/cmd_party.c): tag, group id, party, round */
#define MAX_RECORDS (UINT64_C(1) << 40)
#define MAX_GROUPS 1024

/* A group object's id, party count and parameter hash (its payload: id, parties, threshold; veil/serial.h). */
static int parse_group(const uint8_t *data, size_t len, group_ref *g, char *why, size_t cap)
{
    veil_object_info info;
    veil_error err = {0};
    if (veil_object_peek(&info, data, len, &err) != VEIL_OK) {
        snprintf(why, cap, "not a Veil object: %.180s", err.detail);
        return 0;
    }
    if (info.type != VEIL_OBJECT_PARTY_GROUP || info.flags != 0 || info.payload_bytes != VEIL_PARTY_ID_BYTES + 16 ||
        len < VEIL_HEADER_BYTES + info.payload_bytes) {
        snprintf(why, cap, "not a group object (veil party init writes G/group)");
        return 0;
    }
    const uint8_t *p = data + VEIL_HEADER_BYTES;
    memcpy(g->id, p, VEIL_PARTY_ID_BYTES);
    const uint64_t parties = le64(p + VEIL_PARTY_ID_BYTES), threshold = le64(p + VEIL_PARTY_ID_BYTES + 8);
    if (parties < 2 || parties > VEIL_PARTY_MAX || threshold > parties) {
        snprintf(why, cap, "a group of %llu parties (threshold %llu) is not served (2..%d parties)",
                 (unsigned long long)parties, (unsigned long long)threshold, VEIL_PARTY_MAX);
        return 0;
    }
    g->parties = (size_t)parties;
    g->threshold = (size_t)threshold;
    memcpy(g->params_hash, info.params_hash, sizeof g->params_hash);
    return 1;
}

/* Under lock: the group NAME as the tenant sees it (0: none, or not its). */
static int open_group(veil_server *s, const char *name, const char *tenant, group_ref *g)
{
    char path[4200];
    veil_buffer b = {0};
    char why[256];
    snprintf(g->dir, sizeof g->dir, "%s/groups/%s", s->store_dir, name);
    snprintf(path, sizeof path, "%s/member.%s", g->dir, tenant);
    if (!exists(path)) return 0;
    file_in(path, sizeof path, g, "group");
    const int ok = veil_srv_group_read(path, &b, 4096) && parse_group(b.data, b.len, g, why, sizeof why);
    veil_buffer_free(&b);
    return ok;
}

/* How many groups the store holds (at most MAX_GROUPS are made). */
static size_t count_groups(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* fsync of a folder (a rename in it made durable). */
static void sync_folder(const char *dir)
{
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- the groups' lifecycle and limits ---------------------------------------------------------------------- */

/* How many groups the tenant is a member of. */
static size_t tenant_groups(const char *groups_dir, const char *tenant)
{
    DIR *d = opendir(groups_dir);
    size_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4400];
        snprintf(path, sizeof path, "%.4000s/%.200s/member.%.64s", groups_dir, e->d_name, tenant);
        n += exists(path);
    }
    closedir(d);
    return n;
}

/* The bytes the group's files hold. */
static uint64_t group_bytes(const group_ref *g)
{
    DIR *d = opendir(g->dir);
    uint64_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        char path[4400];
        snprintf(path, sizeof path, "%s/%.200s", g->dir, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

/* Removes the files of a folder, then the folder (1: gone). */
static int remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%.200s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(dir) == 0;
}

/*
 * DELETE /v1/groups/NAME: by the tenant that made the group (its first PUT), or by the admin scope; another member
 * gets 403, any other tenant 404 (the group does not exist for it). The folder is renamed to a hidden name first
 * (the group is gone at once, even if a crash interrupts the removal of its files), then removed.
 */
static enum MHD_Result delete_group(veil_server *s, struct MHD_Connection *c, request *r, const char *name)
{
    char dir[4200], path[4400], gone[4200];
    snprintf(dir, sizeof dir, "%s/groups/%s", s->store_dir, name);
    snprintf(path, sizeof path, "%s/member.%s", dir, r->tenant);
    if (!exists(dir) || (!r->admin && !exists(path)))
        return veil_srv_send_error(c, r, 404, "no group named '%s'", name);
    snprintf(path, sizeof path, "%s/creator", dir);
    veil_buffer b = {0};
    const int recorded = veil_srv_group_read(path, &b, VEIL_TENANT_MAX);
    const int mine = recorded && b.len == strlen(r->tenant) && !memcmp(b.data, r->tenant, b.len);
    veil_buffer_free(&b);
    if (!r->admin && recorded && !mine)
        return veil_srv_send_error(c, r, 403, "only the tenant that made group '%s' (its first PUT) or the admin scope "
                                   "deletes it", name);
    snprintf(gone, sizeof gone, "%s/groups/.deleted.%s", s->store_dir, name);
    remove_folder(gone); /* a removal a crash interrupted */
    if (rename(dir, gone) != 0) return veil_srv_send_error(c, r, 500, "the group cannot be removed");
    snprintf(path, sizeof path, "%s/groups", s->store_dir);
    sync_folder(path);
    if (!remove_folder(gone)) return veil_srv_send_error(c, r, 500, "the group's files cannot all be removed");
    char body[200];
    const int n = snprintf(body, sizeof body, "{\"group\":\"%s\",\"deleted\":true}\n", name);
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

/* 413 when the body would take the group past --group-max-bytes (what it holds and the body together). */
static int over_group_bytes(veil_server *s, struct MHD_Connection *c, request *r, const group_ref *g, const char *name,
                            enum MHD_Result *ret)
{
    const uint64_t held = group_bytes(g), limit = s->cfg.group_max_bytes;
    if (held + r->len <= limit) return 0;
    *ret = veil_srv_send_error(c, r, 413, "group '%s' holds %llu bytes: this object's %zu bytes would take it past its "
                               "limit of %llu bytes (veil serve --group-max-bytes); delete the group when it is done "
                               "(DELETE /v1/groups/NAME)", name, (unsigned long long)held, r->len,
                               (unsigned long long)limit);
    return 1;
}

/* PUT /v1/groups/NAME: creates the group, or joins it (the same group object). */
static enum MHD_Result put_group(veil_server *s, struct MHD_Connection *c, request *r, const char *name)
{
    group_ref g;
    char why[256], path[4200];
    if (!parse_group(r->body, r->len, &g, why, sizeof why)) return veil_srv_send_error(c, r, 422, "%s", why);
    snprintf(g.dir, sizeof g.dir, "%s/groups", s->store_dir);
    if (mkdir(g.dir, 0700) != 0 && errno != EEXIST) return veil_srv_send_error(c, r, 500, "cannot make %s", g.dir);
    if (count_groups(g.dir) >= MAX_GROUPS) {
        snprintf(g.dir, sizeof g.dir, "%s/groups/%s", s->store_dir, name);
        if (!exists(g.dir)) return veil_srv_send_error(c, r, 429, "the store holds %d groups, its limit", MAX_GROUPS);
    }
    snprintf(g.dir, sizeof g.dir, "%s/groups/%s", s->store_dir, name);
    snprintf(path, sizeof path, "%s/member.%s", g.dir, r->tenant);
    if (!exists(path)) {
        char groups[4200];
        snprintf(groups, sizeof groups, "%s/groups", s->store_dir);
        const size_t in = tenant_groups(groups, r->tenant);
        if (in >= s->cfg.tenant_max_groups) {
            char msg[300];
            snprintf(msg, sizeof msg, "tenant %s is a member of %zu groups, its limit (veil serve --tenant-max-groups "
                     "%zu): delete a group it no longer needs (DELETE /v1/groups/NAME)", r->tenant, in,
                     s->cfg.tenant_max_groups);
            return veil_srv_send_error_with(c, r, 429, MHD_HTTP_HEADER_RETRY_AFTER, "60", msg);
        }
    }
    unsigned status = 201;
    file_in(path, sizeof path, &g, "group");
    if (mkdir(g.dir, 0700) != 0) {
        if (errno != EEXIST) return veil_srv_send_error(c, r, 500, "cannot make the group's folder");
        veil_buffer b = {0};
        const int same = veil_srv_group_read(path, &b, 4096) && b.len == r->len && !memcmp(b.data, r->body, b.len);
        veil_buffer_free(&b);
        if (!same) return veil_srv_send_error(c, r, 409, "a group named '%s' exists with another group object", name);
        status = 200;
    } else if (!veil_srv_group_write(&g, "creator", (const uint8_t *)r->tenant, strlen(r->tenant)) ||
               !veil_srv_group_write(&g, "group", r->body, r->len)) {
        remove_folder(g.dir); /* half made: neither usable nor deletable by its tenant */
        return veil_srv_send_error(c, r, 500, "the group cannot be stored");
    }
    char member[128];
    snprintf(member, sizeof member, "member.%s", r->tenant);
    if (!veil_srv_group_write(&g, member, (const uint8_t *)"", 0)) return veil_srv_send_error(c, r, 500, "cannot record the member");
    char body[160];
    const int n = snprintf(body, sizeof body, "{\"group\":\"%s\",\"parties\":%zu,\"joined\":true}\n", name, g.parties);
    return veil_srv_send_bytes(c, r, status, "application/json", body, (size_t)n);
}

/* The group's plan, loaded (NULL: none stored). */
static veil_plan *load_plan(const group_ref *g)
{
    char path[4200];
    veil_buffer b = {0};
    veil_plan *plan = NULL;
    veil_error err = {0};
    file_in(path, sizeof path, g, "plan");
    if (veil_srv_group_read(path, &b, (size_t)1 << 30)) veil_plan_load(&plan, b.data, b.len, &err);
    veil_buffer_free(&b);
    return plan;
}

/* Reads the N parties' round-R share files; shares[k * per + j] points into files[k] (object 1 + j). */
static int load_round_files(const group_ref *g, size_t round, veil_buffer *files, veil_buffer **shares, size_t *per,
                            char *why, size_t cap)
{
    char name[32], path[4200];
    veil_error err = {0};
    *per = 0;
    for (size_t k = 0; k < g->parties; k++) {
        veil_set_contents v;
        snprintf(name, sizeof name, "r%zu.p%zu", round, k + 1);
        file_in(path, sizeof path, g, name);
        if (!veil_srv_group_read(path, &files[k], (size_t)1 << 32) || veil_set_open(&v, files[k].data, files[k].len, &err) != VEIL_OK) {
            snprintf(why, cap, "party %zu's round-%zu shares cannot be read", k + 1, round);
            return 0;
        }
        if (k == 0) {
            *per = v.count > 1 ? v.count - 1 : 0;
            *shares = calloc(g->parties * *per, sizeof **shares);
        }
        const int fits = *shares && *per && v.count == 1 + *per;
        for (size_t j = 0; fits && j < *per; j++)
            (*shares)[k * *per + j] = (veil_buffer){(uint8_t *)v.items[1 + j].data, v.items[1 + j].len};
        veil_set_contents_clear(&v);
        if (!fits) {
            snprintf(why, cap, "party %zu's round-%zu shares hold %zu objects, party 1's %zu (another plan's?)", k + 1,
                     round, v.count - 1, *per);
            return 0;
        }
    }
    return 1;
}

/* The round-1 aggregates as a party file (veil party combine --round 1 writes JOINT/round1.agg the same way). */
static int save_aggregates(const group_ref *g, const veil_plan *plan, veil_buffer *aggs, veil_error *err)
{
    uint8_t meta[GROUP_META_BYTES] = {'V', 'E', 'I', 'L', '-', 'P', 'A', '1'};
    memcpy(meta + 8, g->id, VEIL_PARTY_ID_BYTES);
    meta[48] = 1; /* party 0 (an aggregate), round 1 */
    veil_buffer items[3] = {{0}, aggs[0], aggs[1]}, out = {0};
    int ok = veil_params_save(&items[0], veil_plan_params(plan), 0, err) == VEIL_OK &&
             veil_set_save(&out, veil_plan_params(plan), meta, sizeof meta, items, 3, err) == VEIL_OK &&
             veil_srv_group_write(g, "r1agg", out.data, out.len);
    veil_buffer_free(&items[0]);
    veil_buffer_free(&out);
    return ok;
}

/*
 * Once all N parties' round-R shares are in and the group has its plan: the server combines them (the
 * aggregates of veil/party.h, by veil_ml_party_combine_round1/2): round 1 gives the joint key set ("joint") and
 * the round-1 aggregates each party needs for round 2 ("r1agg"), round 2 the joint evaluation keys ("eval").
 * 1: done, or nothing to do (no plan: the parties combine and PUT the joint keys themselves); 0: the shares do
 * not combine (why says so).
 */
static int combine_round(const group_ref *g, size_t round, char *why, size_t cap)
{
    veil_plan *plan = load_plan(g);
    if (!plan) return 1;
    veil_buffer files[VEIL_PARTY_MAX] = {{0}}, *shares = NULL, out = {0}, aggs[2] = {{0}, {0}}, joint = {0}, agg = {0};
    veil_error err = {0};
    size_t per = 0;
    veil_set_contents v = {0};
    int ok = load_round_files(g, round, files, &shares, &per, why, cap);
    if (ok && round == 1) {
        ok = veil_ml_party_combine_round1(&out, aggs, plan, g->id, g->parties, g->threshold, shares, &err) == VEIL_OK &&
             veil_srv_group_write(g, "joint", out.data, out.len) && save_aggregates(g, plan, aggs, &err);
    } else if (ok) {
        char path[4200];
        file_in(path, sizeof path, g, "joint");
        int have = veil_srv_group_read(path, &joint, (size_t)1 << 32);
        file_in(path, sizeof path, g, "r1agg");
        have = have && veil_srv_group_read(path, &agg, (size_t)1 << 32) && veil_set_open(&v, agg.data, agg.len, &err) == VEIL_OK &&
               v.count == 3;
        if (!have) snprintf(why, cap, "the server did not combine round 1 (the plan came after it)");
        veil_buffer r1 = have ? (veil_buffer){(uint8_t *)v.items[2].data, v.items[2].len} : (veil_buffer){0};
        ok = have &&
             veil_ml_party_combine_round2(&out, plan, joint.data, joint.len, g->id, g->parties, g->threshold, &r1,
                                          shares, per, &err) == VEIL_OK &&
             veil_srv_group_write(g, "eval", out.data, out.len);
    }
    if (!ok && err.detail[0]) snprintf(why, cap, "%.190s", err.detail);
    else if (!ok && !why[0]) snprintf(why, cap, "the combination cannot be stored");
    veil_set_contents_clear(&v);
    for (size_t k = 0; k < g->parties; k++) veil_buffer_free(&files[k]);
    free(shares);
    veil_buffer_free(&out);
    veil_buffer_free(&aggs[0]);
    veil_buffer_free(&aggs[1]);
    veil_buffer_free(&joint);
    veil_buffer_free(&agg);
    veil_plan_free(plan);
    return ok;
}

/* PUT /v1/groups/NAME/plan: the group's plan (G/plan), so that the server combines the round shares itself;
 * before all round-1 shares are in, and later PUTs must bring the same bytes. */
static enum MHD_Result put_plan(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    veil_plan *plan = NULL;
    char path[4200];
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK || veil_plan_load(&plan, r->body, r->len, &err) != VEIL_OK)
        return veil_srv_send_error(c, r, 422, "not a plan: %s", err.detail);
    const int same_params = !memcmp(info.params_hash, g->params_hash, sizeof g->params_hash);
    veil_plan_free(plan);
    if (!same_params) return veil_srv_send_error(c, r, 409, "this plan is of another parameter set than the group");
    file_in(path, sizeof path, g, "plan");
    if (exists(path)) {
        veil_buffer b = {0};
        const int same = veil_srv_group_read(path, &b, (size_t)1 << 30) && b.len == r->len && !memcmp(b.data, r->body, b.len);
        veil_buffer_free(&b);
        if (!same) return veil_srv_send_error(c, r, 409, "the group has another plan");
        return veil_srv_send_bytes(c, r, 200, "application/json", "{\"plan\":\"same\"}\n", 16);
    }
    if (veil_srv_group_count(g, "r1") == g->parties)
        return veil_srv_send_error(c, r, 409, "the plan comes before all round-1 shares are in");
    if (!veil_srv_group_write(g, "plan", r->body, r->len)) return veil_srv_send_error(c, r, 500, "the plan cannot be stored");
    return veil_srv_send_bytes(c, r, 201, "application/json", "{\"plan\":\"stored\"}\n", 18);
}

/*
 * POST /v1/groups/NAME/boxkeys: a party's box key (t-out-of-N: PI/box.key; public, the deals to PI are sealed
 * to it). Payload: group id, party (u64), the X25519 key (veil/serial.h).
 */
static enum MHD_Result post_box_key(struct MHD_Connection *c, request *r, const group_ref *g)
{
    if (!is_threshold(g)) return veil_srv_send_error(c, r, 409, "an N-out-of-N group has no box keys");
    const uint8_t *p = veil_srv_group_object(r->body, r->len, VEIL_OBJECT_PARTY_BOX_KEY,
                                    VEIL_PARTY_ID_BYTES + 8 + VEIL_PARTY_BOX_KEY_BYTES, g);
    if (!p) return veil_srv_send_error(c, r, 422, "not a box key of this group (veil party keygen --round 1 writes PI/box.key)");
    const uint64_t party = le64(p + VEIL_PARTY_ID_BYTES);
    if (party < 1 || party > g->parties) return veil_srv_send_error(c, r, 422, "a box key of party %llu", (unsigned long long)party);
    char name[32], path[4200];
    snprintf(name, sizeof name, "b.p%llu", (unsigned long long)party);
    file_in(path, sizeof path, g, name);
    if (!veil_srv_group_claim(g, (size_t)party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %llu of this group", (unsigned long long)party);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %llu's box key is in already", (unsigned long long)party);
    if (!veil_srv_group_write(g, name, r->body, r->len)) return veil_srv_send_error(c, r, 500, "the box key cannot be stored");
    char body[96];
    const int n = snprintf(body, sizeof body, "{\"party\":%llu,\"in\":%zu,\"parties\":%zu}\n", (unsigned long long)party,
                           veil_srv_group_count(g, "b"), g->parties);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* GET /v1/groups/NAME/boxkeys/P: party P's box key, once all N are in. */
static enum MHD_Result get_box_key(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest)
{
    unsigned party = 0;
    char tail = 0, name[32];
    if (sscanf(rest, "%u%c", &party, &tail) != 1 || party < 1 || party > g->parties)
        return veil_srv_send_error(c, r, 404, "boxkeys/PARTY: party 1..%zu", g->parties);
    const size_t in = veil_srv_group_count(g, "b");
    if (in < g->parties) return veil_srv_send_error(c, r, 409, "%zu of %zu box keys are in", in, g->parties);
    snprintf(name, sizeof name, "b.p%u", party);
    return veil_srv_group_send(c, r, g, name, NULL, NULL);
}

/*
 * POST /v1/groups/NAME/deals: party I's deal for party J (PI/deal.toJ, sealed to J's box key: the server
 * relays it and learns nothing). Payload: group id, from, to, parties, threshold (u64 each), nonce, the box.
 */
static enum MHD_Result post_deal(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    if (!is_threshold(g)) return veil_srv_send_error(c, r, 409, "an N-out-of-N group has no deals");
    const int peek = veil_object_peek(&info, r->body, r->len, &err) == VEIL_OK;
    const uint8_t *p = peek && info.payload_bytes > VEIL_PARTY_ID_BYTES + 32 && info.payload_bytes < (1u << 24)
                           ? veil_srv_group_object(r->body, r->len, VEIL_OBJECT_PARTY_DEAL, info.payload_bytes, g) : NULL;
    if (!p) return veil_srv_send_error(c, r, 422, "not a deal of this group (veil party keygen --round 3 writes PI/deal.toJ)");
    const uint64_t from = le64(p + 32), to = le64(p + 40), parties = le64(p + 48), threshold = le64(p + 56);
    if (from < 1 || from > g->parties || to < 1 || to > g->parties || parties != g->parties || threshold != g->threshold)
        return veil_srv_send_error(c, r, 422, "a deal from party %llu to %llu of %llu (threshold %llu): not this group's",
                                   (unsigned long long)from, (unsigned long long)to, (unsigned long long)parties,
                                   (unsigned long long)threshold);
    char name[64], path[4200];
    snprintf(name, sizeof name, "deal.f%llu.t%llu", (unsigned long long)from, (unsigned long long)to);
    file_in(path, sizeof path, g, name);
    if (!veil_srv_group_claim(g, (size_t)from, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %llu of this group", (unsigned long long)from);
    if (exists(path))
        return veil_srv_send_error(c, r, 409, "party %llu's deal for party %llu is in already", (unsigned long long)from,
                                   (unsigned long long)to);
    if (!veil_srv_group_write(g, name, r->body, r->len)) return veil_srv_send_error(c, r, 500, "the deal cannot be stored");
    return veil_srv_send_bytes(c, r, 201, "application/json", "{\"deal\":\"stored\"}\n", 19);
}

/* GET /v1/groups/NAME/deals/I/J: party I's deal for party J, to J's tenant only. */
static enum MHD_Result get_deal(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest)
{
    unsigned from = 0, to = 0;
    char tail = 0, name[64], path[4200];
    if (sscanf(rest, "%u/%u%c", &from, &to, &tail) != 2 || from < 1 || from > g->parties || to < 1 || to > g->parties)
        return veil_srv_send_error(c, r, 404, "deals/FROM/TO: parties 1..%zu", g->parties);
    snprintf(name, sizeof name, "party.%u", to);
    file_in(path, sizeof path, g, name);
    veil_buffer b = {0};
    const int mine = veil_srv_group_read(path, &b, VEIL_TENANT_MAX) && b.len == strlen(r->tenant) && !memcmp(b.data, r->tenant, b.len);
    veil_buffer_free(&b);
    if (!mine) return veil_srv_send_error(c, r, 403, "only party %u's tenant fetches the deals addressed to it", to);
    snprintf(name, sizeof name, "deal.f%u.t%u", from, to);
    file_in(path, sizeof path, g, name);
    if (!exists(path)) return veil_srv_send_error(c, r, 409, "party %u's deal for party %u is not in yet", from, to);
    return veil_srv_group_send(c, r, g, name, NULL, NULL);
}

/* POST /v1/groups/NAME/shares: a party's round shares (veil party keygen --round 1|2: PI/roundR.share). */
static enum MHD_Result post_share(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_set_contents v;
    veil_error err = {0};
    if (veil_set_open(&v, r->body, r->len, &err) != VEIL_OK)
        return veil_srv_send_error(c, r, 422, "not a party's round shares: %s", err.detail);
    unsigned bad = 0;
    char why[200] = "";
    size_t party = 0, round = 0;
    if (v.meta_len != GROUP_META_BYTES || memcmp(v.meta, "VEIL-PR1", 8) != 0 || v.secret || v.count < 2) {
        bad = 422;
        snprintf(why, sizeof why, "not a party's round shares (veil party keygen writes PI/round1.share)");
    } else if (memcmp(v.meta + 8, g->id, VEIL_PARTY_ID_BYTES) != 0 ||
               memcmp(v.params_hash, g->params_hash, sizeof g->params_hash) != 0) {
        bad = 409;
        snprintf(why, sizeof why, "these shares belong to another group");
    } else {
        const uint64_t p = le64(v.meta + 40), rd = le64(v.meta + 48);
        if (p < 1 || p > g->parties || rd < 1 || rd > 2) {
            bad = 422;
            snprintf(why, sizeof why, "party %llu, round %llu: parties are 1..%zu, rounds 1 and 2",
                     (unsigned long long)p, (unsigned long long)rd, g->parties);
        }
        party = (size_t)p;
        round = (size_t)rd;
    }
    veil_set_contents_clear(&v);
    if (bad) return veil_srv_send_error(c, r, bad, "%s", why);
    char name[32], path[4200];
    snprintf(name, sizeof name, "r%zu.p%zu", round, party);
    file_in(path, sizeof path, g, name);
    if (!veil_srv_group_claim(g, party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %zu of this group", party);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %zu's round-%zu shares are in already", party, round);
    if (!veil_srv_group_write(g, name, r->body, r->len)) return veil_srv_send_error(c, r, 500, "the shares cannot be stored");
    const size_t in = veil_srv_group_count(g, round == 1 ? "r1" : "r2");
    if (in == g->parties && !combine_round(g, round, why, sizeof why)) {
        unlink(path); /* the last share is taken back: the round stays open, with nothing of it combined */
        const char *made[2] = {round == 1 ? "joint" : "eval", round == 1 ? "r1agg" : "eval"};
        for (int i = 0; i < 2; i++) {
            char other[4200];
            file_in(other, sizeof other, g, made[i]);
            unlink(other);
        }
        return veil_srv_send_error(c, r, 422, "the %zu parties' round-%zu shares do not combine: %s", g->parties, round,
                                   why);
    }
    char body[160];
    file_in(path, sizeof path, g, round == 1 ? "r1agg" : "eval");
    const int n = snprintf(body, sizeof body, "{\"party\":%zu,\"round\":%zu,\"in\":%zu,\"parties\":%zu,\"combined\":%s}\n",
                           party, round, in, g->parties, exists(path) ? "true" : "false");
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* GET /v1/groups/NAME/shares/R/P: party P's round-R shares, once all N parties' are in. */
static enum MHD_Result get_share(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest)
{
    unsigned round = 0, party = 0;
    char tail = 0;
    if (sscanf(rest, "%u/%u%c", &round, &party, &tail) != 2 || round < 1 || round > 2 || party < 1 || party > g->parties)
        return veil_srv_send_error(c, r, 404, "shares/ROUND/PARTY: round 1 or 2, party 1..%zu", g->parties);
    char prefix[8], name[32];
    snprintf(prefix, sizeof prefix, "r%u", round);
    const size_t in = veil_srv_group_count(g, prefix);
    if (in < g->parties)
        return veil_srv_send_error(c, r, 409, "round %u: %zu of %zu parties' shares are in", round, in, g->parties);
    snprintf(name, sizeof name, "r%u.p%u", round, party);
    return veil_srv_group_send(c, r, g, name, NULL, NULL);
}

/* PUT /v1/groups/NAME/joint: the joint key set (JOINT/joint.keys: public), once all round-1 shares are in;
 * later PUTs must bring the same bytes (each party checks that the server holds the keys it combined). */
static enum MHD_Result put_joint(struct MHD_Connection *c, request *r, const group_ref *g)
{
    veil_object_info info;
    veil_error err = {0};
    veil_keyset *ks = NULL;
    if (veil_srv_group_count(g, "r1") < g->parties)
        return veil_srv_send_error(c, r, 409, "the joint keys come after all round-1 shares");
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK || (info.flags & VEIL_FLAG_SECRET))
        return veil_srv_send_error(c, r, 422, "not a public key set%s%s", err.detail[0] ? ": " : "", err.detail);
    if (memcmp(info.params_hash, g->params_hash, sizeof g->params_hash) != 0)
        return veil_srv_send_error(c, r, 409, "this key set is of another parameter set than the group");
    if (veil_keyset_load(&ks, r->body, r->len, &err) != VEIL_OK)
        return veil_srv_send_error(c, r, 422, "not a key set: %s", err.detail);
    veil_keyset_free(ks);
    char path[4200];
    file_in(path, sizeof path, g, "joint");
    if (exists(path)) {
        veil_buffer b = {0};
        const int same = veil_srv_group_read(path, &b, (size_t)1 << 32) && b.len == r->len && !memcmp(b.data, r->body, b.len);
        veil_buffer_free(&b);
        if (!same) return veil_srv_send_error(c, r, 409, "the server holds other joint keys for this group");
        return veil_srv_send_bytes(c, r, 200, "application/json", "{\"joint\":\"same\"}\n", 17);
    }
    if (!veil_srv_group_write(g, "joint", r->body, r->len)) return veil_srv_send_error(c, r, 500, "the keys cannot be stored");
    return veil_srv_send_bytes(c, r, 201, "application/json", "{\"joint\":\"stored\"}\n", 19);
}

/* POST /v1/groups/NAME/updates?party=P[&records=K]: party P's encrypted update under the joint keys. */
static enum MHD_Result post_update(struct MHD_Connection *c, request *r, const group_ref *g)
{
    const size_t party = veil_srv_group_party_arg(c, r, g);
    if (!party) return veil_srv_send_error(c, r, 400, "?party=P (1..%zu) names whose update this is", g->parties);
    const char *rv = veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "records");
    unsigned long long records = 1;
    if (rv) {
        char *end = NULL;
        errno = 0;
        records = strtoull(rv, &end, 10);
        if (errno || !*rv || *end || records < 1 || records > MAX_RECORDS)
            return veil_srv_send_error(c, r, 400, "?records=K: a record count of 1..2^40");
    }
    char name[32], path[4200];
    snprintf(name, sizeof name, "u.p%zu", party);
    file_in(path, sizeof path, g, name);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %zu's update is in already", party);
    veil_error err = {0};
    const int ok = veil_srv_group_check_ciphertexts(g, r->body, r->len, &err);
    if (!ok) return veil_srv_send_error(c, r, 409, "the group has no joint keys yet (PUT /v1/groups/NAME/joint)");
    if (ok < 0)
        return veil_srv_send_error(c, r, 422, "not a ciphertext set under the group's joint keys: %s", err.detail);
    if (!veil_srv_group_claim(g, party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %zu of this group", party);
    char count[32];
    const int n = snprintf(count, sizeof count, "%llu", records);
    char nname[40];
    snprintf(nname, sizeof nname, "%s.n", name);
    if (!veil_srv_group_write(g, nname, (const uint8_t *)count, (size_t)n) || !veil_srv_group_write(g, name, r->body, r->len))
        return veil_srv_send_error(c, r, 500, "the update cannot be stored");
    char body[128];
    const int m = snprintf(body, sizeof body, "{\"party\":%zu,\"records\":%llu,\"in\":%zu,\"parties\":%zu}\n", party,
                           records, veil_srv_group_count(g, "u"), g->parties);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)m);
}

/* The sum of the N updates, stored as "sum" with the records in "sum.n" (made once: the parties decrypt the
 * same bytes). 0 with *status and why on failure. */
static int make_sum(const group_ref *g, unsigned *status, char *why, size_t cap)
{
    char path[4200], name[40];
    file_in(path, sizeof path, g, "sum");
    if (exists(path)) return 1;
    const size_t in = veil_srv_group_count(g, "u");
    if (in < g->parties) {
        *status = 409;
        snprintf(why, cap, "%zu of %zu parties' updates are in", in, g->parties);
        return 0;
    }
    veil_keyset *ks = veil_srv_group_joint(g);
    veil_ciphertexts *acc = NULL, *one = NULL;
    veil_buffer b = {0}, out = {0};
    veil_error err = {0};
    unsigned long long records = 0;
    int ok = ks != NULL;
    for (size_t p = 1; ok && p <= g->parties; p++) {
        snprintf(name, sizeof name, "u.p%zu.n", p);
        file_in(path, sizeof path, g, name);
        ok = veil_srv_group_read(path, &b, 31);
        if (ok) {
            char text[32];
            memcpy(text, b.data, b.len);
            text[b.len] = 0;
            records += strtoull(text, NULL, 10);
        }
        veil_buffer_free(&b);
        snprintf(name, sizeof name, "u.p%zu", p);
        file_in(path, sizeof path, g, name);
        ok = ok && veil_srv_group_read(path, &b, (size_t)1 << 32) &&
             veil_ciphertexts_load(acc ? &one : &acc, ks, NULL, b.data, b.len, &err) == VEIL_OK;
        if (ok && one) ok = veil_ciphertexts_add(acc, one, &err) == VEIL_OK;
        veil_ciphertexts_free(one);
        one = NULL;
        veil_buffer_free(&b);
    }
    ok = ok && veil_ciphertexts_save(&out, acc, &err) == VEIL_OK;
    char count[32];
    const int n = snprintf(count, sizeof count, "%llu", records);
    ok = ok && veil_srv_group_write(g, "sum.n", (const uint8_t *)count, (size_t)n) && veil_srv_group_write(g, "sum", out.data, out.len);
    veil_buffer_free(&out);
    veil_ciphertexts_free(acc);
    veil_keyset_free(ks);
    if (!ok) {
        *status = err.status == VEIL_ERR_MISMATCH ? 409 : 500;
        snprintf(why, cap, "the updates cannot be summed: %s", err.detail[0] ? err.detail : "a stored file is unreadable");
    }
    return ok;
}

/* GET /v1/groups/NAME/sum: the sum of the N encrypted updates (X-Veil-Records: the records they declared). */
static enum MHD_Result get_sum(struct MHD_Connection *c, request *r, const group_ref *g)
{
    unsigned status = 500;
    char why[400], path[4200];
    if (!make_sum(g, &status, why, sizeof why)) return veil_srv_send_error(c, r, status, "%s", why);
    veil_buffer n = {0};
    file_in(path, sizeof path, g, "sum.n");
    char records[32] = "0";
    if (veil_srv_group_read(path, &n, 31)) {
        memcpy(records, n.data, n.len);
        records[n.len] = 0;
    }
    veil_buffer_free(&n);
    return veil_srv_group_send(c, r, g, "sum", "X-Veil-Records", records);
}

/* POST /v1/groups/NAME/decrypt?party=P: party P's decryption share of the sum (veil party decrypt). */

/*
 * A t-out-of-N decryption share set (veil party decrypt --set): its party and the set of decrypting parties
 * (bit j-1: party j), read from every share in it and checked to agree. 0: not one (why says so).
 */
static int threshold_share_set(const uint8_t *data, size_t len, const group_ref *g, size_t *party, uint64_t *set,
                               char *why, size_t cap)
{
    veil_set_contents v;
    veil_error err = {0};
    if (veil_set_open(&v, data, len, &err) != VEIL_OK) {
        snprintf(why, cap, "not a share set: %.150s", err.detail);
        return 0;
    }
    int ok = v.meta_len == SHARE_SET_META && !memcmp(v.meta, "VEIL-PD1", 8) && !v.secret && v.count >= 2 &&
             le64(v.meta + 8) == VEIL_PARTY_THRESHOLD_DECRYPT;
    if (!ok) snprintf(why, cap, "not a t-out-of-N decryption share set (veil party decrypt --set J1,J2,..)");
    *party = ok ? (size_t)le64(v.meta + 16) : 0;
    *set = 0;
    for (size_t i = 1; ok && i < v.count; i++) {
        const uint8_t *p = veil_srv_group_share(v.items[i].data, v.items[i].len, g);
        const uint64_t s = p ? le64(p + SHARE_SET_AT) : 0;
        ok = p && le64(p + VEIL_PARTY_ID_BYTES) == *party && s && (i == 1 || s == *set);
        *set = s;
        if (!ok) snprintf(why, cap, "share %zu of the set is not party %zu's of this group, or names another set", i, *party);
    }
    if (ok) ok = veil_srv_group_set_fits(g, *set, *party, why, cap);
    veil_set_contents_clear(&v);
    return ok;
}

/*
 * POST .../decrypt?party=P in a t-out-of-N group: party P's threshold share set. The first names the set of
 * decrypting parties; the others must name the same set and be of its members.
 */
static enum MHD_Result post_threshold_decrypt(struct MHD_Connection *c, request *r, const group_ref *g, size_t party)
{
    char why[200] = "", name[32], path[4200];
    size_t of = 0;
    uint64_t set = 0;
    if (!threshold_share_set(r->body, r->len, g, &of, &set, why, sizeof why))
        return veil_srv_send_error(c, r, 422, "%s", why);
    if (of != party) return veil_srv_send_error(c, r, 422, "these are party %zu's shares, not party %zu's", of, party);
    const uint64_t named = veil_srv_group_set(g, "dset"); /* the set the first threshold share named */
    if (named && named != set)
        return veil_srv_send_error(c, r, 409, "these shares name another set of parties than the shares in already");
    snprintf(name, sizeof name, "d.p%zu", party);
    file_in(path, sizeof path, g, name);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %zu's decryption share is in already", party);
    if (!veil_srv_group_claim(g, party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %zu of this group", party);
    if ((!named && !veil_srv_group_write_set(g, "dset", set)) || !veil_srv_group_write(g, name, r->body, r->len)) {
        if (!named) { /* no share behind it: it would hold every later share to this set */
            file_in(path, sizeof path, g, "dset");
            unlink(path);
        }
        return veil_srv_send_error(c, r, 500, "the share cannot be stored");
    }
    char body[96];
    const int n = snprintf(body, sizeof body, "{\"party\":%zu,\"in\":%zu,\"set\":%llu}\n", party,
                           veil_srv_group_count(g, "d"), (unsigned long long)set);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

static enum MHD_Result post_decrypt(struct MHD_Connection *c, request *r, const group_ref *g)
{
    const size_t party = veil_srv_group_party_arg(c, r, g);
    if (!party) return veil_srv_send_error(c, r, 400, "?party=P (1..%zu) names whose share this is", g->parties);
    char name[32], path[4200];
    file_in(path, sizeof path, g, "sum");
    if (!exists(path)) return veil_srv_send_error(c, r, 409, "there is no sum to decrypt yet (GET .../sum)");
    if (is_threshold(g)) return post_threshold_decrypt(c, r, g, party);
    veil_object_info info;
    veil_error err = {0};
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK || (info.flags & VEIL_FLAG_SECRET) ||
        (info.type != VEIL_OBJECT_SET && info.type != VEIL_OBJECT_PARTY_SHARE))
        return veil_srv_send_error(c, r, 422, "not a decryption share%s%s", err.detail[0] ? ": " : "", err.detail);
    if (memcmp(info.params_hash, g->params_hash, sizeof g->params_hash) != 0)
        return veil_srv_send_error(c, r, 409, "this share is of another parameter set than the group");
    snprintf(name, sizeof name, "d.p%zu", party);
    file_in(path, sizeof path, g, name);
    if (exists(path)) return veil_srv_send_error(c, r, 409, "party %zu's decryption share is in already", party);
    if (!veil_srv_group_claim(g, party, r->tenant))
        return veil_srv_send_error(c, r, 403, "another tenant speaks for party %zu of this group", party);
    if (!veil_srv_group_write(g, name, r->body, r->len)) return veil_srv_send_error(c, r, 500, "the share cannot be stored");
    char body[96];
    const int n = snprintf(body, sizeof body, "{\"party\":%zu,\"in\":%zu,\"parties\":%zu}\n", party,
                           veil_srv_group_count(g, "d"), g->parties);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* GET /v1/groups/NAME/decrypt/P: party P's decryption share, once all N are in. */
static enum MHD_Result get_decrypt(struct MHD_Connection *c, request *r, const group_ref *g, const char *rest)
{
    unsigned party = 0;
    char tail = 0, name[32];
    if (sscanf(rest, "%u%c", &party, &tail) != 1 || party < 1 || party > g->parties)
        return veil_srv_send_error(c, r, 404, "decrypt/PARTY: party 1..%zu", g->parties);
    const uint64_t set = veil_srv_group_set(g, "dset"); /* the set the first threshold share named (0: none) */
    if (set) { /* t-out-of-N: once every member of the set the shares named is in */
        if (!(set >> (party - 1) & 1))
            return veil_srv_send_error(c, r, 404, "party %u is not of the set of decrypting parties", party);
        size_t in = 0, members = 0;
        for (size_t p = 1; p <= g->parties; p++) {
            if (!(set >> (p - 1) & 1)) continue;
            char path[4200];
            snprintf(name, sizeof name, "d.p%zu", p);
            file_in(path, sizeof path, g, name);
            members++;
            in += exists(path);
        }
        if (in < members)
            return veil_srv_send_error(c, r, 409, "%zu of the %zu decrypting parties' shares are in", in, members);
    } else {
        const size_t in = veil_srv_group_count(g, "d");
        if (in < g->parties || is_threshold(g))
            return veil_srv_send_error(c, r, 409, "%zu of %zu decryption shares are in", in, g->parties);
    }
    snprintf(name, sizeof name, "d.p%u", party);
    return veil_srv_group_send(c, r, g, name, NULL, NULL);
}

/* GET /v1/groups/NAME: what is in. */
static enum MHD_Result describe(struct MHD_Connection *c, request *r, const group_ref *g, const char *name)
{
    char body[700], path[4200];
    file_in(path, sizeof path, g, "joint");
    const int joint = exists(path);
    file_in(path, sizeof path, g, "plan");
    const int plan = exists(path);
    file_in(path, sizeof path, g, "eval");
    const int eval = exists(path);
    file_in(path, sizeof path, g, "sw.to");
    const int to = exists(path);
    file_in(path, sizeof path, g, "switched");
    const int switched = exists(path);
    file_in(path, sizeof path, g, "sum");
    const int n = snprintf(body, sizeof body,
                           "{\"group\":\"%s\",\"parties\":%zu,\"round1\":%zu,\"round2\":%zu,\"joint\":%s,\"updates\":%zu,"
                           "\"sum\":%s,\"decrypt\":%zu,\"plan\":%s,\"eval\":%s,\"receiver\":%s,\"switch_in\":\"%s\","
                           "\"switch\":%zu,\"switched\":%s,\"bytes\":%llu}\n",
                           name, g->parties, veil_srv_group_count(g, "r1"), veil_srv_group_count(g, "r2"), joint ? "true" : "false",
                           veil_srv_group_count(g, "u"), exists(path) ? "true" : "false", veil_srv_group_count(g, "d"),
                           plan ? "true" : "false", eval ? "true" : "false", to ? "true" : "false", veil_srv_switch_input(g),
                           veil_srv_group_count(g, "s"), switched ? "true" : "false", (unsigned long long)group_bytes(g));
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

static enum MHD_Result dispatch_group(veil_server *s, struct MHD_Connection *c, request *r, const char *name,
                                      const char *rest)
{
    group_ref g;
    if ((!strcmp(r->method, "POST") || !strcmp(r->method, "PUT")) && (!r->body || !r->len))
        return veil_srv_send_error(c, r, 400, "%s %.100s needs a body (a Veil object)", r->method, r->path);
    const int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST"), put = !strcmp(r->method, "PUT");
    if (!*rest && put) return put_group(s, c, r, name);
    if (!*rest && !strcmp(r->method, "DELETE")) return delete_group(s, c, r, name);
    if (!open_group(s, name, r->tenant, &g))
        return veil_srv_send_error(c, r, 404, "no group named '%s' (PUT /v1/groups/NAME with the group object)", name);
    enum MHD_Result over;
    if ((post || put) && over_group_bytes(s, c, r, &g, name, &over)) return over;
    if (!*rest && get) return describe(c, r, &g, name);
    if (post && !strcmp(rest, "shares")) return post_share(c, r, &g);
    if (get && !strncmp(rest, "shares/", 7)) return get_share(c, r, &g, rest + 7);
    if (put && !strcmp(rest, "joint")) return put_joint(c, r, &g);
    if (put && !strcmp(rest, "plan")) return put_plan(c, r, &g);
    if (get && (!strcmp(rest, "joint/eval") || !strcmp(rest, "round1.agg"))) {
        char path[4200];
        const char *file = rest[0] == 'j' ? "eval" : "r1agg";
        file_in(path, sizeof path, &g, file);
        if (!exists(path))
            return veil_srv_send_error(c, r, 409, "the server has not combined round %d yet (PUT the plan, then all "
                                       "round-%d shares)", rest[0] == 'j' ? 2 : 1, rest[0] == 'j' ? 2 : 1);
        return veil_srv_group_send(c, r, &g, file, NULL, NULL);
    }
    if (get && !strcmp(rest, "joint")) {
        char path[4200];
        file_in(path, sizeof path, &g, "joint");
        if (!exists(path)) return veil_srv_send_error(c, r, 409, "the group has no joint keys yet");
        return veil_srv_group_send(c, r, &g, "joint", NULL, NULL);
    }
    if (post && !strcmp(rest, "updates")) return post_update(c, r, &g);
    if (get && !strcmp(rest, "sum")) return get_sum(c, r, &g);
    if (post && !strcmp(rest, "decrypt")) return post_decrypt(c, r, &g);
    if (post && !strcmp(rest, "boxkeys")) return post_box_key(c, r, &g);
    if (get && !strncmp(rest, "boxkeys/", 8)) return get_box_key(c, r, &g, rest + 8);
    if (post && !strcmp(rest, "deals")) return post_deal(c, r, &g);
    if (get && !strncmp(rest, "deals/", 6)) return get_deal(c, r, &g, rest + 6);
    if (get && !strncmp(rest, "decrypt/", 8)) return get_decrypt(c, r, &g, rest + 8);
    if (put && !strcmp(rest, "switch/to")) return veil_srv_put_switch_to(c, r, &g);
    if (put && !strcmp(rest, "switch/in")) return veil_srv_put_switch_in(c, r, &g);
    if (post && !strcmp(rest, "switch")) return veil_srv_post_switch_share(c, r, &g);
    if (get && !strncmp(rest, "switch", 6)) return veil_srv_get_switch(c, r, &g, rest + 6);
    return veil_srv_send_error(c, r, 405, "%s is not allowed on %.100s (see docs/net.md, \"Groups\")", r->method, r->path);
}

/* Removes a group's temporary files (NAME.tmp.XXXX: a write a crash interrupted; its file is as it was before). */
static void remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        char path[4400];
        snprintf(path, sizeof path, "%.4000s/%.200s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

void veil_srv_groups_at_start(veil_server *s)
{
    char groups[4200];
    if (!s->store_dir) return;
    snprintf(groups, sizeof groups, "%s/groups", s->store_dir);
    DIR *d = opendir(groups);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char dir[4400];
        snprintf(dir, sizeof dir, "%.4000s/%.200s", groups, e->d_name);
        if (!strncmp(e->d_name, ".deleted.", 9)) remove_folder(dir);
        else remove_temporaries(dir);
    }
    closedir(d);
}

enum MHD_Result veil_srv_groups(veil_server *s, struct MHD_Connection *c, request *r, const char *path)
{
    char name[NAME_MAX_LEN];
    const char *slash = strchr(path, '/');
    const size_t len = slash ? (size_t)(slash - path) : strlen(path);
    if (len == 0 || len >= sizeof name) return veil_srv_send_error(c, r, 404, "no such group");
    memcpy(name, path, len);
    name[len] = 0;
    if (name[0] == '.' || !veil_srv_valid_name(name, NAME_MAX_LEN - 1) || !veil_srv_valid_name(r->tenant, VEIL_TENANT_MAX))
        return veil_srv_send_error(c, r, 400, "a group's name is letters, digits, '-', '_' and '.'");
    if (!s->store_dir) return veil_srv_send_error(c, r, 501, "this server has no store (--store): no groups");
    pthread_mutex_lock(&s->lock);
    const enum MHD_Result ret = dispatch_group(s, c, r, name, slash ? slash + 1 : "");
    pthread_mutex_unlock(&s->lock);
    return ret;
}
