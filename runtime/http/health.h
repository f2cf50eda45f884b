/* health: what a load balancer and an operator ask a node — GET /v1/health
 * (the node, whether it serves or drains, each bot's version, load error,
 * budgets and usage), GET /v1/health/live (the loop answers) and
 * GET /v1/health/ready (this node takes new messages: not draining, and
 * its database answers). Owns the node's name and its draining mark. */
#ifndef PL_HEALTH_H
#define PL_HEALTH_H

#include <event2/http.h>

#include "app/app.h"

typedef struct pl_health pl_health;

/* The node is named node_name (pl_app_node: the host name unless given). */
pl_health *pl_health_new(pl_app *app, const char *node_name);
void pl_health_free(pl_health *health);

/* From now on /v1/health/ready answers 503 ("draining"): the node is
 * stopping and a load balancer should send its traffic elsewhere. */
void pl_health_set_draining(pl_health *health);

/* Answers req when its path (seg[0..n-1]) is one of /v1/health[/live|/ready];
 * returns 0 (nothing sent) for any other path. */
int pl_health_route(pl_health *health, struct evhttp_request *req, char **seg, int n);

#endif
