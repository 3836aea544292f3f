/*
 * veil party: multi-party keys (veil/party.h, docs/multiparty.md). N parties make joint keys for a model's plan
 * without anyone holding the secret key, anyone encrypts under the joint public key, the server evaluates with
 * the joint evaluation keys as usual, and only all N parties together decrypt (or re-encrypt a result under
 * one receiver's keys), or any T of them in a t-out-of-N group. Each step is run by one party with its own
 * files only.
 *
 *   G/         plan (the model's plan; or params for --preset), group (the group object), joint.keys
 *              (written by combine --round 1: the joint key set, public)
 *   PI/        secret.share (0600: the party's secret share, and between the rounds its ephemeral secret),
 *              round1.share, round2.share (public shares), joint.keys (a copy, to read ciphertexts)
 *              t-out-of-N (init --threshold T): box.key (round 1, public: the deals to PI are sealed to it),
 *              deal.toJ (round 3, sealed for party J: it travels to J by any route), threshold.key (round 4,
 *              0600: PI's threshold share; decrypt|switch --set J1,J2,.. with any T parties)
 *   JOINT/     round1.agg (the round-1 aggregates), joint.keys (the joint key set: veil encrypt --keys JOINT),
 *              eval/eval.keys (the server's: veil eval --eval-keys JOINT/eval)
 *
 * The party files are Veil sets whose first object is the parameter set, with 56 bytes of metadata: a tag
 * ("VEIL-PS1" secret share, "VEIL-PR1" round shares, "VEIL-PA1" round-1 aggregates), the group id (32 bytes),
 * the party (u64, 0 for aggregates) and the round (u64).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "veil_cli.h"

#define META_BYTES 56
#define MAX_INPUTS VEIL_PARTY_MAX

static const char tag_secret[8] = {'V', 'E', 'I', 'L', '-', 'P', 'S', '1'};
static const char tag_round[8] = {'V', 'E', 'I', 'L', '-', 'P', 'R', '1'};
static const char tag_agg[8] = {'V', 'E', 'I', 'L', '-', 'P', 'A', '1'};

/* What a command holds of the group: its plan (or parameters), context and group object. */
typedef struct group_state {
    veil_plan *plan;       /* NULL for a --preset group */
    veil_params *params;   /* a --preset group's */
    veil_context *ctx;
    veil_party_group *group;
    veil_buffer group_bytes;
} group_state;

static void group_state_clear(group_state *g)
{
    veil_party_group_free(g->group);
    veil_context_free(g->ctx);
    veil_params_free(g->params);
    veil_plan_free(g->plan);
    veil_buffer_free(&g->group_bytes);
    memset(g, 0, sizeof *g);
}

static const veil_params *group_params(const group_state *g)
{
    return g->plan ? veil_plan_params(g->plan) : g->params;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* A folder, made when missing (mode: 0700 for a party's, 0755 otherwise). */
static int make_dir(const char *dir, mode_t mode)
{
    if (cli_is_dir(dir)) return EXIT_OK;
    if (mkdir(dir, mode) != 0) return cli_error(EXIT_RUNTIME, "cannot make the folder %s: %s", dir, strerror(errno));
    return EXIT_OK;
}

/* G/plan (or G/params) and G/group, into a context of their parameters. */
static int load_group(const char *dir, group_state *g)
{
    char path[4096];
    veil_buffer b = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    memset(g, 0, sizeof *g);
    if (!cli_is_dir(dir)) return cli_error(EXIT_INPUT, "%s is not a group folder (veil party init --out)", dir);
    path_in(path, sizeof path, dir, "plan");
    if (cli_exists(path)) {
        CLI_CHECK(cli_read_file(path, &b));
        CLI_CHECK(cli_status(veil_plan_load(&g->plan, b.data, b.len, &err), &err, path));
    } else {
        path_in(path, sizeof path, dir, "params");
        CLI_CHECK(cli_read_file(path, &b));
        CLI_CHECK(cli_status(veil_params_load(&g->params, b.data, b.len, &err), &err, path));
    }
    veil_buffer_free(&b);
    CLI_CHECK(cli_status(veil_context_new(&g->ctx, group_params(g), NULL, &err), &err, NULL));
    path_in(path, sizeof path, dir, "group");
    CLI_CHECK(cli_read_file(path, &g->group_bytes));
    CLI_CHECK(cli_status(veil_party_group_load(&g->group, g->ctx, g->group_bytes.data, g->group_bytes.len, &err), &err,
                         path));
done:
    veil_buffer_free(&b);
    if (rc) group_state_clear(g);
    return rc;
}

static void meta_of(uint8_t meta[META_BYTES], const char tag[8], const veil_party_group *group, size_t party,
                    size_t round)
{
    memcpy(meta, tag, 8);
    memcpy(meta + 8, veil_party_group_id(group), VEIL_PARTY_ID_BYTES);
    for (int i = 0; i < 8; i++) {
        meta[40 + i] = (uint8_t)((uint64_t)party >> (8 * i));
        meta[48 + i] = (uint8_t)((uint64_t)round >> (8 * i));
    }
}

static uint64_t meta_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Saves objects (each a stored object; the parameters are put first) as a party file with its metadata. */
static int save_party_file(const char *path, const group_state *g, const uint8_t meta[META_BYTES], veil_buffer *items,
                           size_t count)
{
    veil_error err = {0};
    veil_buffer out = {0};
    int rc = cli_status(veil_params_save(&items[0], group_params(g), 0, &err), &err, NULL);
    if (rc == EXIT_OK) rc = cli_status(veil_set_save(&out, group_params(g), meta, META_BYTES, items, count, &err), &err, path);
    for (size_t i = 0; i < count; i++) veil_buffer_free(&items[i]);
    if (rc == EXIT_OK) rc = cli_save_buffer(path, &out);
    return rc;
}

/*
 * Opens a party file of the group: the tag, the group id, the party (when party is not 0) and the round (when
 * round is not 0) checked; at least `min_items` objects after the parameters.
 */
static int open_party_file(const char *path, veil_buffer *b, veil_set_contents *c, const char tag[8],
                           const group_state *g, size_t party, size_t round, size_t min_items)
{
    veil_error err = {0};
    int rc = cli_read_file(path, b);
    if (rc) return rc;
    rc = cli_status(veil_set_open(c, b->data, b->len, &err), &err, path);
    if (rc) return rc;
    if (c->meta_len != META_BYTES || memcmp(c->meta, tag, 8) != 0)
        return cli_error(EXIT_INPUT, "%s is not a %s", path,
                         tag == tag_secret ? "party's secret share (veil party keygen --round 1)"
                         : tag == tag_agg  ? "set of round-1 aggregates (veil party combine --round 1)"
                                           : "party's round shares (veil party keygen)");
    if (memcmp(c->meta + 8, veil_party_group_id(g->group), VEIL_PARTY_ID_BYTES) != 0)
        return cli_error(EXIT_MISMATCH, "%s belongs to another group", path);
    if (party && meta_u64(c->meta + 40) != party)
        return cli_error(EXIT_MISMATCH, "%s is party %llu's, not party %zu's", path,
                         (unsigned long long)meta_u64(c->meta + 40), party);
    if (round && meta_u64(c->meta + 48) != round)
        return cli_error(EXIT_MISMATCH, "%s holds round-%llu shares, not round-%zu ones", path,
                         (unsigned long long)meta_u64(c->meta + 48), round);
    if (c->count < 1 + min_items) return cli_error(EXIT_INPUT, "%s is incomplete", path);
    return EXIT_OK;
}

/* A share of the party file c (object i), into the group's context. */
static int load_share(veil_party_share **s, const group_state *g, const veil_set_contents *c, size_t i, const char *path)
{
    veil_error err = {0};
    return cli_status(veil_party_share_load(s, g->ctx, c->items[i].data, c->items[i].len, &err), &err, path);
}

/* Whether the group is t-out-of-N with t < N (the dealing rounds 3 and 4, threshold keys). */
static int is_threshold(const group_state *g)
{
    return veil_party_group_threshold(g->group) < veil_party_group_parties(g->group);
}

static int check_party_number(const cli_options *o, const group_state *g)
{
    const size_t n = veil_party_group_parties(g->group);
    if (o->party < 1 || o->party > n)
        return cli_error(EXIT_USAGE, "--party %zu: this group's parties are 1 to %zu", o->party, n);
    return EXIT_OK;
}

/* ---- init ------------------------------------------------------------------------------------------------ */

/*
 * The largest error the smudging of all N parties' shares of 2^bits may add to an output at the plan's scale:
 * 6 sqrt(N 2^(2 bits)) sqrt(n/2) / 2^scale_bits, the bound the combination checks (src/ml/party.c).
 */
static double smudging_bound(const veil_plan *plan, size_t parties, unsigned bits)
{
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    return 6.0 * sqrt((double)parties) * exp2((double)bits) * sqrt((double)info.n / 2) / exp2((double)info.scale_bits);
}

/* The margin under the tolerance at init: the outputs' scale may lie a little below 2^scale_bits. */
#define SMUDGING_MARGIN 1.25

/* The output scale (bits) at which N shares of 2^bits keep an output within tol in a ring of degree n. */
static unsigned smudging_scale_for(size_t parties, unsigned bits, size_t n, double tol)
{
    return (unsigned)ceil(bits + log2(6.0 * sqrt((double)parties) * sqrt((double)n / 2) * SMUDGING_MARGIN / tol));
}

/*
 * The group's plan, sized for its smudging (docs/multiparty.md, "Smudging"): the ordinary plan when N shares
 * of 2^bits keep the outputs within the tolerance there, else one whose output scale is large enough
 * (veil_plan_request.min_scale_bits, once more when the ring grew; training plans: --flood's 2^60 scale);
 * refused, naming the bits that fit, when no plan holds them.
 */
static int make_group_plan(cli_options *o, unsigned bits, veil_model *m, veil_plan **plan)
{
    const double tol = o->tolerance ? o->tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE;
    int rc = o->train ? cli_make_train_plan(o, plan) : cli_make_plan(o, m, plan);
    if (rc) return rc;
    veil_plan *ordinary = NULL;
    for (int attempt = 0; attempt < 3 && !o->flood && smudging_bound(*plan, o->parties, bits) * SMUDGING_MARGIN > tol;
         attempt++) {
        veil_plan_info info;
        veil_plan_get_info(*plan, &info);
        unsigned scale = smudging_scale_for(o->parties, bits, info.n, tol);
        if (scale > 60) scale = 60; /* the largest: the refusal below then names the bits it holds */
        if (scale <= info.scale_bits) break;
        if (!ordinary) ordinary = *plan;
        else veil_plan_free(*plan);
        *plan = NULL;
        o->smudging_scale = scale;
        veil_error why = {0};
        if (o->train && scale > 50) { /* beyond what a training plan's scale holds: --flood's 2^60 */
            o->smudging_scale = 0;
            o->flood = 1;
            rc = cli_make_train_plan(o, plan);
            o->flood = 0;
            o->smudging_scale = 60;
            if (rc) break;
            continue;
        }
        rc = o->train ? cli_make_train_plan(o, plan) : cli_try_plan(o, m, plan, &why);
        if (rc && !o->latency) { /* last: --flood's plan (a 2^60 scale and one more level) */
            o->smudging_scale = 0;
            o->flood = 1;
            rc = o->train ? cli_make_train_plan(o, plan) : cli_try_plan(o, m, plan, &why);
            o->flood = 0;
            o->smudging_scale = 60;
        }
        if (rc && !o->train) cli_status(why.status ? why.status : VEIL_ERR_ARGUMENT, &why, NULL); /* the last refusal */
        if (rc) break;
    }
    if (rc && ordinary) { /* no plan with the room (a model too deep for it): name the bits the ordinary plan holds */
        const double fit = floor(bits - log2(smudging_bound(ordinary, o->parties, bits) * SMUDGING_MARGIN / tol));
        if (fit >= 1)
            fprintf(stderr, "veil: no plan has room for %zu parties' smudging of 2^%u; the ordinary plan holds "
                    "--smudging-bits %.0f (less hiding, docs/multiparty.md)\n", o->parties, bits, fit);
    }
    veil_plan_free(ordinary);
    if (rc) return rc;
    const double bound = smudging_bound(*plan, o->parties, bits);
    if (bound * SMUDGING_MARGIN > tol) {
        veil_plan_info info;
        veil_plan_get_info(*plan, &info);
        const double fit = floor(bits - log2(bound * SMUDGING_MARGIN / tol));
        return cli_error(EXIT_USAGE, "--smudging-bits %u: %zu parties' shares may move an output by %.2g at the "
                         "plan's scale 2^%u (N = %zu), beyond the tolerance %g: at most %.0f bits fit", bits,
                         o->parties, bound, info.scale_bits, info.n, tol, fit);
    }
    return EXIT_OK;
}

static int party_init(cli_options *o)
{
    if (!cli_need(o->out, "--out") || !cli_need(o->parties ? "" : NULL, "--parties")) return EXIT_USAGE;
    if (o->parties < 2 || o->parties > VEIL_PARTY_MAX)
        return cli_error(EXIT_USAGE, "--parties %zu: a group has 2 to %d parties", o->parties, VEIL_PARTY_MAX);
    if (o->threshold && (o->threshold < 2 || o->threshold > o->parties))
        return cli_error(EXIT_USAGE, "--threshold %zu of %zu parties: 2 to %zu (or leave it out: N-out-of-N, every "
                         "party decrypts)", o->threshold, o->parties, o->parties);
    if (!!o->model + !!o->preset + !!o->train != 1)
        return cli_error(EXIT_USAGE, "give --model M.onnx, --train logistic|linear or --preset NAME (one of them)");
    if (o->smudging_bits > 60) return cli_error(EXIT_USAGE, "--smudging-bits %zu: 1 to 60", o->smudging_bits);
    const unsigned bits = o->smudging_bits ? (unsigned)o->smudging_bits : VEIL_PARTY_DEFAULT_SMUDGING_BITS;
    char path[4096];
    path_in(path, sizeof path, o->out, "group");
    if (cli_exists(path) && !o->force)
        return cli_error(EXIT_INPUT, "%s already holds a group; groups are never overwritten (use --force)", o->out);
    veil_error err = {0};
    veil_model *m = NULL;
    double *calib = NULL;
    group_state g = {0};
    veil_buffer b = {0};
    int rc = EXIT_OK;
    if (o->train) {
        /* a training plan, as `veil keygen --train` makes it (--flood when the smudging needs its room): the joint
         * keys are training keys */
        CLI_CHECK(make_group_plan(o, bits, NULL, &g.plan));
        veil_train_info ti;
        if (veil_plan_get_train_info(g.plan, &ti, &err) == VEIL_OK && ti.bootstrap_level)
            CLI_FAIL(EXIT_USAGE, "%zu iterations need bootstrapping, which joint keys do not offer yet (its "
                     "encapsulation key needs the secret): ask for fewer iterations", o->iterations);
    } else if (o->model) {
        CLI_CHECK(cli_load_model(&m, o, &calib));
        CLI_CHECK(make_group_plan(o, bits, m, &g.plan));
        veil_plan_info info;
        veil_plan_get_info(g.plan, &info);
        if (info.scheme != VEIL_ML_CKKS)
            CLI_FAIL(EXIT_INPUT, "multi-party keys are made for CKKS inference plans");
    } else {
        CLI_CHECK(cli_status(veil_params_preset(&g.params, o->preset, &err), &err, "--preset"));
    }
    CLI_CHECK(cli_status(veil_context_new(&g.ctx, group_params(&g), NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_group_new(&g.group, g.ctx, o->parties, o->threshold, NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_group_set_smudging_bits(g.group, bits, &err), &err, "--smudging-bits"));
    CLI_CHECK(make_dir(o->out, 0755));
    if (g.plan) {
        CLI_CHECK(cli_status(veil_plan_save(&b, g.plan, &err), &err, NULL));
        path_in(path, sizeof path, o->out, "plan");
    } else {
        CLI_CHECK(cli_status(veil_params_save(&b, g.params, 0, &err), &err, NULL));
        path_in(path, sizeof path, o->out, "params");
    }
    CLI_CHECK(cli_save_buffer(path, &b));
    CLI_CHECK(cli_status(veil_party_group_save(&b, g.group, &err), &err, NULL));
    path_in(path, sizeof path, o->out, "group");
    CLI_CHECK(cli_save_buffer(path, &b));
    if (!o->quiet) {
        const uint8_t *id = veil_party_group_id(g.group);
        const size_t t = veil_party_group_threshold(g.group);
        fprintf(stderr, "veil: a group of %zu parties (%zu-out-of-%zu%s), id %02x%02x%02x%02x..., N = %zu, in %s\n",
                o->parties, t, o->parties, t < o->parties ? ": the dealing rounds 3 and 4 follow round 1" : "", id[0],
                id[1], id[2], id[3], veil_params_degree(group_params(&g)), o->out);
        if (g.plan) {
            veil_plan_info info;
            veil_plan_get_info(g.plan, &info);
            fprintf(stderr, "veil: smudging 2^%u per decryption share (the default of party decrypt|switch), at most "
                    "%.2g on an output at the plan's scale 2^%u%s\n", bits, smudging_bound(g.plan, o->parties, bits),
                    info.scale_bits, o->smudging_scale ? " (a plan with room for it)" : "");
        }
    }
done:
    veil_buffer_free(&b);
    group_state_clear(&g);
    veil_model_free(m);
    free(calib);
    return rc;
}

/* ---- keygen ------------------------------------------------------------------------------------------------ */

/* Round 1: the secret share (and its ephemeral secret), the public-key and relinearization round-1 shares. */
static int keygen_round1(const cli_options *o, const group_state *g)
{
    char path[4096];
    path_in(path, sizeof path, o->out, "secret.share");
    if (cli_exists(path) && !o->force)
        return cli_error(EXIT_INPUT, "%s already holds a secret share; shares are never overwritten (use --force: the "
                         "group's keys made with the old one become useless)", o->out);
    veil_error err = {0};
    veil_secret_key *sk = NULL, *u = NULL;
    veil_party_share *pk = NULL, *r1 = NULL;
    veil_party_box_key *box = NULL;
    veil_buffer items[3] = {{0}, {0}, {0}};
    uint8_t meta[META_BYTES];
    int rc = EXIT_OK;
    CLI_CHECK(make_dir(o->out, 0700));
    CLI_CHECK(cli_status(veil_secret_key_new(&sk, g->ctx, NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_public_key_share(&pk, g->group, o->party, sk, NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_relin_share_1(&r1, &u, g->group, o->party, sk, NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_secret_key_save(&items[1], sk, 0, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_secret_key_save(&items[2], u, 0, &err), &err, NULL));
    meta_of(meta, tag_secret, g->group, o->party, 1);
    CLI_CHECK(save_party_file(path, g, meta, items, 3)); /* a secret set: created 0600 */
    CLI_CHECK(cli_status(veil_party_share_save(&items[1], pk, 0, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_share_save(&items[2], r1, 0, &err), &err, NULL));
    meta_of(meta, tag_round, g->group, o->party, 1);
    path_in(path, sizeof path, o->out, "round1.share");
    CLI_CHECK(save_party_file(path, g, meta, items, 3));
    if (is_threshold(g)) { /* t-out-of-N: the box key the deals of round 3 are sealed to travels with round 1 */
        CLI_CHECK(cli_status(veil_party_box_key_new(&box, g->group, o->party, sk, &err), &err, NULL));
        CLI_CHECK(cli_status(veil_party_box_key_save(&items[0], box, &err), &err, NULL));
        path_in(path, sizeof path, o->out, "box.key");
        CLI_CHECK(cli_save_buffer(path, &items[0]));
    }
    if (!o->quiet)
        fprintf(stderr, "veil: party %zu: wrote %s/secret.share (secret: keep it) and %s/round1.share%s (send %s to "
                "the combiner%s)\n", o->party, o->out, o->out, is_threshold(g) ? " and box.key" : "",
                is_threshold(g) ? "them" : "it", is_threshold(g) ? "; box.key to every party" : "");
done:
    veil_party_box_key_free(box);
    for (int i = 0; i < 3; i++) veil_buffer_free(&items[i]);
    veil_party_share_free(pk);
    veil_party_share_free(r1);
    veil_secret_key_free(sk);
    veil_secret_key_free(u);
    return rc;
}

/* The party's secret share (and, when ephemeral is not NULL, its round-1 ephemeral secret). */
static int load_secret_share(const char *dir, const group_state *g, size_t party, veil_secret_key **sk,
                             veil_secret_key **ephemeral)
{
    char path[4096];
    path_in(path, sizeof path, dir, "secret.share");
    veil_buffer b = {0};
    veil_set_contents c = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(open_party_file(path, &b, &c, tag_secret, g, party, 0, 1));
    CLI_CHECK(cli_status(veil_secret_key_load(sk, g->ctx, c.items[1].data, c.items[1].len, &err), &err, path));
    if (ephemeral) {
        if (c.count < 3)
            CLI_FAIL(EXIT_INPUT, "%s holds no round-1 ephemeral secret: round 2 was run already (or round 1 was not)",
                     path);
        CLI_CHECK(cli_status(veil_secret_key_load(ephemeral, g->ctx, c.items[2].data, c.items[2].len, &err), &err,
                             path));
    }
done:
    veil_set_contents_clear(&c);
    veil_buffer_free(&b);
    return rc;
}

/* The Galois elements of the plan's rotations (none for a --preset group). */
static size_t plan_galois(const group_state *g, uint64_t *out, size_t max)
{
    if (!g->plan) return 0;
    long steps[512];
    size_t n = veil_plan_rotations(g->plan, steps, sizeof steps / sizeof *steps);
    if (n > max) n = max;
    for (size_t i = 0; i < n; i++) out[i] = veil_galois_element_rotation(g->ctx, steps[i]);
    return n;
}

/* Copies a file (the joint key set, public) to another path. */
static int copy_file(const char *from, const char *to)
{
    veil_buffer b = {0};
    int rc = cli_read_file(from, &b);
    if (rc == EXIT_OK) rc = cli_save_buffer(to, &b);
    return rc;
}

/* Round 2: the relinearization round-2 share and the Galois shares; the ephemeral secret is then dropped. */
static int keygen_round2(const cli_options *o, const group_state *g)
{
    if (!cli_need(o->in, "--in (the JOINT folder of combine --round 1)")) return EXIT_USAGE;
    char path[4096];
    veil_error err = {0};
    veil_secret_key *sk = NULL, *u = NULL;
    veil_party_share *r1 = NULL, *s = NULL;
    veil_buffer b = {0};
    veil_set_contents c = {0};
    uint64_t galois[512];
    const size_t n_galois = plan_galois(g, galois, 512);
    veil_buffer *items = calloc(2 + n_galois, sizeof *items);
    uint8_t meta[META_BYTES];
    int rc = EXIT_OK;
    if (!items) CLI_FAIL(EXIT_RUNTIME, "out of memory");
    CLI_CHECK(load_secret_share(o->out, g, o->party, &sk, &u));
    path_in(path, sizeof path, o->in, "round1.agg");
    CLI_CHECK(open_party_file(path, &b, &c, tag_agg, g, 0, 1, 2));
    CLI_CHECK(load_share(&r1, g, &c, 2, path));
    CLI_CHECK(cli_status(veil_party_relin_share_2(&s, g->group, o->party, sk, u, r1, NULL, &err), &err, path));
    CLI_CHECK(cli_status(veil_party_share_save(&items[1], s, 0, &err), &err, NULL));
    for (size_t i = 0; i < n_galois; i++) {
        veil_party_share_free(s);
        s = NULL;
        CLI_CHECK(cli_status(veil_party_galois_share(&s, g->group, o->party, sk, galois[i], NULL, &err), &err, NULL));
        CLI_CHECK(cli_status(veil_party_share_save(&items[2 + i], s, 0, &err), &err, NULL));
    }
    meta_of(meta, tag_round, g->group, o->party, 2);
    path_in(path, sizeof path, o->out, "round2.share");
    CLI_CHECK(save_party_file(path, g, meta, items, 2 + n_galois));
    /* the joint key set, to read the group's ciphertexts at decryption */
    char from[4096];
    path_in(from, sizeof from, o->in, "joint.keys");
    path_in(path, sizeof path, o->out, "joint.keys");
    if (cli_exists(from)) CLI_CHECK(copy_file(from, path));
    /* the ephemeral secret has served: the secret share file keeps s_i only */
    CLI_CHECK(cli_status(veil_secret_key_save(&items[1], sk, 0, &err), &err, NULL));
    meta_of(meta, tag_secret, g->group, o->party, 2);
    path_in(path, sizeof path, o->out, "secret.share");
    CLI_CHECK(save_party_file(path, g, meta, items, 2));
    if (!o->quiet)
        fprintf(stderr, "veil: party %zu: wrote %s/round2.share (relinearization and %zu rotation shares)\n", o->party,
                o->out, n_galois);
done:
    for (size_t i = 0; items && i < 2 + n_galois; i++) veil_buffer_free(&items[i]);
    free(items);
    veil_set_contents_clear(&c);
    veil_buffer_free(&b);
    veil_party_share_free(r1);
    veil_party_share_free(s);
    veil_secret_key_free(sk);
    veil_secret_key_free(u);
    return rc;
}

/* ---- keygen, t-out-of-N: the dealing (round 3) and the threshold key (round 4) ----------------------------- */

/* The box keys of all N parties, one from each input folder (DIR/box.key, written by round 1). */
static int load_box_keys(const group_state *g, char **ins, size_t n_in, veil_party_box_key **keys)
{
    const size_t n = veil_party_group_parties(g->group);
    if (n_in != n)
        return cli_error(EXIT_USAGE, "--in: the folders of all %zu parties (each with its box.key), not %zu", n, n_in);
    int rc = EXIT_OK;
    for (size_t k = 0; k < n_in && rc == EXIT_OK; k++) {
        char path[4096];
        veil_buffer b = {0};
        veil_error err = {0};
        path_in(path, sizeof path, ins[k], "box.key");
        rc = cli_read_file(path, &b);
        if (rc == EXIT_OK)
            rc = cli_status(veil_party_box_key_load(&keys[k], g->ctx, b.data, b.len, &err), &err, path);
        if (rc == EXIT_OK &&
            memcmp(veil_party_box_key_group(keys[k]), veil_party_group_id(g->group), VEIL_PARTY_ID_BYTES) != 0)
            rc = cli_error(EXIT_MISMATCH, "%s belongs to another group", path);
        veil_buffer_free(&b);
    }
    return rc;
}

/* Round 3: party I deals f_I(j) to every party j, sealed to j's box key: PI/deal.toJ for J = 1..N. */
static int keygen_deal(const cli_options *o, const group_state *g, char **ins, size_t n_in)
{
    const size_t n = veil_party_group_parties(g->group);
    veil_error err = {0};
    veil_secret_key *sk = NULL;
    veil_party_box_key *keys[MAX_INPUTS] = {NULL};
    veil_party_deal *deals[MAX_INPUTS] = {NULL};
    veil_buffer b = {0};
    int rc = EXIT_OK;
    char first[4096];
    path_in(first, sizeof first, o->out, "deal.to1");
    CLI_CHECK(load_secret_share(o->out, g, o->party, &sk, NULL));
    CLI_CHECK(load_box_keys(g, ins, n_in, keys));
    /* new deals beside threshold keys already made from the old ones would not interpolate to s */
    if (cli_exists(first) && !o->force)
        CLI_FAIL(EXIT_INPUT, "%s already holds this party's deals; deals are never remade (use --force: every "
                 "party must then make its threshold key again with the new deals)", o->out);
    CLI_CHECK(cli_status(veil_party_deal_make(deals, n, g->group, o->party, sk, (const veil_party_box_key *const *)keys,
                                              n, NULL, &err), &err, NULL));
    for (size_t j = 0; j < n; j++) {
        char path[4096], name[32];
        snprintf(name, sizeof name, "deal.to%zu", j + 1);
        path_in(path, sizeof path, o->out, name);
        CLI_CHECK(cli_status(veil_party_deal_save(&b, deals[j], &err), &err, NULL));
        CLI_CHECK(cli_save_buffer(path, &b));
    }
    if (!o->quiet)
        fprintf(stderr, "veil: party %zu: wrote %s/deal.to1 .. deal.to%zu (sealed: send deal.toJ to party J, by any "
                "route)\n", o->party, o->out, n);
done:
    for (size_t j = 0; j < n; j++) veil_party_deal_free(deals[j]);
    for (size_t k = 0; k < n_in; k++) veil_party_box_key_free(keys[k]);
    veil_buffer_free(&b);
    veil_secret_key_free(sk);
    return rc;
}

/* Round 4: party J opens the N deals addressed to it (DIR/deal.toJ in each dealer's folder): PJ/threshold.key. */
static int keygen_threshold_key(const cli_options *o, const group_state *g, char **ins, size_t n_in)
{
    veil_error err = {0};
    veil_secret_key *sk = NULL;
    veil_party_box_key *keys[MAX_INPUTS] = {NULL};
    veil_party_deal *deals[MAX_INPUTS] = {NULL};
    veil_party_threshold_key *key = NULL;
    veil_buffer b = {0};
    char path[4096], name[32];
    int rc = EXIT_OK;
    CLI_CHECK(load_secret_share(o->out, g, o->party, &sk, NULL));
    CLI_CHECK(load_box_keys(g, ins, n_in, keys));
    snprintf(name, sizeof name, "deal.to%zu", o->party);
    for (size_t k = 0; k < n_in; k++) {
        path_in(path, sizeof path, ins[k], name);
        CLI_CHECK(cli_read_file(path, &b));
        CLI_CHECK(cli_status(veil_party_deal_load(&deals[k], g->ctx, b.data, b.len, &err), &err, path));
        veil_buffer_free(&b);
    }
    CLI_CHECK(cli_status(veil_party_threshold_key_new(&key, g->group, o->party, sk,
                                                      (const veil_party_box_key *const *)keys, n_in,
                                                      (const veil_party_deal *const *)deals, n_in, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_threshold_key_save(&b, key, &err), &err, NULL));
    path_in(path, sizeof path, o->out, "threshold.key");
    CLI_CHECK(cli_save_buffer(path, &b)); /* a secret object: created 0600 */
    if (!o->quiet)
        fprintf(stderr, "veil: party %zu: wrote %s/threshold.key (secret: keep it; any %zu of the %zu parties decrypt "
                "with --set)\n", o->party, o->out, veil_party_group_threshold(g->group),
                veil_party_group_parties(g->group));
done:
    veil_party_threshold_key_free(key); /* wipes */
    for (size_t k = 0; k < n_in; k++) {
        veil_party_deal_free(deals[k]);
        veil_party_box_key_free(keys[k]);
    }
    veil_buffer_free(&b);
    veil_secret_key_free(sk);
    return rc;
}

/* ---- combine -------------------------------------------------------------------------------------------------- */

/* Reads each input party's round file; shares[k * per + j] is input k's object 1 + j. */
static int load_round(const cli_options *o, const group_state *g, char **ins, size_t n_in, size_t round, size_t per,
                      veil_party_share **shares)
{
    int rc = EXIT_OK;
    for (size_t k = 0; k < n_in; k++) {
        char path[4096];
        veil_buffer b = {0};
        veil_set_contents c = {0};
        path_in(path, sizeof path, ins[k], round == 1 ? "round1.share" : "round2.share");
        rc = open_party_file(path, &b, &c, tag_round, g, 0, round, per);
        if (rc == EXIT_OK && c.count != 1 + per)
            rc = cli_error(EXIT_MISMATCH, "%s holds %zu shares, expected %zu (another plan's?)", path, c.count - 1, per);
        for (size_t j = 0; rc == EXIT_OK && j < per; j++) rc = load_share(&shares[k * per + j], g, &c, 1 + j, path);
        veil_set_contents_clear(&c);
        veil_buffer_free(&b);
        if (rc) break;
    }
    (void)o;
    return rc;
}

/* The aggregate of share j over the inputs. */
static int aggregate(veil_party_share **out, const group_state *g, veil_party_share **shares, size_t n_in, size_t per,
                     size_t j)
{
    const veil_party_share *list[MAX_INPUTS];
    for (size_t k = 0; k < n_in; k++) list[k] = shares[k * per + j];
    veil_error err = {0};
    return cli_status(veil_party_aggregate(out, g->group, list, n_in, &err), &err, NULL);
}

static int combine_round1(const cli_options *o, const group_state *g, const char *group_dir, char **ins, size_t n_in)
{
    char path[4096];
    veil_error err = {0};
    veil_party_share *shares[2 * MAX_INPUTS] = {NULL}, *pk_agg = NULL, *r1_agg = NULL;
    veil_public_key *pk = NULL;
    veil_keyset *joint = NULL;
    veil_buffer items[3] = {{0}, {0}, {0}}, pkb = {0}, jb = {0};
    uint8_t meta[META_BYTES];
    int rc = EXIT_OK;
    CLI_CHECK(load_round(o, g, ins, n_in, 1, 2, shares));
    CLI_CHECK(aggregate(&pk_agg, g, shares, n_in, 2, 0));
    CLI_CHECK(aggregate(&r1_agg, g, shares, n_in, 2, 1));
    CLI_CHECK(cli_status(veil_party_public_key(&pk, g->group, pk_agg, &err), &err, NULL));
    CLI_CHECK(make_dir(o->out, 0755));
    CLI_CHECK(cli_status(veil_party_share_save(&items[1], pk_agg, 0, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_party_share_save(&items[2], r1_agg, 0, &err), &err, NULL));
    meta_of(meta, tag_agg, g->group, 0, 1);
    path_in(path, sizeof path, o->out, "round1.agg");
    CLI_CHECK(save_party_file(path, g, meta, items, 3));
    CLI_CHECK(cli_status(veil_public_key_save(&pkb, pk, 0, &err), &err, NULL));
    if (g->plan) {
        CLI_CHECK(cli_status(veil_keyset_joint(&joint, g->plan, pkb.data, pkb.len, &err), &err, NULL));
        CLI_CHECK(cli_status(veil_keyset_save(&jb, joint, &err), &err, NULL));
        path_in(path, sizeof path, o->out, "joint.keys");
        CLI_CHECK(cli_save_buffer(path, &jb));
        char beside[4096];
        path_in(beside, sizeof beside, group_dir, "joint.keys"); /* the group's public key, beside the group */
        if (copy_file(path, beside) != EXIT_OK) /* a group folder this party may not write: JOINT has it */
            fprintf(stderr, "veil: (the joint key set stays in %s: give --keys %s to combine --decrypt)\n", o->out,
                    o->out);
    } else {
        path_in(path, sizeof path, o->out, "public.key");
        CLI_CHECK(cli_save_buffer(path, &pkb));
    }
    if (!o->quiet)
        fprintf(stderr, "veil: the joint public key of %zu parties: %s/%s; round-1 aggregates: %s/round1.agg\n", n_in,
                o->out, g->plan ? "joint.keys" : "public.key", o->out);
done:
    for (size_t i = 0; i < 2 * n_in; i++) veil_party_share_free(shares[i]);
    for (int i = 0; i < 3; i++) veil_buffer_free(&items[i]);
    veil_buffer_free(&pkb);
    veil_buffer_free(&jb);
    veil_party_share_free(pk_agg);
    veil_party_share_free(r1_agg);
    veil_public_key_free(pk);
    veil_keyset_free(joint);
    return rc;
}

static int combine_round2(const cli_options *o, const group_state *g, char **ins, size_t n_in)
{
    char path[4096];
    veil_error err = {0};
    uint64_t galois[512];
    const size_t n_galois = plan_galois(g, galois, 512), per = 1 + n_galois;
    veil_party_share **shares = calloc(n_in * per + 1, sizeof *shares), *r1 = NULL, *agg = NULL;
    veil_buffer *keys = calloc(per, sizeof *keys), b = {0}, out = {0};
    veil_set_contents c = {0};
    veil_switch_key *key = NULL;
    veil_keyset *joint = NULL;
    int rc = EXIT_OK;
    if (!shares || !keys) CLI_FAIL(EXIT_RUNTIME, "out of memory");
    path_in(path, sizeof path, o->out, "round1.agg");
    CLI_CHECK(open_party_file(path, &b, &c, tag_agg, g, 0, 1, 2));
    CLI_CHECK(load_share(&r1, g, &c, 2, path));
    CLI_CHECK(load_round(o, g, ins, n_in, 2, per, shares));
    for (size_t j = 0; j < per; j++) {
        CLI_CHECK(aggregate(&agg, g, shares, n_in, per, j));
        if (j == 0) CLI_CHECK(cli_status(veil_party_relin_key(&key, g->group, r1, agg, &err), &err, NULL));
        else {
            if (veil_party_share_galois(agg) != galois[j - 1])
                CLI_FAIL(EXIT_MISMATCH, "the round-2 shares' Galois keys are not those of the group's plan");
            CLI_CHECK(cli_status(veil_party_galois_key(&key, g->group, agg, &err), &err, NULL));
        }
        CLI_CHECK(cli_status(veil_switch_key_save(&keys[j], key, 0, &err), &err, NULL));
        veil_switch_key_free(key);
        key = NULL;
        veil_party_share_free(agg);
        agg = NULL;
    }
    if (g->plan) {
        path_in(path, sizeof path, o->out, "joint.keys");
        CLI_CHECK(cli_load_keyset(o->out, &joint));
        if (!veil_keyset_is_joint(joint)) CLI_FAIL(EXIT_INPUT, "%s is not a joint key set", path);
        CLI_CHECK(cli_status(veil_eval_keys_joint_save(&out, joint, keys, per, &err), &err, NULL));
        path_in(path, sizeof path, o->out, "eval");
        CLI_CHECK(make_dir(path, 0755));
        path_in(path, sizeof path, o->out, "eval/eval.keys");
        CLI_CHECK(cli_save_buffer(path, &out));
    } else {
        path_in(path, sizeof path, o->out, "relin.key");
        CLI_CHECK(cli_save_buffer(path, &keys[0]));
    }
    if (!o->quiet)
        fprintf(stderr, "veil: the joint evaluation keys (relinearization and %zu rotation keys): %s\n", n_galois, path);
done:
    for (size_t i = 0; shares && i < n_in * per; i++) veil_party_share_free(shares[i]);
    for (size_t j = 0; keys && j < per; j++) veil_buffer_free(&keys[j]);
    free(shares);
    free(keys);
    veil_set_contents_clear(&c);
    veil_buffer_free(&b);
    veil_buffer_free(&out);
    veil_party_share_free(r1);
    veil_party_share_free(agg);
    veil_switch_key_free(key);
    veil_keyset_free(joint);
    return rc;
}

/* The joint key set: --keys DIR (a JOINT or party folder) or, by default, the group's G/joint.keys. */
static int load_joint(const cli_options *o, const char *group_dir, veil_keyset **ks)
{
    const char *dir = o->keys ? o->keys : group_dir;
    char path[4096];
    path_in(path, sizeof path, dir, "joint.keys");
    if (!cli_exists(path))
        return cli_error(EXIT_INPUT, "%s has no joint key set (joint.keys, from veil party combine --round 1)%s", dir,
                         o->keys ? "" : ": give --keys JOINT");
    int rc = cli_load_keyset(dir, ks);
    if (rc == EXIT_OK && !veil_keyset_is_joint(*ks)) {
        veil_keyset_free(*ks);
        *ks = NULL;
        return cli_error(EXIT_INPUT, "%s is not a joint key set", path);
    }
    return rc;
}

/* Reads the share files of the inputs. */
static int read_inputs(char **ins, size_t n_in, veil_buffer *bufs)
{
    for (size_t k = 0; k < n_in; k++) {
        const int rc = cli_read_file(ins[k], &bufs[k]);
        if (rc) return rc;
    }
    return EXIT_OK;
}

/* A trained model's weights, jointly: as CSV (--out: bias first) and/or a standard ONNX model (--onnx). */
static int combine_decrypt_training(const cli_options *o, const group_state *g, const veil_keyset *joint,
                                    const veil_ciphertexts *cts, const veil_buffer *bufs, size_t n_in)
{
    veil_error err = {0};
    veil_train_info ti;
    veil_buffer onnx = {0};
    double *w = NULL, smudged = 0;
    int rc = EXIT_OK;
    CLI_CHECK(cli_status(veil_keyset_get_train_info(joint, &ti, &err), &err, NULL));
    if (!(w = calloc(ti.features + 1, sizeof *w))) CLI_FAIL(EXIT_RUNTIME, "out of memory");
    CLI_CHECK(cli_status(veil_train_decrypt_joint(w, joint, g->group_bytes.data, g->group_bytes.len, cts, bufs, n_in,
                                                  o->tolerance, &smudged, &err), &err, NULL));
    if (o->onnx) CLI_CHECK(cli_status(veil_train_to_onnx(&onnx, ti.task, w, ti.features, &err), &err, NULL));
    CLI_CHECK(cli_write_trained(o->out, w, ti.features + 1, o->onnx, &onnx));
    if (!o->quiet)
        fprintf(stderr, "veil: the trained weights%s%s%s; the parties' smudging may move each by up to %.2g "
                "(tolerance %g)\n", o->onnx ? ": " : "", o->onnx ? o->onnx : "", o->out && o->onnx ? " and CSV" : "",
                smudged, o->tolerance ? o->tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE);
done:
    veil_buffer_free(&onnx);
    if (w) memset(w, 0, (ti.features + 1) * sizeof *w);
    free(w);
    return rc;
}

static int combine_decrypt(const cli_options *o, const group_state *g, const char *group_dir, char **ins, size_t n_in)
{
    veil_error err = {0};
    veil_keyset *joint = NULL;
    veil_ciphertexts *cts = NULL;
    veil_buffer bufs[MAX_INPUTS] = {{0}};
    double *y = NULL;
    int rc = EXIT_OK, mode = CLI_CSV_VALUES;
    CLI_CHECK(load_joint(o, group_dir, &joint));
    CLI_CHECK(cli_load_ciphertexts(o->decrypt_ct, joint, NULL, &cts));
    CLI_CHECK(cli_refuse_incomplete_release(o->decrypt_ct, cts));
    CLI_CHECK(read_inputs(ins, n_in, bufs));
    if (veil_keyset_packing(joint) == VEIL_PACKING_TRAINING) {
        CLI_CHECK(combine_decrypt_training(o, g, joint, cts, bufs, n_in));
        goto done;
    }
    if (o->onnx) CLI_FAIL(EXIT_USAGE, "--onnx is for trained models (a group made with party init --train)");
    if (!cli_need(o->out, "--out")) CLI_FAIL(EXIT_USAGE, "veil party combine --help");
    const size_t rows = veil_ciphertexts_rows(cts), w = veil_keyset_output_width(joint);
    CLI_CHECK(cli_csv_mode(o->argmax, veil_keyset_final_op(joint), w, &mode));
    if (!(y = calloc(rows * w + 1, sizeof *y))) CLI_FAIL(EXIT_RUNTIME, "out of memory");
    double smudged = 0;
    CLI_CHECK(cli_status(veil_ciphertexts_decrypt_joint_ex(y, NULL, joint, g->group_bytes.data, g->group_bytes.len,
                                                           cts, bufs, n_in, o->tolerance, &smudged, &err), &err, NULL));
    CLI_CHECK(cli_write_csv(o->out, y, rows, w, mode));
    if (!o->quiet)
        fprintf(stderr, "veil: the parties' smudging may move each output by up to %.2g (tolerance %g)\n", smudged,
                o->tolerance ? o->tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE);
done:
    for (size_t k = 0; k < n_in; k++) veil_buffer_free(&bufs[k]);
    free(y);
    veil_ciphertexts_free(cts);
    veil_keyset_free(joint);
    return rc;
}

static int load_receiver(const char *given, veil_eval_keys **ek)
{
    char path[4096];
    int rc = cli_eval_keys_path(given, path, sizeof path);
    if (rc == EXIT_OK) rc = cli_load_eval_keys(path, ek);
    return rc;
}

static int combine_switch(const cli_options *o, const group_state *g, const char *group_dir, char **ins, size_t n_in)
{
    if (!cli_need(o->to, "--to (the receiver's evaluation keys, RECEIVER/eval)")) return EXIT_USAGE;
    veil_error err = {0};
    veil_keyset *joint = NULL;
    veil_eval_keys *receiver = NULL;
    veil_ciphertexts *cts = NULL, *z = NULL;
    veil_buffer bufs[MAX_INPUTS] = {{0}};
    int rc = EXIT_OK;
    CLI_CHECK(load_joint(o, group_dir, &joint));
    CLI_CHECK(load_receiver(o->to, &receiver));
    CLI_CHECK(cli_load_ciphertexts(o->switch_ct, joint, NULL, &cts));
    CLI_CHECK(cli_refuse_incomplete_release(o->switch_ct, cts));
    CLI_CHECK(read_inputs(ins, n_in, bufs));
    double smudged = 0;
    CLI_CHECK(cli_status(veil_ciphertexts_switch_joint_ex(&z, joint, g->group_bytes.data, g->group_bytes.len, cts,
                                                          receiver, bufs, n_in, o->tolerance, &smudged, &err), &err,
                         NULL));
    CLI_CHECK(cli_save_ciphertexts(o->out, z));
    if (!o->quiet)
        fprintf(stderr, "veil: %s is under the receiver's keys now (veil decrypt --keys RECEIVER); the parties' "
                "smudging may move each output by up to %.2g (tolerance %g)\n", o->out, smudged,
                o->tolerance ? o->tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE);
done:
    for (size_t k = 0; k < n_in; k++) veil_buffer_free(&bufs[k]);
    veil_ciphertexts_free(z);
    veil_ciphertexts_free(cts);
    veil_eval_keys_free(receiver);
    veil_keyset_free(joint);
    return rc;
}

/* ---- decrypt and switch: one party's shares ---------------------------------------------------------------- */

/* --set 1,3: the decrypting parties (1..N, each once, the party itself among them, at least t). */
static int parse_set(const cli_options *o, const group_state *g, size_t *set, size_t *count)
{
    const size_t n = veil_party_group_parties(g->group), t = veil_party_group_threshold(g->group);
    const char *p = o->set;
    uint64_t seen = 0;
    *count = 0;
    while (*p) {
        char *end = NULL;
        errno = 0;
        const unsigned long long j = strtoull(p, &end, 10);
        if (end == p || errno || j < 1 || j > n || (*end && *end != ','))
            return cli_error(EXIT_USAGE, "--set %s: party numbers 1 to %zu separated by commas (--set 1,3)", o->set, n);
        if (seen >> (j - 1) & 1) return cli_error(EXIT_USAGE, "--set %s: party %llu appears twice", o->set, j);
        seen |= 1ull << (j - 1);
        set[(*count)++] = (size_t)j;
        p = *end ? end + 1 : end;
    }
    if (!(seen >> (o->party - 1) & 1))
        return cli_error(EXIT_USAGE, "--set %s does not include party %zu itself", o->set, o->party);
    if (*count < t)
        return cli_error(EXIT_USAGE, "--set %s: %zu parties, fewer than this group's threshold %zu", o->set, *count, t);
    return EXIT_OK;
}

/* PI/threshold.key (round 4), checked to be party I's of this group. */
static int read_threshold_key(const cli_options *o, const group_state *g, veil_buffer *b)
{
    char path[4096];
    veil_error err = {0};
    veil_party_threshold_key *key = NULL;
    path_in(path, sizeof path, o->keys, "threshold.key");
    if (!cli_exists(path))
        return cli_error(EXIT_INPUT, "%s has no threshold.key: --set needs the dealing (veil party keygen --round 3, "
                         "then --round 4)", o->keys);
    int rc = cli_read_file(path, b);
    if (rc == EXIT_OK) rc = cli_status(veil_party_threshold_key_load(&key, g->ctx, b->data, b->len, &err), &err, path);
    if (rc == EXIT_OK &&
        memcmp(veil_party_threshold_key_group(key), veil_party_group_id(g->group), VEIL_PARTY_ID_BYTES) != 0)
        rc = cli_error(EXIT_MISMATCH, "%s belongs to another group", path);
    if (rc == EXIT_OK && veil_party_threshold_key_party(key) != o->party)
        rc = cli_error(EXIT_MISMATCH, "%s is party %zu's, not party %zu's", path, veil_party_threshold_key_party(key),
                       o->party);
    veil_party_threshold_key_free(key);
    return rc;
}

static int party_shares(const cli_options *o, const group_state *g, int to_receiver)
{
    if (!cli_need(o->keys, "--keys (the party's folder)") || !cli_need(o->in, "--in") || !cli_need(o->out, "--out"))
        return EXIT_USAGE;
    if (to_receiver && !cli_need(o->to, "--to (the receiver's evaluation keys, RECEIVER/eval)")) return EXIT_USAGE;
    if (o->smudging_bits > 60) return cli_error(EXIT_USAGE, "--smudging-bits %zu: at most 60", o->smudging_bits);
    char path[4096];
    veil_error err = {0};
    veil_keyset *joint = NULL;
    veil_eval_keys *receiver = NULL;
    veil_ciphertexts *cts = NULL;
    veil_buffer b = {0}, out = {0}, tk = {0};
    veil_set_contents c = {0};
    const veil_party_smudging smudging = {.bits = (unsigned)o->smudging_bits};
    size_t set[MAX_INPUTS], set_count = 0;
    int rc = EXIT_OK;
    CLI_CHECK(check_party_number(o, g));
    if (o->set) {
        if (!is_threshold(g))
            CLI_FAIL(EXIT_USAGE, "--set: this group is N-out-of-N (every party decrypts); leave --set out");
        CLI_CHECK(parse_set(o, g, set, &set_count));
        CLI_CHECK(read_threshold_key(o, g, &tk));
    }
    path_in(path, sizeof path, o->keys, "secret.share");
    CLI_CHECK(open_party_file(path, &b, &c, tag_secret, g, o->party, 0, 1));
    CLI_CHECK(cli_load_keyset(o->keys, &joint));
    if (!veil_keyset_is_joint(joint)) CLI_FAIL(EXIT_INPUT, "%s/joint.keys is not a joint key set", o->keys);
    CLI_CHECK(cli_load_ciphertexts(o->in, joint, NULL, &cts));
    CLI_CHECK(cli_charge_release(o->keys, o->in, cts)); /* a noisy sum: this party's budget, or no share */
    if (to_receiver) CLI_CHECK(load_receiver(o->to, &receiver));
    if (o->set && to_receiver) {
        CLI_CHECK(cli_status(veil_ciphertexts_threshold_switch_share(&out, joint, g->group_bytes.data,
                                                                     g->group_bytes.len, tk.data, tk.len, set,
                                                                     set_count, cts, receiver, &smudging, &err),
                             &err, NULL));
    } else if (o->set) {
        CLI_CHECK(cli_status(veil_ciphertexts_threshold_decrypt_share(&out, joint, g->group_bytes.data,
                                                                      g->group_bytes.len, tk.data, tk.len, set,
                                                                      set_count, cts, &smudging, &err),
                             &err, NULL));
    } else if (to_receiver) {
        CLI_CHECK(cli_status(veil_ciphertexts_switch_share(&out, joint, g->group_bytes.data, g->group_bytes.len,
                                                           o->party, c.items[1].data, c.items[1].len, cts, receiver,
                                                           &smudging, &err), &err, NULL));
    } else {
        CLI_CHECK(cli_status(veil_ciphertexts_decrypt_share(&out, joint, g->group_bytes.data, g->group_bytes.len,
                                                            o->party, c.items[1].data, c.items[1].len, cts, &smudging,
                                                            &err), &err, NULL));
    }
    CLI_CHECK(cli_save_buffer(o->out, &out));
done:
    veil_set_contents_clear(&c);
    veil_buffer_free(&b);
    veil_buffer_free(&tk);
    veil_buffer_free(&out);
    veil_ciphertexts_free(cts);
    veil_eval_keys_free(receiver);
    veil_keyset_free(joint);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------------------------ */

/*
 * Takes the values after --in (up to the next option) out of argv: the first stays for the option parser (a
 * single --in), all of them go to ins.
 */
static int split_inputs(int argc, char **argv, char **rest, int *n_rest, char **ins, size_t *n_in)
{
    *n_rest = 0;
    *n_in = 0;
    for (int i = 0; i < argc; i++) {
        rest[(*n_rest)++] = argv[i];
        if (strcmp(argv[i], "--in") != 0) continue;
        if (i + 1 < argc) rest[(*n_rest)++] = argv[i + 1];
        while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            if (*n_in == MAX_INPUTS) return cli_error(EXIT_USAGE, "--in: at most %d inputs", MAX_INPUTS);
            ins[(*n_in)++] = argv[++i];
        }
    }
    return EXIT_OK;
}

int cli_cmd_party(int argc, char **argv)
{
    if (argc < 1) return cli_error(EXIT_USAGE, "veil party init|keygen|combine|decrypt|switch|push|pull (veil party --help)");
    const char *sub = argv[0];
    if (!strcmp(sub, "push") || !strcmp(sub, "pull")) return cli_party_net(argc, argv);
    char **rest = calloc((size_t)argc + 1, sizeof *rest), *ins[MAX_INPUTS];
    if (!rest) return EXIT_RUNTIME;
    int n_rest = 0, rc = EXIT_OK;
    size_t n_in = 0;
    cli_options o;
    group_state g = {0};
    CLI_CHECK(split_inputs(argc - 1, argv + 1, rest, &n_rest, ins, &n_in));
    if (!cli_parse(n_rest, rest, &o, CLI_PARTY)) CLI_FAIL(EXIT_USAGE, "veil party %s --help: its options", sub);
    if (o.onnx && (strcmp(sub, "combine") || !o.decrypt_ct))
        CLI_FAIL(EXIT_USAGE, "--onnx is for veil party combine --decrypt W.ct (a trained model's weights)");
    if (!strcmp(sub, "init")) {
        rc = party_init(&o);
        goto done;
    }
    if (strcmp(sub, "keygen") && strcmp(sub, "combine") && strcmp(sub, "decrypt") && strcmp(sub, "switch") &&
        strcmp(sub, "sum"))
        CLI_FAIL(EXIT_USAGE, "unknown party step '%s' (init, keygen, combine, decrypt, switch, sum, push, pull)", sub);
    if (!cli_need(o.group, "--group")) CLI_FAIL(EXIT_USAGE, "veil party %s --help", sub);
    CLI_CHECK(load_group(o.group, &g));
    if (!strcmp(sub, "sum")) { /* the aggregator's step (cmd_party_dp.c) */
        if (!cli_need(o.out, "--out") || !cli_need(n_in ? "" : NULL, "--in")) CLI_FAIL(EXIT_USAGE, "veil party sum --help");
        rc = cli_party_sum(o.keys ? o.keys : o.group, ins, n_in, o.out, o.quiet);
    } else if (!strcmp(sub, "keygen")) {
        if (!cli_need(o.out, "--out") || !cli_need(o.party ? "" : NULL, "--party") ||
            !cli_need(o.round ? "" : NULL, "--round"))
            CLI_FAIL(EXIT_USAGE, "veil party keygen --help");
        CLI_CHECK(check_party_number(&o, &g));
        if ((o.round == 3 || o.round == 4) && !is_threshold(&g))
            CLI_FAIL(EXIT_USAGE, "--round %zu: this group is N-out-of-N, it has no dealing (rounds 1 and 2 only)",
                     o.round);
        if ((o.round == 3 || o.round == 4) && !n_in)
            CLI_FAIL(EXIT_USAGE, "--round %zu: --in the folders of all parties (their box.key%s)", o.round,
                     o.round == 4 ? " and the deal.toI addressed to this party" : "");
        if (o.round == 1) rc = keygen_round1(&o, &g);
        else if (o.round == 2) rc = keygen_round2(&o, &g);
        else if (o.round == 3) rc = keygen_deal(&o, &g, ins, n_in);
        else if (o.round == 4) rc = keygen_threshold_key(&o, &g, ins, n_in);
        else CLI_FAIL(EXIT_USAGE, "--round is 1 or 2 (and 3, 4 in a t-out-of-N group: the dealing)");
    } else if (!strcmp(sub, "combine")) {
        if ((!o.onnx || !o.decrypt_ct) && !cli_need(o.out, "--out")) CLI_FAIL(EXIT_USAGE, "veil party combine --help");
        if (!cli_need(n_in ? "" : NULL, "--in")) CLI_FAIL(EXIT_USAGE, "veil party combine --help");
        const int modes = !!o.round + !!o.decrypt_ct + !!o.switch_ct;
        if (modes != 1) CLI_FAIL(EXIT_USAGE, "combine: give one of --round 1|2, --decrypt Y.ct, --switch Y.ct");
        if (o.decrypt_ct) rc = combine_decrypt(&o, &g, o.group, ins, n_in);
        else if (o.switch_ct) rc = combine_switch(&o, &g, o.group, ins, n_in);
        else if (o.round == 1) rc = combine_round1(&o, &g, o.group, ins, n_in);
        else if (o.round == 2) rc = combine_round2(&o, &g, ins, n_in);
        else CLI_FAIL(EXIT_USAGE, "--round is 1 or 2");
    } else {
        if (!g.plan) CLI_FAIL(EXIT_INPUT, "a --preset group makes keys only: decrypt with the library (veil/party.h)");
        if (!cli_need(o.party ? "" : NULL, "--party")) CLI_FAIL(EXIT_USAGE, "veil party %s --help", sub);
        rc = party_shares(&o, &g, !strcmp(sub, "switch"));
    }
done:
    group_state_clear(&g);
    free(rest);
    return rc;
}
