/* access: who may open a staff API — the agent console, the analytics.
 * One environment variable's token opens every bot (an agency's staff); a
 * bot's own token, in the variable its bot.json names (agent_token_env,
 * analytics_token_env), opens only that bot (a brand's staff). Given as
 * "Authorization: Bearer TOKEN", or ?access_token=TOKEN where a browser
 * cannot set headers (an EventSource, a download link). */
#ifndef PL_ACCESS_H
#define PL_ACCESS_H

#include <event2/http.h>

#include "app/app.h"

typedef struct {
    const char *all_env;   /* "PARLEY_AGENT_TOKEN": the token that opens every bot */
    const char *bot_field; /* "agent_token_env": bot.json's field naming a bot's own variable */
    const char *what;      /* "the agent console": named in the answers */
} pl_access;

/* Sets *scope to NULL (every bot) or the one bot's name the token opens and
 * returns 1; or answers 403 (no token is set anywhere) or 401 (a wrong
 * one) and returns 0. */
int pl_access_allowed(pl_app *app, const pl_access *access, struct evhttp_request *req, const char **scope);
/* 1 when a token of that scope may see bot. */
int pl_access_in_scope(const char *scope, const char *bot);

#endif
