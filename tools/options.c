/*
 * The options of `veil`: one table (the option, what its value is, which commands take it, the field it sets)
 * and one loop that parses a command's arguments against it.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

/* What an option's value is, and how it is checked. */
typedef enum opt_kind {
    OPT_SWITCH, /* no value: sets an int to 1 */
    OPT_TEXT,   /* any text (a path, a URL, LO:HI read later) */
    OPT_SIZE,   /* a positive integer, at most 2^20 and at most `max` when max is not 0 */
    OPT_REAL,   /* a finite number >= 0; above 0 when `max` is 1 */
    OPT_CHOICE, /* one of the words of `choice`, stored as its value */
} opt_kind;

typedef struct opt_choice {
    const char *text; /* the words, for the message: "ckks or bgv" */
    const char *words[4];
    int values[4];
} opt_choice;

typedef struct opt_spec {
    const char *name;
    opt_kind kind;
    unsigned commands; /* the CLI_* bits of the commands that take it */
    size_t field;      /* offsetof(cli_options, the field) */
    size_t max;
    const opt_choice *choice;
} opt_spec;

static const opt_choice schemes = {"ckks or bgv", {"ckks", "bgv"}, {CLI_SCHEME_CKKS, CLI_SCHEME_BGV}};
static const opt_choice securities = {"128, 192 or 256 (insecure-test: the small bootstrapping test set, tests only)",
                                      {"128", "192", "256", "insecure-test"},
                                      {VEIL_SECURITY_128, VEIL_SECURITY_192, VEIL_SECURITY_256, VEIL_SECURITY_NONE}};

/* The commands that read a model with the model options (--calibrate, --range, --degree, ...). */
#define MODEL_CMDS (CLI_KEYGEN | CLI_ENCRYPT | CLI_EVAL | CLI_PLAN | CLI_PLAIN | CLI_PARTY)
#define F(field) offsetof(cli_options, field)

/* Every option. One name may have several rows, for commands that read it differently (serve's --threads). */
static const opt_spec options[] = {
    {"--model", OPT_TEXT, MODEL_CMDS | CLI_PREDICT, F(model), 0, NULL},
    {"--keys", OPT_TEXT, CLI_ENCRYPT | CLI_DECRYPT | CLI_PREDICT | CLI_PARTY, F(keys), 0, NULL},
    {"--eval-keys", OPT_TEXT, CLI_EVAL | CLI_TRAIN, F(eval_keys), 0, NULL},
    {"--in", OPT_TEXT, CLI_ENCRYPT | CLI_EVAL | CLI_DECRYPT | CLI_PLAIN | CLI_TRAIN | CLI_TRAIN_PLAIN | CLI_PREDICT |
     CLI_PARTY, F(in), 0, NULL},
    {"--out", OPT_TEXT, CLI_KEYGEN | CLI_ENCRYPT | CLI_EVAL | CLI_DECRYPT | CLI_PLAIN | CLI_TRAIN | CLI_TRAIN_PLAIN |
     CLI_PREDICT | CLI_PARTY, F(out), 0, NULL},
    /* the model options */
    {"--calibrate", OPT_TEXT, MODEL_CMDS, F(calibrate), 0, NULL},
    {"--range", OPT_TEXT, MODEL_CMDS, F(range), 0, NULL},
    {"--degree", OPT_SIZE, MODEL_CMDS | CLI_TRAIN_PLAIN, F(degree), 1024, NULL},
    {"--force-approximation", OPT_SWITCH, MODEL_CMDS, F(force_approximation), 0, NULL},
    {"--server-sigmoid", OPT_SWITCH, MODEL_CMDS, F(server_sigmoid), 0, NULL},
    /* plans and keys */
    {"--batch", OPT_SIZE, CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(batch), 0, NULL},
    {"--latency", OPT_SWITCH, CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(latency), 0, NULL},
    {"--security", OPT_CHOICE, CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(security), 0, &securities},
    {"--scheme", OPT_CHOICE, CLI_KEYGEN | CLI_PLAN, F(scheme), 0, &schemes},
    {"--input-range", OPT_TEXT, CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(input_range), 0, NULL},
    {"--force", OPT_SWITCH, CLI_KEYGEN | CLI_PARTY, F(force), 0, NULL},
    {"--server", OPT_TEXT, CLI_KEYGEN | CLI_PREDICT, F(server), 0, NULL},
    {"--token-file", OPT_TEXT, CLI_KEYGEN | CLI_PREDICT, F(token_file), 0, NULL},
    {"--cacert", OPT_TEXT, CLI_KEYGEN | CLI_PREDICT, F(cacert), 0, NULL},
    /* outputs */
    {"--argmax", OPT_SWITCH, CLI_DECRYPT | CLI_PLAIN | CLI_PREDICT | CLI_PARTY, F(argmax), 0, NULL},
    {"--integers", OPT_SWITCH, CLI_DECRYPT | CLI_PLAIN, F(integers), 0, NULL},
    {"--exact", OPT_SWITCH, CLI_PLAIN, F(exact), 0, NULL},
    {"--onnx", OPT_TEXT, CLI_DECRYPT | CLI_TRAIN_PLAIN | CLI_PARTY, F(onnx), 0, NULL},
    {"--flood", OPT_SWITCH, CLI_DECRYPT | CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(flood), 0, NULL},
    {"--bootstrap", OPT_SWITCH, CLI_KEYGEN | CLI_PLAN, F(bootstrap), 0, NULL},
    {"--no-flood", OPT_SWITCH, CLI_DECRYPT, F(no_flood), 0, NULL},
    /* training */
    {"--train", OPT_TEXT, CLI_KEYGEN | CLI_PLAN | CLI_TRAIN_PLAIN | CLI_PARTY, F(train), 0, NULL},
    {"--features", OPT_SIZE, CLI_KEYGEN | CLI_PLAN | CLI_PARTY, F(features), 0, NULL},
    {"--iterations", OPT_SIZE, CLI_KEYGEN | CLI_PLAN | CLI_TRAIN | CLI_TRAIN_PLAIN | CLI_PARTY, F(iterations), 0, NULL},
    {"--sigmoid-range", OPT_SIZE, CLI_KEYGEN | CLI_PLAN | CLI_TRAIN_PLAIN | CLI_PARTY, F(sigmoid_range), 64, NULL},
    {"--labels-column", OPT_TEXT, CLI_ENCRYPT | CLI_TRAIN_PLAIN, F(labels), 0, NULL},
    {"--learning-rate", OPT_REAL, CLI_TRAIN | CLI_TRAIN_PLAIN, F(learning_rate), 1, NULL},
    {"--l2", OPT_REAL, CLI_TRAIN | CLI_TRAIN_PLAIN, F(l2), 0, NULL},
    {"--threads", OPT_SIZE, CLI_EVAL | CLI_TRAIN, F(threads), 1024, NULL},
    {"--mpi", OPT_SWITCH, CLI_EVAL | CLI_TRAIN, F(mpi), 0, NULL},
    {"--quiet", OPT_SWITCH, CLI_KEYGEN | CLI_ENCRYPT | CLI_EVAL | CLI_TRAIN | CLI_SERVE | CLI_PREDICT | CLI_PARTY,
     F(quiet), 0, NULL},
    /* serve */
    {"--models", OPT_TEXT, CLI_SERVE, F(models), 0, NULL},
    {"--store", OPT_TEXT, CLI_SERVE | CLI_TOKEN, F(store), 0, NULL},
    {"--no-auth", OPT_SWITCH, CLI_SERVE, F(no_auth), 0, NULL},
    {"--insecure-http", OPT_SWITCH, CLI_SERVE, F(insecure_http), 0, NULL},
    /* token */
    {"--tenant", OPT_TEXT, CLI_TOKEN, F(tenant), 0, NULL},
    {"--admin", OPT_SWITCH, CLI_TOKEN, F(admin), 0, NULL},
    {"--id", OPT_TEXT, CLI_TOKEN, F(token_id), 0, NULL},
    {"--listen", OPT_TEXT, CLI_SERVE, F(listen), 0, NULL},
    {"--threads", OPT_TEXT, CLI_SERVE, F(serve_threads), 0, NULL},
    {"--eval-threads", OPT_TEXT, CLI_SERVE, F(eval_threads), 0, NULL},
    {"--tls-cert", OPT_TEXT, CLI_SERVE, F(tls_cert), 0, NULL},
    {"--tls-key", OPT_TEXT, CLI_SERVE, F(tls_key), 0, NULL},
    {"--max-keys", OPT_TEXT, CLI_SERVE, F(max_keys), 0, NULL},
    {"--tenant-max-keys", OPT_TEXT, CLI_SERVE, F(tenant_max_keys), 0, NULL},
    {"--tenant-max-bytes", OPT_TEXT, CLI_SERVE, F(tenant_max_bytes), 0, NULL},
    {"--timeout", OPT_TEXT, CLI_SERVE, F(timeout), 0, NULL},
    {"--max-batches", OPT_TEXT, CLI_SERVE, F(max_batches), 0, NULL},
    {"--tenant-rps", OPT_TEXT, CLI_SERVE, F(tenant_rps), 0, NULL},
    {"--tenant-burst", OPT_TEXT, CLI_SERVE, F(tenant_burst), 0, NULL},
    {"--tenant-max-predictions", OPT_TEXT, CLI_SERVE, F(tenant_max_predictions), 0, NULL},
    {"--max-connections", OPT_TEXT, CLI_SERVE, F(max_connections), 0, NULL},
    {"--max-connections-per-address", OPT_TEXT, CLI_SERVE, F(max_per_address), 0, NULL},
    {"--request-deadline", OPT_TEXT, CLI_SERVE, F(request_deadline), 0, NULL},
    {"--cache-bytes", OPT_TEXT, CLI_SERVE, F(cache_bytes), 0, NULL},
    {"--memory-budget", OPT_TEXT, CLI_SERVE, F(memory_budget), 0, NULL},
    {"--tenant-max-groups", OPT_TEXT, CLI_SERVE, F(tenant_max_groups), 0, NULL},
    {"--group-max-bytes", OPT_TEXT, CLI_SERVE, F(group_max_bytes), 0, NULL},
    /* differential privacy: budget, and eval's noise (docs/privacy.md); the library checks the ranges */
    {"--keys", OPT_TEXT, CLI_BUDGET, F(keys), 0, NULL},
    {"--epsilon", OPT_REAL, CLI_BUDGET, F(dp_epsilon), 1, NULL},
    {"--delta", OPT_REAL, CLI_BUDGET, F(dp_delta), 1, NULL},
    {"--rho", OPT_REAL, CLI_BUDGET, F(dp_rho), 1, NULL},
    {"--sigma", OPT_REAL, CLI_BUDGET, F(dp_sigma), 1, NULL},
    {"--sensitivity", OPT_REAL, CLI_BUDGET, F(dp_sensitivity), 1, NULL},
    {"--releases", OPT_SIZE, CLI_BUDGET, F(dp_releases), 0, NULL},
    {"--dp-epsilon", OPT_REAL, CLI_EVAL, F(dp_epsilon), 1, NULL},
    {"--dp-delta", OPT_REAL, CLI_EVAL, F(dp_delta), 1, NULL},
    {"--dp-sensitivity", OPT_REAL, CLI_EVAL, F(dp_sensitivity), 1, NULL},
    {"--input-range", OPT_TEXT, CLI_EVAL, F(input_range), 0, NULL}, /* eval: the sensitivity's plan */
    {"--dp-parties", OPT_SIZE, CLI_EVAL, F(dp_parties), 64, NULL}, /* eval: one party's share of the noise */
    {"--dp-epsilon", OPT_REAL, CLI_TRAIN, F(dp_epsilon), 1, NULL}, /* DP-GD */
    {"--dp-delta", OPT_REAL, CLI_TRAIN, F(dp_delta), 1, NULL},
    {"--feature-range", OPT_TEXT, CLI_ENCRYPT, F(feature_range), 0, NULL}, /* training data, for DP-GD */
    {"--label-range", OPT_TEXT, CLI_ENCRYPT, F(label_range), 0, NULL}, /* linear regression's DP-GD */
    {"--dp-prediction-bound", OPT_REAL, CLI_TRAIN, F(dp_prediction_bound), 1, NULL},
    /* party (cmd_party.c checks the ranges: parties 2..64, rounds 1..2, smudging bits 1..60) */
    {"--parties", OPT_SIZE, CLI_PARTY, F(parties), 0, NULL},
    {"--threshold", OPT_SIZE, CLI_PARTY, F(threshold), 0, NULL},
    {"--party", OPT_SIZE, CLI_PARTY, F(party), 0, NULL},
    {"--round", OPT_SIZE, CLI_PARTY, F(round), 0, NULL},
    {"--smudging-bits", OPT_SIZE, CLI_PARTY, F(smudging_bits), 0, NULL},
    {"--preset", OPT_TEXT, CLI_PARTY, F(preset), 0, NULL},
    {"--group", OPT_TEXT, CLI_PARTY, F(group), 0, NULL},
    {"--decrypt", OPT_TEXT, CLI_PARTY, F(decrypt_ct), 0, NULL},
    {"--switch", OPT_TEXT, CLI_PARTY, F(switch_ct), 0, NULL},
    {"--to", OPT_TEXT, CLI_PARTY, F(to), 0, NULL},
    {"--set", OPT_TEXT, CLI_PARTY, F(set), 0, NULL},
    {"--tolerance", OPT_REAL, CLI_PARTY, F(tolerance), 1, NULL},
    /* encrypt-model (cmd_encmodel.c): the model and its options, the data owner's eval keys; plan files */
    {"--model", OPT_TEXT, CLI_ENCRYPT_MODEL, F(model), 0, NULL},
    {"--keys", OPT_TEXT, CLI_ENCRYPT_MODEL, F(keys), 0, NULL},
    {"--out", OPT_TEXT, CLI_ENCRYPT_MODEL | CLI_PLAN, F(out), 0, NULL},
    {"--calibrate", OPT_TEXT, CLI_ENCRYPT_MODEL, F(calibrate), 0, NULL},
    {"--range", OPT_TEXT, CLI_ENCRYPT_MODEL, F(range), 0, NULL},
    {"--degree", OPT_SIZE, CLI_ENCRYPT_MODEL, F(degree), 1024, NULL},
    {"--force-approximation", OPT_SWITCH, CLI_ENCRYPT_MODEL, F(force_approximation), 0, NULL},
    {"--server-sigmoid", OPT_SWITCH, CLI_ENCRYPT_MODEL, F(server_sigmoid), 0, NULL},
    {"--quiet", OPT_SWITCH, CLI_ENCRYPT_MODEL, F(quiet), 0, NULL},
    {"--plan", OPT_TEXT, CLI_KEYGEN, F(plan_file), 0, NULL},
    /* encrypt-model --server: the weights sent to a veil serve for the data owner's key bundle */
    {"--server", OPT_TEXT, CLI_ENCRYPT_MODEL, F(server), 0, NULL},
    {"--served", OPT_TEXT, CLI_ENCRYPT_MODEL, F(served), 0, NULL},
    {"--token-file", OPT_TEXT, CLI_ENCRYPT_MODEL, F(token_file), 0, NULL},
    {"--cacert", OPT_TEXT, CLI_ENCRYPT_MODEL, F(cacert), 0, NULL},
};
#define N_OPTIONS (sizeof options / sizeof *options)

/* The row of `name` for the command; NULL when the command does not take it. */
static const opt_spec *find(const char *name, unsigned command)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if ((options[i].commands & command) && strcmp(options[i].name, name) == 0) return &options[i];
    return NULL;
}

int cli_parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || !s[0]) return 0;
    *out = (size_t)v;
    return 1;
}

/* Checks and stores one option's value; 0 after a message. */
static int set_value(const opt_spec *s, const char *v, cli_options *o)
{
    char *field = (char *)o + s->field;
    switch (s->kind) {
    case OPT_SWITCH: *(int *)(void *)field = 1; return 1;
    case OPT_TEXT: *(const char **)(void *)field = v; return 1;
    case OPT_SIZE: {
        size_t n;
        if (!cli_parse_size(v, &n) || n == 0 || n > ((size_t)1 << 20)) {
            fprintf(stderr, "veil: %s wants a positive integer (at most 2^20), not '%s'\n", s->name, v);
            return 0;
        }
        if (s->max && n > s->max) {
            fprintf(stderr, "veil: %s %s is out of range (degree <= 1024, sigmoid range <= 64, threads <= 1024)\n",
                    s->name, v);
            return 0;
        }
        *(size_t *)(void *)field = n;
        return 1;
    }
    case OPT_REAL: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || *end || !v[0] || !isfinite(d) || d < 0) {
            fprintf(stderr, "veil: %s wants a number >= 0, not '%s'\n", s->name, v);
            return 0;
        }
        if (s->max && d == 0) {
            fprintf(stderr, "veil: %s must be above 0\n", s->name);
            return 0;
        }
        *(double *)(void *)field = d;
        return 1;
    }
    case OPT_CHOICE:
        for (size_t i = 0; i < 4 && s->choice->words[i]; i++)
            if (strcmp(v, s->choice->words[i]) == 0) {
                *(int *)(void *)field = s->choice->values[i];
                return 1;
            }
        fprintf(stderr, "veil: %s is %s, not '%s'\n", s->name, s->choice->text, v);
        return 0;
    }
    return 0;
}

/*
 * serve and predict keep the conventions they had when they were parsed apart: a missing value is reported as
 * an unexpected argument, and of an option given twice the first counts (the others' last).
 */
int cli_parse(int argc, char **argv, cli_options *o, unsigned command)
{
    const int net = (command & (CLI_SERVE | CLI_PREDICT)) != 0;
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const opt_spec *s = find(argv[i], command);
        if (!s) {
            fprintf(stderr, "veil: unexpected argument '%s'\n", argv[i]);
            return 0;
        }
        if (s->kind == OPT_SWITCH) {
            set_value(s, NULL, o);
            continue;
        }
        if (i + 1 >= argc) {
            if (net) fprintf(stderr, "veil: unexpected argument '%s' (it needs a value)\n", argv[i]);
            else fprintf(stderr, "veil: %s needs a value\n", argv[i]);
            return 0;
        }
        const char *v = argv[++i];
        if (net && *(const char **)(void *)((char *)o + s->field)) continue; /* given before: the first counts */
        if (!set_value(s, v, o)) return 0;
    }
    if (o->latency && o->batch) {
        fprintf(stderr, "veil: --batch and --latency exclude each other\n");
        return 0;
    }
    if (o->integers && !o->scheme) o->scheme = CLI_SCHEME_BGV; /* the integer computation is exact inference's */
    return 1;
}

int cli_need(const void *value, const char *flag)
{
    if (value) return 1;
    fprintf(stderr, "veil: %s is required\n", flag);
    return 0;
}
