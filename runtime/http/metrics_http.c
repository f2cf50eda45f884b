/* metrics_http: GET /metrics and its own listener; see metrics_http.h.
 * Owns the families of the store's figures (read at each scrape) and, with
 * --metrics-listen, an evhttp of its own with its connections (conn.h). */
#define _GNU_SOURCE
#include "metrics_http.h"
#include "conn.h"
#include "reply.h"
#include "store_reply.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "store/store.h"

/* A scrape's request body: none is wanted. */
#define MAX_BODY 4096

struct pl_metrics_http {
    pl_app *app;
    pl_metric_reader *sessions, *jobs, *bytes;
    /* the figures of the scrape whose text is being made (set and used in
     * one call on the loop, answer_scrape) */
    pl_store_figures figures;
    int have_figures;
    int store_failing; /* the last scrape could not read them */
    /* --metrics-listen */
    struct evhttp *http;
    struct evhttp_bound_socket *socket;
    pl_conns *conns;
    int port;
};

static void read_sessions(pl_metric_out *out, void *ud) {
    pl_metrics_http *m = ud;
    if (m->have_figures) pl_metric_sample(out, NULL, (double)m->figures.sessions);
}

static void read_jobs(pl_metric_out *out, void *ud) {
    pl_metrics_http *m = ud;
    if (m->have_figures) pl_metric_sample(out, NULL, (double)m->figures.jobs_pending);
}

static void read_bytes(pl_metric_out *out, void *ud) {
    pl_metrics_http *m = ud;
    if (m->have_figures) pl_metric_sample(out, NULL, (double)m->figures.bytes);
}

pl_metrics_http *pl_metrics_http_new(pl_app *app) {
    pl_metrics_http *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->app = app;
    m->sessions = pl_metric_reader_add("parley_sessions", "Sessions stored", PL_METRIC_GAUGE, "", read_sessions, m);
    m->jobs = pl_metric_reader_add("parley_jobs_pending", "Durable timers waiting to fire", PL_METRIC_GAUGE, "",
                                   read_jobs, m);
    m->bytes = pl_metric_reader_add("parley_database_size_bytes",
                                    "Size of the database (SQLite: the file and its WAL; PostgreSQL: pg_database_size)",
                                    PL_METRIC_GAUGE, "", read_bytes, m);
    return m;
}

void pl_metrics_http_free(pl_metrics_http *m) {
    if (!m) return;
    pl_metric_reader_remove(m->sessions);
    pl_metric_reader_remove(m->jobs);
    pl_metric_reader_remove(m->bytes);
    if (m->http) {
        pl_conns_unwatch(m->conns); /* evhttp_free frees the listener first */
        evhttp_free(m->http);
        pl_conns_free(m->conns);
    }
    free(m);
}

/* --- a scrape ------------------------------------------------------------------- */

typedef struct {
    pl_metrics_http *metrics;
    pl_store_figures figures;
    char *err;
} scrape;

static void read_figures(pl_store *store, void *ud) {
    scrape *s = ud;
    pl_store_read_figures(store, &s->figures, &s->err);
}

static void answer_scrape(struct evhttp_request *req, void *ud) {
    scrape *s = ud;
    pl_metrics_http *m = s->metrics;
    if (s->err && !m->store_failing) pl_warn("metrics: the store's figures are left out: %s", s->err);
    else if (!s->err && m->store_failing) pl_info("metrics: the store's figures are back");
    m->store_failing = s->err != NULL;
    if (req) {
        m->figures = s->figures;
        m->have_figures = !s->err;
        size_t len = 0;
        char *text = pl_metrics_text(&len);
        m->have_figures = 0;
        struct evbuffer *out = evbuffer_new();
        if (!out) abort();
        evbuffer_add(out, text, len);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", PL_METRICS_CONTENT_TYPE);
        pl_reply_send(req, 200, NULL, out);
        evbuffer_free(out);
        free(text);
    }
    free(s->err);
    free(s);
}

static void serve(pl_metrics_http *m, struct evhttp_request *req) {
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        pl_reply_405(req, "GET");
        return;
    }
    scrape *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->metrics = m;
    pl_reply_after_store(req, pl_app_store(m->app), read_figures, answer_scrape, s);
}

int pl_metrics_http_route(pl_metrics_http *m, struct evhttp_request *req, char **seg, int n) {
    if (n != 1 || strcmp(seg[0], "metrics") != 0) return 0;
    if (pl_bearer_allowed(req, getenv("PARLEY_METRICS_TOKEN"), "PARLEY_METRICS_TOKEN", "metrics endpoint"))
        serve(m, req);
    return 1;
}

/* --- its own address ------------------------------------------------------------- */

static void on_request(struct evhttp_request *req, void *arg) {
    pl_metrics_http *m = arg;
    pl_conn_request_started(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (path && strcmp(path, "/metrics") == 0) serve(m, req);
    else pl_reply_error(req, 404, "only /metrics is served here");
}

int pl_metrics_http_listen(pl_metrics_http *m, const char *addr, int port, char **err) {
    if (m->http) return pl_fail(err, "/metrics already has an address of its own");
    struct event_base *base = pl_app_base(m->app);
    m->http = evhttp_new(base);
    if (!m->http) return pl_fail(err, "cannot serve /metrics: no evhttp");
    m->conns = pl_conns_new(base, m->http, MAX_BODY, MAX_BODY);
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(m->http, on_request, m);
    m->socket = evhttp_bind_socket_with_handle(m->http, addr, (ev_uint16_t)port);
    if (!m->socket) return pl_fail(err, "cannot listen for /metrics on %s:%d (in use, or not an address here)", addr, port);
    pl_conns_watch(m->conns, m->socket);
    struct sockaddr_storage ss;
    ev_socklen_t len = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(m->socket), (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) m->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) m->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return PL_OK;
}

int pl_metrics_http_port(const pl_metrics_http *m) { return m->port; }
