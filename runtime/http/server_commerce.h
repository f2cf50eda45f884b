/* server_commerce: the HTTP routes of commerce — the test provider's
 * payment page, providers' webhooks, the orders API for the merchant's
 * systems (behind the bot's API token) and the test-only clock. server.c
 * hands them their requests. */
#ifndef PL_SERVER_COMMERCE_H
#define PL_SERVER_COMMERCE_H

#include <event2/http.h>

#include "app/app.h"
#include "core/bot.h"

/* Routes in server_commerce.c: /v1/bots/{bot}/payments/..., /orders... and
 * /v1/test/clock. seg are the decoded path segments. */
void pl_route_payments(pl_app *app, struct evhttp_request *req, pl_bot *bot, char **seg, int n);
void pl_route_orders(pl_app *app, struct evhttp_request *req, pl_bot *bot, char **seg, int n);
void pl_route_test_clock(pl_app *app, struct evhttp_request *req);

#endif
