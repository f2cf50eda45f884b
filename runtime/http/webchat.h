/* webchat: the web chat widget's channel ("webchat"). Serves the widget
 * script and its configuration, takes the shopper's messages (POST, with
 * CORS for the bot's allowed origins and a rate limit per shopper) and
 * streams the conversation down as Server-Sent Events: every transcript
 * line of the shopper's session, replayed from where the browser left off
 * ("ready" once that is done) and then live as turns commit — the bot's
 * answers, what it says on its own (payments, reminders) and what a person
 * writes (handoff). A shopper may send an "open" event (the panel opened)
 * to bots that greet on open. */
#ifndef PL_WEBCHAT_H
#define PL_WEBCHAT_H

#include <event2/http.h>

#include "app/app.h"
#include "core/bot.h"
#include "store/store.h"

typedef struct pl_webchat pl_webchat;

pl_webchat *pl_webchat_new(pl_app *app);
/* Ends every open stream and frees. */
void pl_webchat_free(pl_webchat *webchat);

/* /v1/bots/{bot}/widget.js and /v1/bots/{bot}/webchat/{config,messages,events}:
 * returns 0 when the path is not one of them. */
int pl_webchat_route(pl_webchat *webchat, struct evhttp_request *req, pl_bot *bot, char **seg, int n);

/* A commit gave this session new transcript lines: stream them. */
void pl_webchat_committed(pl_webchat *webchat, const pl_session_key *key);

/* Open streams (for the bench and health). */
size_t pl_webchat_streams(const pl_webchat *webchat);

/* Messages (and stream openings) a shopper may send in a burst, and the
 * seconds between more, unless bot.json's webchat.rate_limit says
 * otherwise. Sized so that a fast human never meets it: the page's stream,
 * the greeting on open and a whole checkout tapped at five taps in two
 * seconds (docs/webchat.md#how-fast-a-shopper-may-write). */
#define PL_WEBCHAT_BURST 20
#define PL_WEBCHAT_REFILL_S 1.0
/* Event streams one shopper may hold open at once (tabs, windows). */
#define PL_WEBCHAT_STREAMS_PER_SHOPPER 8

#endif
