/* metrics_http: GET /metrics, what base/metrics.h counts in Prometheus's
 * text format (docs/metrics.md). On the API's address it wants
 * "Authorization: Bearer $PARLEY_METRICS_TOKEN" (403 while that is unset,
 * 401 for another token); on an address of its own that the operator sets
 * (parley serve --metrics-listen), kept off the public network, it wants
 * none and serves nothing else. Each scrape reads the store's figures
 * (sessions, pending jobs, the database's size) off the loop first. */
#ifndef PL_METRICS_HTTP_H
#define PL_METRICS_HTTP_H

#include <event2/http.h>

#include "app/app.h"

typedef struct pl_metrics_http pl_metrics_http;

pl_metrics_http *pl_metrics_http_new(pl_app *app);
void pl_metrics_http_free(pl_metrics_http *metrics);

/* Answers req when its path (seg[0..n-1]) is /metrics, the token checked;
 * returns 0 (nothing sent) for any other path. */
int pl_metrics_http_route(pl_metrics_http *metrics, struct evhttp_request *req, char **seg, int n);

/* Serves /metrics without a token on addr:port too (port 0 picks a free
 * one: pl_metrics_http_port). */
int pl_metrics_http_listen(pl_metrics_http *metrics, const char *addr, int port, char **err);
int pl_metrics_http_port(const pl_metrics_http *metrics);

#endif
