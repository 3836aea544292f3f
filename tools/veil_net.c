/* The network commands of `veil`: serve, predict, and keygen from a server's plan. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "veil/veil.h"
#include "veil/net.h"
#include "veil_cli.h"

/* As tools/veil_ml.c's: "veil: DETAIL", or "veil: WHAT: DETAIL" where the library's detail cannot know WHAT. */
static int fail(veil_status st, const veil_error *err, const char *what)
{
    const char *detail = err->detail[0] ? err->detail : veil_strerror(st);
    if (what) fprintf(stderr, "veil: %s: %s\n", what, detail);
    else fprintf(stderr, "veil: %s\n", detail);
    if (st == VEIL_ERR_MISMATCH) return EXIT_MISMATCH;
    if (st == VEIL_ERR_FORMAT || st == VEIL_ERR_ARGUMENT || st == VEIL_ERR_UNSUPPORTED || st == VEIL_ERR_INSECURE ||
        st == VEIL_ERR_NOT_FOUND)
        return EXIT_INPUT;
    return EXIT_RUNTIME;
}

static const char *value_of(int argc, char **argv, const char *flag)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag)) return argv[i + 1];
    return NULL;
}

static int has(int argc, char **argv, const char *flag)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], flag)) return 1;
    return 0;
}

/* Every argument must be one of the known flags (those in `values` take a value). */
static int check_args(int argc, char **argv, const char *values, const char *switches)
{
    for (int i = 0; i < argc; i++) {
        char key[80];
        snprintf(key, sizeof key, " %s ", argv[i]);
        if (strstr(values, key) && i + 1 < argc) {
            i++;
            continue;
        }
        if (strstr(switches, key)) continue;
        fprintf(stderr, "veil: unexpected argument '%s'%s\n", argv[i], strstr(values, key) ? " (it needs a value)" : "");
        return 0;
    }
    return 1;
}

static unsigned long number(const char *s, const char *flag, int *ok)
{
    char *end;
    if (!s) return 0;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || s[0] == '-') {
        fprintf(stderr, "veil: %s wants a number, not '%s'\n", flag, s);
        *ok = 0;
    }
    return v;
}

int veil_cmd_serve(int argc, char **argv)
{
    if (!check_args(argc, argv, " --models --store --listen --threads --eval-threads --tls-cert --tls-key --max-keys "
                                "--timeout --max-batches ",
                    " --quiet "))
        return EXIT_USAGE;
    int ok = 1;
    veil_server_config cfg = {
        .models_dir = value_of(argc, argv, "--models"),
        .store_dir = value_of(argc, argv, "--store"),
        .listen = value_of(argc, argv, "--listen"),
        .threads = (unsigned)number(value_of(argc, argv, "--threads"), "--threads", &ok),
        .eval_threads = number(value_of(argc, argv, "--eval-threads"), "--eval-threads", &ok),
        .tls_cert = value_of(argc, argv, "--tls-cert"),
        .tls_key = value_of(argc, argv, "--tls-key"),
        .max_keys = number(value_of(argc, argv, "--max-keys"), "--max-keys", &ok),
        .timeout_s = (unsigned)number(value_of(argc, argv, "--timeout"), "--timeout", &ok),
        .max_batches = (unsigned)number(value_of(argc, argv, "--max-batches"), "--max-batches", &ok),
        .quiet = has(argc, argv, "--quiet"),
    };
    if (!ok) return EXIT_USAGE;
    if (!cfg.models_dir || !cfg.store_dir) {
        fprintf(stderr, "veil: serve needs --models DIR and --store DIR\n");
        return EXIT_USAGE;
    }
    /* SIGTERM and SIGINT are waited for here, not delivered to the server's threads */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    veil_error err = {0};
    veil_server *server = NULL;
    veil_status st = veil_server_start(&server, &cfg, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    fprintf(stderr, "veil: serving the models of %s over %s on %s (port %u), keys stored in %s\n", cfg.models_dir,
            cfg.tls_cert ? "HTTPS" : "HTTP", cfg.listen ? cfg.listen : "127.0.0.1:8080",
            (unsigned)veil_server_port(server), cfg.store_dir);
    printf("listening on port %u\n", (unsigned)veil_server_port(server));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "veil: %s: finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    veil_server_stop(server);
    return EXIT_OK;
}

static int read_file_into(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_read(b, path, (size_t)1 << 34, &err);
    return st == VEIL_OK ? EXIT_OK : fail(st, &err, NULL); /* the reader's message names the file */
}

int veil_cmd_predict(int argc, char **argv)
{
    if (!check_args(argc, argv, " --server --model --keys --in --out --cacert ", " --argmax --quiet ")) return EXIT_USAGE;
    const char *cacert = value_of(argc, argv, "--cacert");
    const char *url = value_of(argc, argv, "--server"), *model = value_of(argc, argv, "--model"),
               *keys = value_of(argc, argv, "--keys"), *in = value_of(argc, argv, "--in"), *out = value_of(argc, argv, "--out");
    if (!url || !model || !keys || !in || !out) {
        fprintf(stderr, "veil: predict needs --server URL --model NAME --keys KEYDIR --in X.csv --out Y.csv\n");
        return EXIT_USAGE;
    }
    int quiet = has(argc, argv, "--quiet");
    char path[4096];
    veil_buffer skb = {0}, ekb = {0};
    snprintf(path, sizeof path, "%s/secret.key", keys);
    int rc = read_file_into(path, &skb);
    snprintf(path, sizeof path, "%s/eval/eval.keys", keys);
    if (!rc) rc = read_file_into(path, &ekb);
    veil_error err = {0};
    veil_status st;
    veil_keyset *ks = NULL;
    veil_client *client = NULL;
    double *x = NULL, *y = NULL;
    size_t rows = 0;
    char id[65] = "";
    snprintf(path, sizeof path, "%s/secret.key", keys);
    if (!rc && (st = veil_keyset_load(&ks, skb.data, skb.len, &err)) != VEIL_OK) rc = fail(st, &err, path);
    if (!rc) rc = veil_read_rows_for_keys(in, veil_keyset_input_width(ks), keys, &x, &rows);
    if (!rc && (st = veil_client_new(&client, url, &err)) != VEIL_OK) rc = fail(st, &err, "server");
    if (!rc && cacert && (st = veil_client_set_ca_file(client, cacert, &err)) != VEIL_OK) rc = fail(st, &err, "--cacert");
    if (!rc) veil_client_set_progress(client, !quiet);
    if (!rc) { /* the model must exist there and read as many values per row as the keys were made for */
        veil_buffer info = {0};
        char mpath[300], want[64];
        snprintf(mpath, sizeof mpath, "/v1/models/%.200s", model);
        if ((st = veil_client_get(client, mpath, &info, &err)) != VEIL_OK) rc = fail(st, &err, "model");
        snprintf(want, sizeof want, "\"input_width\":%zu,", veil_keyset_input_width(ks));
        if (!rc && (!info.data || !memmem(info.data, info.len, want, strlen(want)))) {
            fprintf(stderr, "veil: the server's model %s does not read %zu values per row like these keys\n", model,
                    veil_keyset_input_width(ks));
            rc = EXIT_MISMATCH;
        }
        veil_buffer_free(&info);
    }
    if (!rc && (st = veil_client_upload_keys(client, ekb.data, ekb.len, id, &err)) != VEIL_OK) rc = fail(st, &err, "upload keys");
    const size_t w = veil_keyset_output_width(ks);
    int mode = VEIL_CSV_VALUES;
    if (!rc) rc = veil_csv_mode(has(argc, argv, "--argmax"), veil_keyset_final_op(ks), w, &mode);
    if (!rc && !(y = calloc(rows * w + 1, sizeof *y))) rc = EXIT_RUNTIME;
    /* one request per batch of rows: a throughput batch, or 16 samples in the latency packing */
    const size_t per = ks && veil_keyset_packing(ks) == VEIL_PACKING_THROUGHPUT ? veil_keyset_batch(ks) : 16;
    for (size_t first = 0; !rc && first < rows; first += per) {
        size_t n = rows - first < per ? rows - first : per;
        veil_ciphertexts *cts = NULL, *res = NULL;
        veil_buffer cb = {0}, rb = {0};
        if ((st = veil_ciphertexts_encrypt(&cts, ks, x + first * veil_keyset_input_width(ks), n, NULL, &err)) != VEIL_OK ||
            (st = veil_ciphertexts_save(&cb, cts, &err)) != VEIL_OK)
            rc = fail(st, &err, NULL);
        if (!rc && (st = veil_client_predict(client, model, id, cb.data, cb.len, &rb, &err)) != VEIL_OK)
            rc = fail(st, &err, "predict");
        if (!rc && (st = veil_ciphertexts_load(&res, ks, NULL, rb.data, rb.len, &err)) != VEIL_OK)
            rc = fail(st, &err, "the server's answer");
        if (!rc && veil_ciphertexts_rows(res) != n) {
            fprintf(stderr, "veil: the server answered %zu rows for %zu\n", veil_ciphertexts_rows(res), n);
            rc = EXIT_INPUT;
        }
        if (!rc && (st = veil_ciphertexts_decrypt(y + first * w, NULL, ks, res, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
        if (!rc && !quiet && isatty(2)) fprintf(stderr, "\rpredicted %zu / %zu rows", first + n, rows);
        veil_ciphertexts_free(cts);
        veil_ciphertexts_free(res);
        veil_buffer_free(&cb);
        veil_buffer_free(&rb);
    }
    if (!rc && !quiet && isatty(2)) fputc('\n', stderr);
    if (!rc) rc = veil_write_csv(out, y, rows, w, mode);
    if (!rc && !quiet) {
        uint64_t sent, received;
        veil_client_traffic(client, &sent, &received);
        fprintf(stderr, "veil: %zu rows predicted by %s (keys %s): %llu bytes sent, %llu received\n", rows, url, id,
                (unsigned long long)sent, (unsigned long long)received);
    }
    free(x);
    free(y);
    veil_client_free(client);
    veil_keyset_free(ks);
    veil_buffer_free(&skb);
    veil_buffer_free(&ekb);
    return rc;
}

/* keygen from a server's plan: for a client that does not hold the model file. */
int veil_cmd_keygen_remote(const char *url, const char *model, int latency, const char *out_dir, int force, int quiet,
                           const char *cacert)
{
    char sk_path[4096], eval_dir[4096], eval_path[4096], path[512];
    snprintf(sk_path, sizeof sk_path, "%s/secret.key", out_dir);
    snprintf(eval_dir, sizeof eval_dir, "%s/eval", out_dir);
    snprintf(eval_path, sizeof eval_path, "%s/eval/eval.keys", out_dir);
    struct stat sb;
    if (stat(sk_path, &sb) == 0 && !force) {
        fprintf(stderr, "veil: %s already holds a key set; keys are never overwritten (use --force)\n", out_dir);
        return EXIT_INPUT;
    }
    int made[2];
    if (veil_make_key_dirs(out_dir, eval_dir, made)) return EXIT_RUNTIME;
    veil_error err = {0};
    veil_client *client = NULL;
    veil_buffer pb = {0}, b = {0};
    veil_plan *plan = NULL;
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    int rc = EXIT_OK;
    veil_status st;
    snprintf(path, sizeof path, "/v1/models/%s/plan?packing=%s", model, latency ? "latency" : "throughput");
    if ((st = veil_client_new(&client, url, &err)) != VEIL_OK) rc = fail(st, &err, "server");
    if (!rc && cacert && (st = veil_client_set_ca_file(client, cacert, &err)) != VEIL_OK) rc = fail(st, &err, "--cacert");
    if (!rc && (st = veil_client_get(client, path, &pb, &err)) != VEIL_OK) rc = fail(st, &err, "plan");
    if (!rc && (st = veil_plan_load(&plan, pb.data, pb.len, &err)) != VEIL_OK) rc = fail(st, &err, "the server's plan");
    if (!rc && !quiet) fprintf(stderr, "veil: generating keys for %s's plan of model %s...\n", url, model);
    if (!rc && (st = veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    if (!rc) rc = veil_write_key_pair(sk_path, eval_path, ks, ek);
    if (rc) veil_remove_key_dirs(out_dir, eval_dir, made);
    if (!rc && !quiet) fprintf(stderr, "veil: wrote %s (secret: keep it) and %s\n", sk_path, eval_path);
    veil_buffer_free(&b);
    veil_buffer_free(&pb);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_client_free(client);
    return rc;
}
