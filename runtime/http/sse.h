/* sse: one Server-Sent Events stream on an evhttp request — the answer's
 * head, events written as chunks, comments to keep proxies from closing an
 * idle stream, and a callback when the client goes away. */
#ifndef PL_SSE_H
#define PL_SSE_H

#include <event2/http.h>
#include <stdint.h>

typedef struct pl_sse pl_sse;

/* Called once when the client closes the stream; the stream is freed right
 * after it returns. */
typedef void (*pl_sse_closed_fn)(pl_sse *sse, void *ud);

/* Starts the stream (200, text/event-stream); extra_headers may add CORS
 * headers before the head goes out. */
pl_sse *pl_sse_open(struct evhttp_request *req, pl_sse_closed_fn closed, void *ud);
/* Writes one event; id 0 writes no id line. data is one line of JSON. */
void pl_sse_event(pl_sse *sse, const char *event, int64_t id, const char *data);
/* Writes ": text" (a comment browsers ignore). */
void pl_sse_comment(pl_sse *sse, const char *text);
/* Ends the stream from the server's side (shutdown); closed is not called. */
void pl_sse_end(pl_sse *sse);

/* Makes the streams' metric family (parley_open_streams), once: the server
 * does at start, so that /metrics shows 0 before the first stream. */
void pl_sse_metrics(void);

#endif
