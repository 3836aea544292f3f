/* The network commands of `veil`: serve (the cloud side) and predict (the data owner, through a server). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

/* serve's numbers: any whole number (0: the default); *ok = 0 after a message when s is not one. */
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

/* A limit of serve: a number (0: the default), or "off" (VEIL_LIMIT_OFF); *ok = 0 after a message otherwise. */
static unsigned limit(const char *s, const char *flag, int *ok)
{
    if (s && !strcmp(s, "off")) return VEIL_LIMIT_OFF;
    const unsigned long v = number(s, flag, ok);
    if (*ok && v >= VEIL_LIMIT_OFF) {
        fprintf(stderr, "veil: %s wants a number below %u or off, not '%s'\n", flag, VEIL_LIMIT_OFF, s);
        *ok = 0;
    }
    return (unsigned)v;
}

/* serve's sizes: bytes, or with K, M or G (KiB, MiB, GiB); 0: the default. */
static unsigned long long bytes_number(const char *s, const char *flag, int *ok)
{
    char *end;
    if (!s) return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    const int shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20 : *end == 'G' || *end == 'g' ? 30 : 0;
    if (shift) end++;
    if (errno || *end || end == s || s[0] == '-' || (shift && v > (~0ULL >> shift))) {
        fprintf(stderr, "veil: %s wants a number of bytes (or with K, M or G), not '%s'\n", flag, s);
        *ok = 0;
        return 0;
    }
    return v << shift;
}

int cli_cmd_serve(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_SERVE)) return EXIT_USAGE;
    int ok = 1;
    veil_server_config cfg = {
        .models_dir = o.models,
        .store_dir = o.store,
        .listen = o.listen,
        .threads = (unsigned)number(o.serve_threads, "--threads", &ok),
        .eval_threads = number(o.eval_threads, "--eval-threads", &ok),
        .tls_cert = o.tls_cert,
        .tls_key = o.tls_key,
        .max_keys = number(o.max_keys, "--max-keys", &ok),
        .tenant_max_keys = number(o.tenant_max_keys, "--tenant-max-keys", &ok),
        .tenant_max_bytes = number(o.tenant_max_bytes, "--tenant-max-bytes", &ok),
        .timeout_s = (unsigned)number(o.timeout, "--timeout", &ok),
        .max_batches = (unsigned)number(o.max_batches, "--max-batches", &ok),
        .quiet = o.quiet,
        .no_auth = o.no_auth,
        .insecure_http = o.insecure_http,
        .tenant_rps = limit(o.tenant_rps, "--tenant-rps", &ok),
        .tenant_burst = limit(o.tenant_burst, "--tenant-burst", &ok),
        .tenant_max_predictions = limit(o.tenant_max_predictions, "--tenant-max-predictions", &ok),
        .max_connections = (unsigned)number(o.max_connections, "--max-connections", &ok), /* never off */
        .max_connections_per_address = limit(o.max_per_address, "--max-connections-per-address", &ok),
        .request_deadline_s = limit(o.request_deadline, "--request-deadline", &ok),
        .cache_bytes = bytes_number(o.cache_bytes, "--cache-bytes", &ok),
        .memory_budget = bytes_number(o.memory_budget, "--memory-budget", &ok),
        .tenant_max_groups = number(o.tenant_max_groups, "--tenant-max-groups", &ok),
        .group_max_bytes = bytes_number(o.group_max_bytes, "--group-max-bytes", &ok),
    };
    if (!ok) return EXIT_USAGE;
    if (!cfg.models_dir || !cfg.store_dir) return cli_error(EXIT_USAGE, "serve needs --models DIR and --store DIR");
    /* SIGTERM and SIGINT are waited for here, not delivered to the server's threads */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    veil_error err = {0};
    veil_server *server = NULL;
    const int rc = cli_status(veil_server_start(&server, &cfg, &err), &err, NULL);
    if (rc) return rc;
    fprintf(stderr, "veil: serving the models of %s over %s on %s (port %u), keys stored in %s%s\n", cfg.models_dir,
            cfg.tls_cert ? "HTTPS" : "HTTP", cfg.listen ? cfg.listen : "127.0.0.1:8080",
            (unsigned)veil_server_port(server), cli_store_is_url(cfg.store_dir) ? "PostgreSQL" : cfg.store_dir,
            cfg.no_auth ? " (--no-auth: no token asked, every client is one tenant)" : "");
    printf("listening on port %u\n", (unsigned)veil_server_port(server));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "veil: %s: finishing the requests in flight\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    veil_server_stop(server);
    return EXIT_OK;
}

/* The server's model must exist and read as many values per row as the keys were made for. */
static int check_model(veil_client *client, const char *model, const veil_keyset *ks)
{
    veil_buffer info = {0};
    veil_error err = {0};
    char mpath[300], want[64];
    int rc = EXIT_OK;
    snprintf(mpath, sizeof mpath, "/v1/models/%.200s", model);
    snprintf(want, sizeof want, "\"input_width\":%zu,", veil_keyset_input_width(ks));
    CLI_CHECK(cli_status(veil_client_get(client, mpath, &info, &err), &err, "model"));
    if (!info.data || !memmem(info.data, info.len, want, strlen(want)))
        CLI_FAIL(EXIT_MISMATCH, "the server's model %s does not read %zu values per row like these keys", model,
                 veil_keyset_input_width(ks));
done:
    veil_buffer_free(&info);
    return rc;
}

/* Rows [first, first + n): encrypted, sent, answered and decrypted into y. */
static int predict_rows(veil_client *client, const cli_options *o, const char *id, const veil_keyset *ks,
                        const double *x, double *y, size_t n)
{
    veil_ciphertexts *cts = NULL, *res = NULL;
    veil_buffer cb = {0}, rb = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_status(veil_ciphertexts_encrypt(&cts, ks, x, n, NULL, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_ciphertexts_save(&cb, cts, &err), &err, NULL));
    CLI_CHECK(cli_status(veil_client_predict(client, o->model, id, cb.data, cb.len, &rb, &err), &err, "predict"));
    CLI_CHECK(cli_status(veil_ciphertexts_load(&res, ks, NULL, rb.data, rb.len, &err), &err, "the server's answer"));
    if (veil_ciphertexts_rows(res) != n)
        CLI_FAIL(EXIT_INPUT, "the server answered %zu rows for %zu", veil_ciphertexts_rows(res), n);
    CLI_CHECK(cli_charge_release(o->keys, "the server's answer", res)); /* a noisy release: KEYDIR's budget */
    CLI_CHECK(cli_status(veil_ciphertexts_decrypt(y, NULL, ks, res, &err), &err, NULL));
done:
    veil_ciphertexts_free(cts);
    veil_ciphertexts_free(res);
    veil_buffer_free(&cb);
    veil_buffer_free(&rb);
    return rc;
}

int cli_cmd_predict(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_PREDICT)) return EXIT_USAGE;
    if (!o.server || !o.model || !o.keys || !o.in || !o.out)
        return cli_error(EXIT_USAGE, "predict needs --server URL --model NAME --keys KEYDIR --in X.csv --out Y.csv");
    char sk_path[4096], eval_path[4096];
    snprintf(sk_path, sizeof sk_path, "%s/secret.key", o.keys);
    snprintf(eval_path, sizeof eval_path, "%s/eval/eval.keys", o.keys);
    veil_buffer skb = {0}, ekb = {0};
    veil_error err = {0};
    veil_keyset *ks = NULL;
    veil_client *client = NULL;
    double *x = NULL, *y = NULL;
    size_t rows = 0;
    char id[65] = "";
    int rc = EXIT_OK;
    CLI_CHECK(cli_read_file(sk_path, &skb));
    CLI_CHECK(cli_read_file(eval_path, &ekb));
    CLI_CHECK(cli_status(veil_keyset_load(&ks, skb.data, skb.len, &err), &err, sk_path));
    CLI_CHECK(cli_read_rows_for_keys(o.in, veil_keyset_input_width(ks), o.keys, &x, &rows));
    CLI_CHECK(cli_status(veil_client_new(&client, o.server, &err), &err, "server"));
    if (o.cacert) CLI_CHECK(cli_status(veil_client_set_ca_file(client, o.cacert, &err), &err, "--cacert"));
    CLI_CHECK(cli_client_token(client, o.token_file));
    CLI_CHECK(check_model(client, o.model, ks));
    cli_bar upload;
    cli_bar_init(&upload, "sending keys", o.quiet);
    veil_client_set_progress(client, cli_progress, &upload);
    CLI_CHECK(cli_status(veil_client_upload_keys(client, ekb.data, ekb.len, id, &err), &err, "upload keys"));
    veil_client_set_progress(client, NULL, NULL);
    const size_t w = veil_keyset_output_width(ks);
    int mode = CLI_CSV_VALUES;
    CLI_CHECK(cli_csv_mode(o.argmax, veil_keyset_final_op(ks), w, &mode));
    if (!(y = calloc(rows * w + 1, sizeof *y))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    /* one request per batch of rows: a throughput batch, or 16 samples in the latency packing */
    const size_t per = veil_keyset_packing(ks) == VEIL_PACKING_THROUGHPUT ? veil_keyset_batch(ks) : 16;
    cli_bar bar;
    cli_bar_init(&bar, "predicting", o.quiet);
    for (size_t first = 0; first < rows; first += per) {
        const size_t n = rows - first < per ? rows - first : per;
        CLI_CHECK(predict_rows(client, &o, id, ks, x + first * veil_keyset_input_width(ks), y + first * w, n));
        cli_progress(&bar, first + n, rows);
    }
    CLI_CHECK(cli_write_csv(o.out, y, rows, w, mode));
    if (!o.quiet) {
        uint64_t sent, received;
        veil_client_traffic(client, &sent, &received);
        fprintf(stderr, "veil: %zu rows predicted by %s (keys %s): %llu bytes sent, %llu received\n", rows, o.server,
                id, (unsigned long long)sent, (unsigned long long)received);
    }
done:
    free(x);
    free(y);
    veil_client_free(client);
    veil_keyset_free(ks);
    veil_buffer_free(&skb);
    veil_buffer_free(&ekb);
    return rc;
}
