/*
 * veil party push|pull: a party's files through a server that aggregates (`veil serve`, /v1/groups; docs/net.md,
 * "Groups", and docs/multiparty.md, "The server as aggregator"). The token comes from VEIL_TOKEN or
 * --token-file, as for veil predict.
 *
 *   veil party push --server URL --to PATH --in FILE [--token-file F] [--cacert F]   # PUT for the group, its
 *                                                      # plan, joint keys, switch/to and switch/in, else POST
 *   veil party pull --server URL --from PATH --out FILE [--token-file F] [--cacert F]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

typedef struct net_args {
    const char *server, *path, *file, *token_file, *cacert;
} net_args;

static int parse_net(int argc, char **argv, int push, net_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(k, "--server")                   ? &a->server
                            : !strcmp(k, push ? "--to" : "--from")   ? &a->path
                            : !strcmp(k, push ? "--in" : "--out")    ? &a->file
                            : !strcmp(k, "--token-file")             ? &a->token_file
                            : !strcmp(k, "--cacert")                 ? &a->cacert
                                                                     : NULL;
        if (!slot) return cli_error(EXIT_USAGE, "veil party %s: unknown option %s", argv[0], k);
        if (!v) return cli_error(EXIT_USAGE, "veil party %s: %s needs a value", argv[0], k);
        *slot = v;
        i++;
    }
    if (!a->server || !a->path || !a->file)
        return cli_error(EXIT_USAGE, "veil party %s --server URL %s PATH %s FILE [--token-file F] [--cacert F]",
                         argv[0], push ? "--to" : "--from", push ? "--in" : "--out");
    if (strncmp(a->path, "/v1/groups/", 11) != 0 || strlen(a->path) > 512)
        return cli_error(EXIT_USAGE, "%s: a path under /v1/groups/ (docs/net.md, \"Groups\")", a->path);
    return EXIT_OK;
}

/* PUT makes or joins the group (/v1/groups/NAME), stores its plan (.../plan), its joint keys (.../joint), the
 * receiver's keys and the set to switch (.../switch/to, .../switch/in); everything else is POSTed. */
static const char *method_for(const char *path)
{
    const char *name = path + 11, *slash = strchr(name, '/');
    if (!slash) return "PUT";
    return !strcmp(slash, "/joint") || !strcmp(slash, "/plan") || !strcmp(slash, "/switch/to") ||
                   !strcmp(slash, "/switch/in")
               ? "PUT"
               : "POST";
}

int cli_party_net(int argc, char **argv)
{
    const int push = !strcmp(argv[0], "push");
    net_args a;
    veil_client *client = NULL;
    veil_buffer in = {0}, out = {0};
    veil_error err = {0};
    int rc = parse_net(argc, argv, push, &a);
    if (rc) return rc;
    CLI_CHECK(cli_status(veil_client_new(&client, a.server, &err), &err, "server"));
    if (a.cacert) CLI_CHECK(cli_status(veil_client_set_ca_file(client, a.cacert, &err), &err, "--cacert"));
    CLI_CHECK(cli_client_token(client, a.token_file));
    if (push) {
        CLI_CHECK(cli_read_file(a.file, &in));
        CLI_CHECK(cli_status(veil_client_send(client, method_for(a.path), a.path, in.data, in.len, &out, &err), &err,
                             a.path));
        fwrite(out.data, 1, out.len, stdout); /* the server's JSON: what is in */
    } else {
        CLI_CHECK(cli_status(veil_client_get(client, a.path, &out, &err), &err, a.path));
        CLI_CHECK(cli_save_buffer(a.file, &out));
    }
done:
    veil_buffer_free(&in);
    veil_buffer_free(&out);
    veil_client_free(client);
    return rc;
}
