/* veil token add|revoke|list: the tokens of a server's tenants, kept hashed in its store (docs/net.md). */
#include <stdio.h>
#include <string.h>
#include "veil_cli.h"

int cli_cmd_token(int argc, char **argv)
{
    if (argc < 1 || (strcmp(argv[0], "add") != 0 && strcmp(argv[0], "revoke") != 0 && strcmp(argv[0], "list") != 0))
        return cli_error(EXIT_USAGE, "token wants add, revoke or list (veil token --help)");
    const char *what = argv[0];
    cli_options o;
    if (!cli_parse(argc - 1, argv + 1, &o, CLI_TOKEN)) return EXIT_USAGE;
    if (!cli_need(o.store, "--store")) return EXIT_USAGE;
    veil_error err = {0};
    int rc = EXIT_OK;
    if (strcmp(what, "add") == 0) {
        if (!cli_need(o.tenant, "--tenant")) return EXIT_USAGE;
        if (o.token_id) return cli_error(EXIT_USAGE, "token add takes no --id");
        char token[VEIL_TOKEN_SIZE], id[17];
        rc = cli_status(veil_token_add(o.store, o.tenant, o.admin, token, id, &err), &err, NULL);
        if (rc == EXIT_OK) {
            fprintf(stderr, "veil: token %s for tenant %s (%s scope) added to %s%s; it is shown once, only "
                            "its hash is kept:\n", id, o.tenant, o.admin ? "admin" : "tenant",
                    cli_store_is_url(o.store) ? "the PostgreSQL store" : o.store,
                    cli_store_is_url(o.store) ? "" : "/tokens");
            printf("%s\n", token);
            rc = cli_finish_output();
        }
        veil_wipe(token, sizeof token);
        return rc;
    }
    if (o.admin) return cli_error(EXIT_USAGE, "--admin is for token add");
    if (strcmp(what, "revoke") == 0) {
        if (!o.tenant == !o.token_id) return cli_error(EXIT_USAGE, "token revoke wants --id ID or --tenant NAME");
        size_t n = 0;
        rc = cli_status(veil_token_revoke(o.store, o.token_id, o.tenant, &n, &err), &err, NULL);
        if (rc == EXIT_OK) fprintf(stderr, "veil: %zu token%s revoked\n", n, n == 1 ? "" : "s");
        return rc;
    }
    if (o.tenant || o.token_id) return cli_error(EXIT_USAGE, "token list takes --store only");
    veil_buffer b = {0};
    rc = cli_status(veil_token_list(o.store, &b, &err), &err, NULL);
    if (rc == EXIT_OK) {
        fwrite(b.data, 1, b.len, stdout);
        rc = cli_finish_output();
    }
    veil_buffer_free(&b);
    return rc;
}
