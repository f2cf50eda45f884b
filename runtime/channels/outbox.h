/* outbox: outgoing platform API calls, durable and in order.
 *
 * When a turn on an asynchronous channel (WhatsApp, Messenger, Telegram,
 * SMS) commits, its replies are rendered by the channel's adapter into API
 * calls and stored in the outbox in the same transaction. After the commit
 * the sender sends them with libcurl on the event loop: per session one at
 * a time and in order; network errors, 429 and 5xx are retried with
 * exponential backoff (honouring Retry-After) up to a limit, after which
 * the call is a dead letter (logged, kept in the store); any other 4xx is
 * not retried. A restart resumes every pending call.
 *
 * Limits come from the environment: PARLEY_OUTBOX_RETRY_MS (first backoff,
 * default 1000), PARLEY_OUTBOX_RETRY_MAX_MS (cap, default 300000),
 * PARLEY_OUTBOX_MAX_ATTEMPTS (default 8). */
#ifndef PL_OUTBOX_H
#define PL_OUTBOX_H

#include <event2/event.h>
#include <jansson.h>

#include "channel.h"
#include "event/http_client.h"
#include "store/store.h"

typedef struct pl_outbox pl_outbox;

/* Finds a bot's settings for a channel; returns 0 when the bot does not
 * serve that channel. The config's strings must stay valid while the bot
 * is served. */
typedef int (*pl_outbox_lookup_fn)(const char *bot, const char *channel, pl_channel_config *cfg,
                                   void *ud);

pl_outbox *pl_outbox_new(struct event_base *base, pl_store *store, pl_http_client *http,
                         pl_outbox_lookup_fn lookup, void *ud);
void pl_outbox_free(pl_outbox *outbox);

/* Inside a commit transaction: renders replies (borrowed) for the shopper
 * and stores the calls. Fails only when the store fails; an adapter that
 * cannot render logs the error and stores nothing. */
int pl_outbox_queue(pl_outbox *outbox, const char *bot, const char *channel,
                    const pl_outbound *to, const json_t *replies, char **err);
/* Stages one prepared call whose row the caller inserts in the same
 * transaction: returns where that row's id goes (the store fills it, by the
 * time the transaction is settled; left 0, the call is dropped then). */
int64_t *pl_outbox_stage_call(pl_outbox *outbox, const char *bot, const char *channel, const char *user,
                              const json_t *call);
/* After the transaction: the calls queued in it are taken aside, and
 * released once it is durable (committed 1: sent, in order), or dropped
 * when it was rolled back (committed 0). Several commits may be waiting at
 * once (the sync thread); they are released in the order they were taken.
 * take returns NULL when nothing was queued. */
typedef struct pl_outbox_staged pl_outbox_staged;
pl_outbox_staged *pl_outbox_take_staged(pl_outbox *outbox);
void pl_outbox_release(pl_outbox_staged *staged, int committed);

/* Loads every pending call from the store and starts sending (at start). */
int pl_outbox_resume(pl_outbox *outbox, char **err);
/* Several nodes on one database (pl_store_set_owner): every third of
 * lease_ms this node renews its hold of its calls and takes over those of
 * a node that stopped renewing (it died); while its own renewals fail for
 * longer than a lease it sends nothing (another node may have taken its
 * calls); pl_outbox_free lets its calls go. */
void pl_outbox_share(pl_outbox *o, int64_t lease_ms);

/* Calls queued or in flight in memory. */
size_t pl_outbox_pending(const pl_outbox *outbox);

typedef struct {
    unsigned long sent, retried, dead;
    unsigned long outside_window; /* turns not sent: past the platform's messaging window */
} pl_outbox_stats;
pl_outbox_stats pl_outbox_get_stats(const pl_outbox *outbox);

#endif
