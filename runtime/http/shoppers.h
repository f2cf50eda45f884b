/* shoppers: the admin API's view of one shopper (docs/privacy.md).
 * GET /v1/bots/{bot}/shoppers/{channel}/{user} answers everything stored
 * about them as one JSON document, read on the store's reading connection
 * (pl_store_offload_read) so that neither the loop nor the message path
 * waits for it. The route's checks (the admin token, a channel of
 * parley's own) and the erasure (DELETE, the pipeline's: queued behind
 * the shopper's messages in flight) are server.c's. */
#ifndef PL_SHOPPERS_H
#define PL_SHOPPERS_H

#include <event2/http.h>

#include "app/app.h"

/* Answers req with the export of (bot, channel, user): 200 and the
 * document, 404 when nothing of the shopper is stored, 503 when the store
 * fails. */
void pl_shopper_export(pl_app *app, struct evhttp_request *req, pl_bot *bot, const char *channel, const char *user);

#endif
