/*
 * `veil serve`: models, a key store and encrypted predictions over HTTP/1.1 (libmicrohttpd, thread pool).
 * The server holds evaluation keys only: a body that is, or holds, a secret key is refused (422). Its parts:
 * serve_internal.h. Here: start and stop.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "net/serve_internal.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static veil_status read_text(const char *path, char **out, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_buffer b = {0};
    VEIL_CHECK(veil_file_read(&b, path, 1 << 20, err));
    *out = malloc(b.len + 1);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "tls");
    memcpy(*out, b.data, b.len);
    (*out)[b.len] = 0;
done:
    veil_buffer_free(&b);
    return st;
}

static veil_status parse_listen(const char *listen, struct sockaddr_in *addr, veil_error *err)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "--listen wants HOST:PORT, not '%s'", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "--listen wants an IPv4 HOST:PORT, not '%s'", listen);
    return VEIL_OK;
}

void veil_server_stop(veil_server *s)
{
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->daemon) {
        const MHD_socket listener = MHD_quiesce_daemon(s->daemon); /* no new connections; those open finish */
        for (int i = 0; i < 3000 && atomic_load(&s->in_flight) > 0; i++) {
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
        MHD_stop_daemon(s->daemon);
        if (listener != MHD_INVALID_SOCKET) close(listener); /* quiescing handed it to us */
    }
    if (s->watchdog_started) { /* after the daemon: no connection is left for it */
        atomic_store(&s->watchdog_stop, 1);
        pthread_join(s->watchdog, NULL);
    }
    while (s->conns) { /* none left once the daemon stopped; in case */
        conn_entry *e = s->conns;
        s->conns = e->next;
        free(e);
    }
    for (size_t i = 0; i < s->n_stored; i++) veil_srv_free_entry(s->stored[i]); /* evaluators before their models */
    s->n_stored = 0;
    for (size_t i = 0; i < s->n_models; i++) veil_srv_free_model(&s->models[i]);
    if (s->store && s->store->close) s->store->close(s);
    if (s->store && s->store->shared && s->tmp_dir) rmdir(s->tmp_dir); /* empty once every body is gone */
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->auth_lock);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_mutex_destroy(&s->limits_lock);
    pthread_mutex_destroy(&s->models_lock);
    free(s->tenant_limits);
    if (s->tokens) sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    free(s->models_dir);
    free(s->store_dir);
    free(s->keys_dir);
    free(s->tmp_dir);
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s);
}

uint16_t veil_server_port(const veil_server *s) { return s ? s->port : 0; }

/* libmicrohttpd's daemon on addr: a thread pool, HTTPS when the server has a certificate, the connection limits;
 * NULL when it cannot listen. */
static struct MHD_Daemon *start_daemon(veil_server *s, const struct sockaddr_in *addr)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_EPOLL;
    struct MHD_OptionItem o[13];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.timeout_s, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, NULL};
    if (veil_srv_limit_on(s->cfg.max_connections_per_address))
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_connections_per_address, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)veil_srv_on_completed, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)veil_srv_on_connection, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)veil_srv_on_uri, s};
    if (s->tls_cert_pem) {
        flags |= MHD_USE_TLS;
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, veil_srv_on_request, s, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
}

/* The configuration's defaults for what it leaves zero. */
static void set_defaults(veil_server_config *c, int listen_on)
{
    if (!c->threads) c->threads = 4;
    if (!c->eval_threads) c->eval_threads = 1;
    if (!c->max_keys) c->max_keys = 64;
    if (c->max_keys > MAX_STORED) c->max_keys = MAX_STORED;
    if (!c->max_store_bytes) c->max_store_bytes = (uint64_t)4 << 30;
    if (!c->timeout_s) c->timeout_s = 60;
    if (!c->max_batches) c->max_batches = 16;
    if (!c->tenant_rps) c->tenant_rps = listen_on ? 200 : VEIL_LIMIT_OFF; /* offline: as fast as asked */
    if (!c->tenant_burst) c->tenant_burst = veil_srv_limit_on(c->tenant_rps) && c->tenant_rps < 5 ? 10 : 2 * c->tenant_rps;
    if (!c->tenant_max_predictions) c->tenant_max_predictions = 32;
    if (!c->max_connections || !veil_srv_limit_on(c->max_connections)) c->max_connections = 512;
    if (!c->max_connections_per_address) c->max_connections_per_address = 32;
    if (!c->request_deadline_s) c->request_deadline_s = 30;
    if (!c->cache_bytes) c->cache_bytes = (uint64_t)1 << 30;
    if (!c->memory_budget) c->memory_budget = (uint64_t)4 << 30;
    if (!c->tenant_max_groups) c->tenant_max_groups = 16;
    if (!c->group_max_bytes) c->group_max_bytes = (uint64_t)1 << 30;
}

/* A server's state before anything is loaded: locks, configuration, the store's paths (NULL: out of memory). */
static veil_server *new_server(const veil_server_config *cfg, int listen_on)
{
    veil_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->auth_lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_mutex_init(&s->limits_lock, NULL);
    pthread_mutex_init(&s->models_lock, NULL);
    s->cfg = *cfg;
    set_defaults(&s->cfg, listen_on);
    s->models_dir = dup_str(cfg->models_dir);
    s->store_dir = dup_str(cfg->store_dir);
    s->store = veil_store_is_url(cfg->store_dir) ? &veil_pg_store_ops : &veil_folder_store_ops;
    if (s->store->shared) { /* large bodies wait in a folder of this replica's own: $TMPDIR/veil-serve-PID */
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = "/tmp";
        s->keys_dir = dup_str("");
        s->tmp_dir = malloc(strlen(t) + 40);
        if (s->tmp_dir) sprintf(s->tmp_dir, "%s/veil-serve-%ld", t, (long)getpid());
        return s;
    }
    s->keys_dir = malloc(strlen(cfg->store_dir) + 8);
    s->tmp_dir = malloc(strlen(cfg->store_dir) + 8);
    if (s->keys_dir) sprintf(s->keys_dir, "%s/keys", cfg->store_dir);
    if (s->tmp_dir) sprintf(s->tmp_dir, "%s/tmp", cfg->store_dir);
    return s;
}

/* Where to listen: refused off loopback without TLS (unless --insecure-http) and for --no-auth. */
static veil_status check_listen(const veil_server_config *cfg, struct sockaddr_in *addr, veil_error *err)
{
    const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
    const veil_status st = parse_listen(listen, addr, err);
    if (st != VEIL_OK) return st;
    const int loopback = (ntohl(addr->sin_addr.s_addr) >> 24) == 127;
    if (cfg->no_auth && !loopback)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "serve: --no-auth serves everyone without a token: only on a loopback address (127.x.x.x), "
                         "not %s", listen);
    if (!cfg->tls_cert && !loopback && !cfg->insecure_http)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "serve: %s is not a loopback address: give --tls-cert and --tls-key (HTTPS), or --insecure-http "
                         "to serve plain HTTP behind a proxy that terminates TLS", listen);
    return VEIL_OK;
}

/* The token file, read (a bad one stops the start), with a word when it holds no token yet. */
static veil_status open_tokens(veil_server *s, veil_error *err)
{
    const veil_status st = veil_tokens_read(s->store_dir, &s->tokens, &s->n_tokens, err);
    if (st != VEIL_OK) return st;
    pthread_mutex_lock(&s->auth_lock);
    veil_srv_refresh_tokens(s);
    pthread_mutex_unlock(&s->auth_lock);
    if (!s->n_tokens && s->store->shared) /* the URL is not repeated: it may hold a password */
        fprintf(stderr, "veil: no token in the PostgreSQL store yet: every request but /healthz and /metrics is "
                        "refused (veil token add --store URL --tenant NAME)\n");
    else if (!s->n_tokens)
        fprintf(stderr, "veil: no token in %s/tokens yet: every request but /healthz and /metrics is refused "
                        "(veil token add --store %s --tenant NAME)\n", s->store_dir, s->store_dir);
    return VEIL_OK;
}

/* The deadline's watchdog and libmicrohttpd's daemon on addr; the port it listens on. */
static veil_status start_listening(veil_server *s, const struct sockaddr_in *addr, veil_error *err)
{
    if (veil_srv_limit_on(s->cfg.request_deadline_s)) {
        if (pthread_create(&s->watchdog, NULL, veil_srv_watchdog_main, s) != 0)
            return veil_fail(err, VEIL_ERR_INTERNAL, "serve: cannot start the request deadline's thread");
        s->watchdog_started = 1;
    }
    if (!(s->daemon = start_daemon(s, addr)))
        return veil_fail(err, VEIL_ERR_IO, "cannot listen on %s (in use, or not an address of this machine)",
                         s->cfg.listen ? s->cfg.listen : "127.0.0.1:8080");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(addr->sin_port);
    return VEIL_OK;
}

/* The server of cfg: models, store, tokens; listening when listen_on is 1. */
static veil_status server_open(veil_server **out, const veil_server_config *cfg, int listen_on, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(cfg, err);
    if (!cfg->models_dir || !cfg->store_dir) return veil_fail(err, VEIL_ERR_ARGUMENT, "serve: --models and --store are required");
    if (!cfg->tls_cert != !cfg->tls_key) return veil_fail(err, VEIL_ERR_ARGUMENT, "serve: TLS needs both a certificate and a key");
    veil_server *s = new_server(cfg, listen_on);
    if (!s) return veil_fail(err, VEIL_ERR_NO_MEMORY, "server");
    veil_status st = VEIL_OK;
    struct sockaddr_in addr;
    if (!s->models_dir || !s->store_dir || !s->keys_dir || !s->tmp_dir) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "server");
    VEIL_CHECK(check_listen(cfg, &addr, err));
    VEIL_CHECK(veil_srv_load_models(s, err));
    VEIL_CHECK(veil_srv_open_store(s, err));
    veil_srv_groups_at_start(s);
    if (!cfg->no_auth) VEIL_CHECK(open_tokens(s, err));
    if (cfg->tls_cert) {
        VEIL_CHECK(read_text(cfg->tls_cert, &s->tls_cert_pem, err));
        VEIL_CHECK(read_text(cfg->tls_key, &s->tls_key_pem, err));
    }
    if (listen_on) VEIL_CHECK(start_listening(s, &addr, err));
    else s->port = ntohs(addr.sin_port);
    *out = s;
    s = NULL;
done:
    veil_server_stop(s); /* after a failure: what was started stops, what was loaded is freed */
    return st;
}

veil_status veil_server_start(veil_server **out, const veil_server_config *cfg, veil_error *err)
{
    return server_open(out, cfg, 1, err);
}

veil_status veil_server_open(veil_server **out, const veil_server_config *cfg, veil_error *err)
{
    return server_open(out, cfg, 0, err);
}
