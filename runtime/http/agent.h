/* agent: the staff's side of human handoff — the console page (GET
 * /agent), the JSON API (/v1/agent/conversations: the queue, a
 * conversation with the shopper's orders and the bot's canned replies,
 * claim, reply, hand back, close; /v1/agent/closed: closed conversations,
 * searched) and the live stream of the queue and its conversations
 * (/v1/agent/events).
 *
 * Agents act through the pipeline: each action is an event in the
 * shopper's session, handled in order with the shopper's own messages, so
 * an agent's words reach the shopper through their own channel exactly as
 * the bot's do (outbox, web chat stream, or the next answer). Behind
 * PARLEY_AGENT_TOKEN (a Bearer header, or ?access_token= for the stream). */
#ifndef PL_AGENT_H
#define PL_AGENT_H

#include <event2/http.h>

#include "app/app.h"
#include "store/store.h"

typedef struct pl_agents pl_agents;

pl_agents *pl_agents_new(pl_app *app);
void pl_agents_free(pl_agents *agents);

/* /agent and /v1/agent/...: returns 0 when the path is not one of them. */
int pl_agents_route(pl_agents *agents, struct evhttp_request *req, char **seg, int n);

/* A commit gave a session new transcript lines (and maybe a new handoff
 * state): streams the queue and the lines of conversations in it. */
void pl_agents_committed(pl_agents *agents, const pl_session_key *key, int handoff_changed);

#endif
