/* analytics_api: the analytics over HTTP — the bots a token opens, a bot's
 * figures, and its events as CSV or NDJSON; see analytics_api.c and
 * docs/analytics.md. */
#ifndef PL_ANALYTICS_API_H
#define PL_ANALYTICS_API_H

#include <event2/http.h>

#include "app/app.h"

/* /analytics, /v1/analytics/bots and /v1/bots/{bot}/analytics[/events]: returns 0 when
 * the path is not one of them. */
int pl_analytics_route(pl_app *app, struct evhttp_request *req, char **seg, int n);

#endif
