/* server: parley's HTTP API on libevent's evhttp — the `rest` channel
 * (POST /v1/bots/{bot}/messages), /v1/health (health.c), /metrics
 * (metrics_http.c) and the admin API of sessions and shoppers (export:
 * shoppers.c; erasure).
 * Request bodies are parsed by jansson; every bad input gets a 4xx with a
 * JSON reason, and a message is answered only after its commit. */
#ifndef PL_SERVER_H
#define PL_SERVER_H

#include "app/app.h"

typedef struct pl_server pl_server;

/* node_name: what /v1/health calls this node (pl_app_node). */
pl_server *pl_server_new(pl_app *app, const char *node_name);
/* Binds addr:port (port 0 picks a free one; see pl_server_port). */
int pl_server_listen(pl_server *server, const char *addr, int port, char **err);
int pl_server_port(const pl_server *server);
/* Serves /metrics, without a token, on an address of its own too (parley
 * serve --metrics-listen; port 0 picks one: pl_server_metrics_port). */
int pl_server_listen_metrics(pl_server *server, const char *addr, int port, char **err);
int pl_server_metrics_port(const pl_server *server);
/* Marks the node draining: /v1/health/ready answers 503 from now on while
 * the node still serves (so that load balancers take it out first). */
void pl_server_drain(pl_server *server);
/* Stops accepting connections (answers in flight still go out); the node
 * is draining from then on. */
void pl_server_stop_accepting(pl_server *server);
void pl_server_free(pl_server *server);

#endif
