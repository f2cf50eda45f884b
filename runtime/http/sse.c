/* sse: Server-Sent Events on evhttp (chunked replies); see sse.h. Counts
 * the streams open (parley_open_streams) and each stream's start as an
 * answer (reply.h). */
#include "sse.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/common.h"
#include "base/metrics.h"
#include "conn.h"
#include "reply.h"

static pl_metric *open_streams;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    open_streams = pl_metric_gauge("parley_open_streams", "Event streams open (web chat and the agent console)", "");
    pl_metric_add(open_streams, NULL, 0); /* the series, at 0 */
}

void pl_sse_metrics(void) { pthread_once(&metrics_once, make_metrics); }

struct pl_sse {
    struct evhttp_request *req;
    pl_sse_closed_fn closed;
    void *ud;
};

static void on_close(void *arg) {
    pl_sse *s = arg;
    pl_metric_add(open_streams, NULL, -1);
    s->closed(s, s->ud);
    free(s);
}

pl_sse *pl_sse_open(struct evhttp_request *req, pl_sse_closed_fn closed, void *ud) {
    pl_sse *s = calloc(1, sizeof *s);
    if (!s) abort();
    *s = (pl_sse){req, closed, ud};
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no"); /* a proxy must not hold events back */
    pl_conn_on_gone(req, on_close, s);
    pl_sse_metrics();
    pl_metric_add(open_streams, NULL, 1);
    pl_reply_count(req, 200);
    evhttp_send_reply_start(req, 200, "OK");
    /* the reconnection delay a browser should use */
    pl_sse_comment(s, "parley");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "retry: 2000\n\n");
    evhttp_send_reply_chunk(req, b);
    evbuffer_free(b);
    return s;
}

void pl_sse_event(pl_sse *s, const char *event, int64_t id, const char *data) {
    struct evbuffer *b = evbuffer_new();
    if (id) evbuffer_add_printf(b, "id: %lld\n", (long long)id);
    evbuffer_add_printf(b, "event: %s\ndata: %s\n\n", event, data);
    evhttp_send_reply_chunk(s->req, b);
    evbuffer_free(b);
}

void pl_sse_comment(pl_sse *s, const char *text) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, ": %s\n\n", text);
    evhttp_send_reply_chunk(s->req, b);
    evbuffer_free(b);
}

void pl_sse_end(pl_sse *s) {
    pl_metric_add(open_streams, NULL, -1);
    pl_conn_forget(s->req);
    evhttp_send_reply_end(s->req);
    free(s);
}
