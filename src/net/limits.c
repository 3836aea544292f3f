/*
 * Limits: open connections (per address, a whole request's deadline, garbage closed early) and the tenants'
 * (request rate, predictions at once).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/ioctl.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (Linux 4.1) */
#include <netinet/in.h>
#include "net/serve_internal.h"

/* Bytes on a connection that libmicrohttpd has read and that make no request line within this many seconds are
 * garbage (a request line comes whole in a client's first packets; over TLS, after a handshake of one or two
 * round trips): the connection is closed then, not at the request's deadline. The clock runs only while
 * libmicrohttpd has read all that came (none waits in the kernel): a connection whose thread is busy with
 * another request's evaluation is not judged by bytes it has not looked at. */
#define FIRST_LINE_S 2.0

/* The bytes libmicrohttpd has read from fd: those the kernel received less those it still holds (0 when it
 * cannot tell). Received first: bytes arriving between the two calls count as unread. *unread: the latter. */
static unsigned long long bytes_read(int fd, int *unread)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    int queued = 0;
    memset(&info, 0, sizeof info);
    *unread = 0;
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || ioctl(fd, FIONREAD, &queued) != 0)
        return 0;
    *unread = queued > 0;
    const unsigned long long received = (unsigned long long)info.tcpi_bytes_received;
    return received > (unsigned long long)queued ? received - (unsigned long long)queued : 0;
}


/* libmicrohttpd's connection notices: a connection opened (stamped, listed for the watchdog) or closed (unlisted,
 * before its socket is closed, so the watchdog never shuts another's socket). */
void veil_srv_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    veil_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_entry *e = calloc(1, sizeof *e);
        if (!e) return; /* not watched: --timeout still bounds it */
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        e->fd = fd ? fd->connect_fd : -1;
        e->start = veil_srv_now_s();
        pthread_mutex_lock(&s->conn_lock);
        e->next = s->conns;
        if (s->conns) s->conns->prev = e;
        s->conns = e;
        pthread_mutex_unlock(&s->conn_lock);
        *socket_context = e;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_entry *e = *socket_context;
        pthread_mutex_lock(&s->conn_lock);
        if (e->prev) e->prev->next = e->next;
        else s->conns = e->next;
        if (e->next) e->next->prev = e->prev;
        pthread_mutex_unlock(&s->conn_lock);
        free(e);
        *socket_context = NULL;
    }
}

static conn_entry *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return i ? i->socket_context : NULL;
}

/* The request of c has arrived whole (arrived 1), or was answered and the connection waits for the next one
 * (arrived 0: its deadline starts now). */
void veil_srv_conn_mark(veil_server *s, struct MHD_Connection *c, int arrived)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&s->conn_lock);
    e->arrived = arrived;
    if (!arrived) { /* the next request: its deadline, and its line to come */
        e->start = veil_srv_now_s();
        e->line_seen = 0;
        int unread = 0;
        e->bytes_before = bytes_read(e->fd, &unread);
        e->bytes_seen = 0;
    }
    pthread_mutex_unlock(&s->conn_lock);
}

/* Under conn_lock: shuts e's socket once (libmicrohttpd then closes it), counted in counter. */
static void shut(conn_entry *e, atomic_ullong *counter)
{
    shutdown(e->fd, SHUT_RDWR);
    e->fd = -1;
    atomic_fetch_add(counter, 1);
}

/* Under conn_lock: 1 when e's bytes read since its last answer have made no request line for FIRST_LINE_S. */
static int garbage(conn_entry *e, double now)
{
    int unread = 0;
    if (e->line_seen || bytes_read(e->fd, &unread) <= e->bytes_before) return 0;
    if (!e->bytes_seen || unread) e->bytes_seen = now; /* bytes not read yet: the wait is the server's */
    return now - e->bytes_seen > FIRST_LINE_S;
}

/* The watchdog: every 100 ms, shuts the socket of each connection whose request has not arrived whole within
 * the deadline, whatever its pace (libmicrohttpd's own timeout counts idle time only), or that sent bytes
 * making no request line (garbage); libmicrohttpd then closes it. */
void *veil_srv_watchdog_main(void *arg)
{
    veil_server *s = arg;
    const double deadline = s->cfg.request_deadline_s;
    while (!atomic_load(&s->watchdog_stop)) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        const double now = veil_srv_now_s();
        pthread_mutex_lock(&s->conn_lock);
        for (conn_entry *e = s->conns; e; e = e->next) {
            if (e->arrived || e->fd < 0) continue;
            if (now - e->start > deadline) shut(e, &s->deadline_closes);
            else if (garbage(e, now)) shut(e, &s->garbage_closes);
        }
        pthread_mutex_unlock(&s->conn_lock);
    }
    return NULL;
}

/* The tenant's counters (made at its first request): under limits_lock; NULL when out of memory. */
static tenant_limit *tenant_counters(veil_server *s, const char *tenant)
{
    for (size_t i = 0; i < s->n_tenant_limits; i++)
        if (!strcmp(s->tenant_limits[i].name, tenant)) return &s->tenant_limits[i];
    tenant_limit *grown = realloc(s->tenant_limits, (s->n_tenant_limits + 1) * sizeof *grown);
    if (!grown) return NULL;
    s->tenant_limits = grown;
    tenant_limit *t = &grown[s->n_tenant_limits++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.64s", tenant);
    t->tokens = s->cfg.tenant_burst;
    t->last = veil_srv_now_s();
    return t;
}

/* The request of an authenticated tenant against its limits: 0 when admitted (a prediction counted in its
 * tenant's, r->predicting), else 429 with *retry, the seconds after which to try again, and *why. */
unsigned veil_srv_admit(veil_server *s, request *r, unsigned *retry, const char **why)
{
    const int rate = veil_srv_limit_on(s->cfg.tenant_rps), preds = veil_srv_limit_on(s->cfg.tenant_max_predictions);
    if (!rate && !(preds && r->ep == EP_PREDICT)) return 0;
    unsigned status = 0;
    pthread_mutex_lock(&s->limits_lock);
    tenant_limit *t = tenant_counters(s, r->tenant);
    if (!t) {
        status = 429;
        *retry = 1;
        *why = "out of memory for the tenant's counters: retry later";
    } else if (rate) {
        const double now = veil_srv_now_s();
        t->tokens += (now - t->last) * s->cfg.tenant_rps;
        if (t->tokens > s->cfg.tenant_burst) t->tokens = s->cfg.tenant_burst;
        t->last = now;
        if (t->tokens < 1) {
            status = 429;
            *retry = (unsigned)ceil((1 - t->tokens) / s->cfg.tenant_rps);
            if (*retry < 1) *retry = 1;
            *why = "this tenant's request rate is past its limit (--tenant-rps): retry later";
            atomic_fetch_add(&s->rate_refusals, 1);
        } else {
            t->tokens -= 1;
        }
    }
    if (t && !status && preds && r->ep == EP_PREDICT) {
        if (t->predictions >= s->cfg.tenant_max_predictions) {
            status = 429;
            *retry = 1;
            *why = "too many predictions of this tenant at once (--tenant-max-predictions): retry later";
            atomic_fetch_add(&s->prediction_refusals, 1);
        } else {
            t->predictions++;
            r->predicting = 1;
        }
    }
    pthread_mutex_unlock(&s->limits_lock);
    return status;
}

/* A prediction counted by admit is over. */
void veil_srv_prediction_done(veil_server *s, request *r)
{
    if (!r->predicting) return;
    pthread_mutex_lock(&s->limits_lock);
    tenant_limit *t = tenant_counters(s, r->tenant);
    if (t && t->predictions) t->predictions--;
    pthread_mutex_unlock(&s->limits_lock);
    r->predicting = 0;
}

#define CLOSE_QUERY_ARGS 200 /* past it, the connection is closed at once: libmicrohttpd 0.9.75 would not answer
                                once the arguments fill the connection's memory (about 450 arguments) */

/* libmicrohttpd's first look at a request (its URI, before the arguments are parsed): the request line is seen
 * (the connection sends no garbage); a URI of so many query arguments that libmicrohttpd could not hold them is
 * closed at once. Returns the request's state: none yet. */
void *veil_srv_on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    veil_server *s = cls;
    size_t args = 0;
    const char *q = strchr(uri, '?');
    for (const char *p = q; p && *p; p++) args += *p == '&' || *p == ';';
    conn_entry *e = conn_of(c);
    if (!e) return NULL;
    pthread_mutex_lock(&s->conn_lock);
    e->line_seen = 1; /* a request line: not garbage */
    if (q && args + 1 > CLOSE_QUERY_ARGS && e->fd >= 0) {
        shutdown(e->fd, SHUT_RDWR);
        e->fd = -1;
    }
    pthread_mutex_unlock(&s->conn_lock);
    return NULL;
}
