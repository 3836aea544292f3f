/* veil info FILE: what a key, ciphertext, parameter or model-set file holds. */
#include <stdio.h>
#include <string.h>
#include "veil_cli.h"

static const char *type_name(veil_object_type t)
{
    switch (t) {
    case VEIL_OBJECT_PARAMS: return "parameter set";
    case VEIL_OBJECT_SECRET_KEY: return "secret key";
    case VEIL_OBJECT_PUBLIC_KEY: return "public key";
    case VEIL_OBJECT_SWITCH_KEY: return "key-switching key (relinearization or Galois)";
    case VEIL_OBJECT_CKKS_PLAINTEXT: return "CKKS plaintext";
    case VEIL_OBJECT_CKKS_CIPHERTEXT: return "CKKS ciphertext";
    case VEIL_OBJECT_BGV_PLAINTEXT: return "BGV plaintext";
    case VEIL_OBJECT_BGV_CIPHERTEXT: return "BGV ciphertext";
    case VEIL_OBJECT_SET: return "set of objects";
    case VEIL_OBJECT_PARTY_GROUP: return "multi-party group";
    case VEIL_OBJECT_PARTY_SHARE: return "multi-party share (a party's, or an aggregate)";
    case VEIL_OBJECT_PARTY_BOX_KEY: return "multi-party box key (public; t-out-of-N deals are sealed to it)";
    case VEIL_OBJECT_PARTY_DEAL: return "multi-party deal (a sealed Shamir share for one party, t-out-of-N)";
    case VEIL_OBJECT_PARTY_THRESHOLD_KEY: return "multi-party threshold key (secret, t-out-of-N)";
    case VEIL_OBJECT_ENCAPSULATION_KEY: return "bootstrapping encapsulation key";
    }
    return "unknown";
}

static const char *security_name(veil_security s)
{
    switch (s) {
    case VEIL_SECURITY_128: return "128-bit";
    case VEIL_SECURITY_192: return "192-bit";
    case VEIL_SECURITY_256: return "256-bit";
    case VEIL_SECURITY_NONE: return "NONE (insecure, tests only)";
    }
    return "unknown";
}

static void print_header(const char *path, const veil_buffer *buf, const veil_object_info *info)
{
    printf("file:       %s\n", path);
    printf("object:     %s\n", type_name(info->type));
    printf("form:       %s%s%s\n", info->flags & VEIL_FLAG_SEEDED ? "seeded" : "full",
           info->flags & VEIL_FLAG_ZSTD ? ", zstd-compressed" : "", info->flags & VEIL_FLAG_SECRET ? ", SECRET" : "");
    printf("security:   %s\n", security_name(info->security));
    printf("parameters: ");
    for (int i = 0; i < 8; i++) printf("%02x", info->params_hash[i]);
    printf("... (hash)\n");
    printf("size:       %zu bytes (payload %llu, stored %llu)\n", buf->len, (unsigned long long)info->payload_bytes,
           (unsigned long long)info->stored_bytes);
    printf("format:     version %u (%s)\n", info->version,
           info->version >= 2 ? "integrity digest verified" : "no integrity digest");
}

/* A parameter file's set itself. */
static int print_params(const char *path, const veil_buffer *buf)
{
    veil_error err = {0};
    veil_params *p = NULL;
    if (veil_params_load(&p, buf->data, buf->len, &err) != VEIL_OK) {
        fprintf(stderr, "veil: %s: %s\n", path, err.detail);
        return err.status == VEIL_ERR_NO_MEMORY ? EXIT_RUNTIME : EXIT_INPUT;
    }
    printf("scheme:     %s\n", veil_params_plain_modulus(p) ? "BGV" : "CKKS");
    printf("N:          %zu\nQ primes:   %zu\nP primes:   %zu\ndnum:       %zu\nlog2(QP):   %u\n", veil_params_degree(p),
           veil_params_q_count(p), veil_params_p_count(p), veil_params_dnum(p), veil_params_log_qp(p));
    if (veil_params_plain_modulus(p)) printf("t:          %llu\n", (unsigned long long)veil_params_plain_modulus(p));
    veil_params_free(p);
    return EXIT_OK;
}

/* A privacy budget file (veil budget), or, beside a key set's secret.key, its folder's budget. */
static int print_budget_file(const char *path, const veil_buffer *buf)
{
    veil_error err = {0};
    veil_dp_budget b;
    if (veil_dp_budget_load(&b, buf->data, buf->len, &err) != VEIL_OK) return cli_error(EXIT_INPUT, "%s: %s", path, err.detail);
    printf("file:       %s\nobject:     privacy budget (zCDP accountant, docs/privacy.md)\n", path);
    cli_print_budget(&b);
    return cli_finish_output();
}

static int print_sibling_budget(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    veil_dp_budget b;
    int exists = 0;
    int rc = cli_load_budget(dir, &b, &exists);
    if (rc == EXIT_OK && exists) cli_print_budget(&b);
    return rc;
}

/* veil info FILE: the header of a stored object, and the set itself for a parameter file. */
int cli_cmd_info(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: veil info FILE\n");
        return EXIT_USAGE;
    }
    const char *path = argv[0];
    veil_error err = {0};
    veil_buffer buf = {0};
    veil_object_info info;
    int rc = EXIT_OK;
    if (veil_file_read(&buf, path, (size_t)1 << 34, &err) != VEIL_OK)
        CLI_FAIL(EXIT_RUNTIME, "%s", err.detail); /* the reader's message names the file */
    if (veil_dp_budget_is(buf.data, buf.len)) {
        rc = print_budget_file(path, &buf);
        goto done;
    }
    if (veil_object_peek(&info, buf.data, buf.len, &err) != VEIL_OK) /* bad input, as for every command */
        CLI_FAIL(EXIT_INPUT, "%s: %s", path, err.detail);
    print_header(path, &buf, &info);
    if (info.type == VEIL_OBJECT_PARAMS) CLI_CHECK(print_params(path, &buf));
    if (info.type == VEIL_OBJECT_SET) {
        char text[1024];
        if (veil_ml_file_describe(buf.data, buf.len, text, sizeof text, &err) == VEIL_OK) fputs(text, stdout);
        else printf("contents:   %s\n", err.detail);
    }
    if (info.flags & VEIL_FLAG_SECRET) CLI_CHECK(print_sibling_budget(path)); /* a key set: its folder's budget */
    rc = cli_finish_output();
done:
    veil_buffer_free(&buf);
    return rc;
}
