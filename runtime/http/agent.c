/* agent: the console, the agent JSON API and the agents' live stream; see
 * agent.h. */
#define _GNU_SOURCE
#include "agent.h"

#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "access.h"
#include "assets.h"
#include "base/common.h"
#include "base/log.h"
#include "base/map.h"
#include "channels/channel.h"
#include "conn.h"
#include "core/canned.h"
#include "reply.h"
#include "sse.h"
#include "store_reply.h"

#define PING_SECONDS 25
#define MAX_REPLY 4096
#define ORDERS_SHOWN 20 /* a shopper's latest orders beside the cart */
#define CLOSED_PAGE 25  /* closed conversations a page by default */
#define CLOSED_PAGE_MAX 100
#define MAX_SEARCH 200
/* Closed-conversation reads running at once: they run on the store's read
 * thread, beside the analytics API's; more are told to come back. */
#define CLOSED_READS_MAX 2
static int closed_reads;

typedef struct agent_stream {
    struct agent_stream *next;
    struct pl_agents *agents;
    pl_sse *sse;
    char *scope; /* the one bot this agent may see, or NULL: every bot */
    int fresh;   /* opened since the queue was last read: it has not had it */
} agent_stream;

struct pl_agents {
    pl_app *app;
    agent_stream *streams;
    pl_map *watched; /* "bot\x1fchannel\x1fuser" of the queue -> last line sent (int64_t *) */
    struct event *tick;
};

static char *conversation_key(const char *bot, const char *channel, const char *user) {
    return pl_strdupf("%s\x1f%s\x1f%s", bot, channel, user);
}

/* --- auth --------------------------------------------------------------------------------- */

static const pl_access agent_access = {"PARLEY_AGENT_TOKEN", "agent_token_env", "the agent console"};

/* --- the queue and what the streams watch --------------------------------------------------- */

/* Every read of the store here goes off the loop (pl_store_offload): the
 * work reads into one of these, the loop acts on it. */
typedef struct {
    pl_agents *agents;
    /* what to read */
    char *bot, *channel, *user; /* one conversation (show, act, an action's outcome) */
    int64_t after_id;           /* its lines after this one */
    int whole;                  /* its session and transcript too (show) */
    int watching;               /* the queue is to be watched: each conversation's last line id too */
    /* what was read */
    json_t *queue;   /* every handoff (with "last_id" when watching) */
    json_t *lines;   /* the conversation's lines */
    json_t *orders;  /* the shopper's latest orders (show) */
    char *state;     /* its session */
    char *err;
    /* what follows */
    const char *scope;          /* the agent's (a bot's name, which outlives this) */
    json_t *body;               /* act's request body */
    char *action, *agent;       /* act's, and an action's outcome */
    int to_all;                 /* a queue read goes to every stream, not only the new ones */
} agents_read;

static agents_read *new_read(pl_agents *a) {
    agents_read *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->agents = a;
    return r;
}

static void read_free(agents_read *r) {
    free(r->bot);
    free(r->channel);
    free(r->user);
    json_decref(r->queue);
    json_decref(r->lines);
    json_decref(r->orders);
    free(r->state);
    free(r->err);
    json_decref(r->body);
    free(r->action);
    free(r->agent);
    free(r);
}

static void set_conversation(agents_read *r, const char *bot, const char *channel, const char *user) {
    r->bot = pl_strdup(bot);
    r->channel = pl_strdup(channel);
    r->user = pl_strdup(user);
}

/* On the store's thread: the queue (to watch: each conversation with the
 * id of its last line); then the one conversation asked for. */
static void read_queue(pl_store *store, void *ud) {
    agents_read *r = ud;
    if (pl_store_handoffs(store, &r->queue, &r->err) != PL_OK) return;
    size_t i;
    json_t *c;
    json_array_foreach(r->watching ? r->queue : NULL, i, c) {
        pl_session_key k = {json_string_value(json_object_get(c, "bot")),
                            json_string_value(json_object_get(c, "channel")),
                            json_string_value(json_object_get(c, "user"))};
        json_object_set_new(c, "last_id", json_integer(pl_store_transcript_last_id(store, &k)));
    }
    if (!r->whole) return;
    pl_session_key key = {r->bot, r->channel, r->user};
    if (pl_store_session_get(store, &key, &r->state, &r->err) == PL_OK &&
        pl_store_transcript_since(store, &key, 0, 5000, &r->lines, &r->err) == PL_OK)
        pl_store_orders_of(store, r->bot, r->channel, r->user, ORDERS_SHOWN, &r->orders, &r->err);
}

/* On the store's thread: one conversation's lines after after_id. */
static void read_lines(pl_store *store, void *ud) {
    agents_read *r = ud;
    pl_session_key key = {r->bot, r->channel, r->user};
    pl_store_transcript_since(store, &key, r->after_id, 200, &r->lines, &r->err);
}

static void free_value(const char *key, void *value, void *ud) {
    (void)key;
    (void)ud;
    free(value);
}

/* The queue as it goes out: without the read's "last_id". */
static json_t *queue_for(const json_t *list, const char *scope) {
    json_t *mine = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        if (!pl_access_in_scope(scope, json_string_value(json_object_get(c, "bot")))) continue;
        json_t *copy = json_copy(c);
        json_object_del(copy, "last_id");
        json_array_append_new(mine, copy);
    }
    return json_pack("{s:o}", "conversations", mine);
}

/* The conversation's row in the queue (new), or NULL. */
static json_t *handoff_in(const json_t *list, const char *bot, const char *channel, const char *user) {
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        if (strcmp(json_string_value(json_object_get(c, "bot")), bot) == 0 &&
            strcmp(json_string_value(json_object_get(c, "channel")), channel) == 0 &&
            strcmp(json_string_value(json_object_get(c, "user")), user) == 0) {
            json_t *copy = json_copy(c);
            json_object_del(copy, "last_id");
            return copy;
        }
    }
    return NULL;
}

static void stream_new_lines(pl_agents *a, const pl_session_key *key);

/* Watches the queue's conversations: one entering the queue starts at its
 * last line as read with the queue (an agent reads what came before with
 * GET) and looks at once for lines committed since; one leaving it is
 * dropped. */
static void rewatch(pl_agents *a, const json_t *list) {
    pl_map *now = pl_map_new();
    json_t *entered = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        const char *bot = json_string_value(json_object_get(c, "bot"));
        const char *channel = json_string_value(json_object_get(c, "channel"));
        const char *user = json_string_value(json_object_get(c, "user"));
        char *key = conversation_key(bot, channel, user);
        int64_t *last = pl_map_put(a->watched, key, NULL);
        if (!last) {
            last = malloc(sizeof *last);
            if (!last) abort();
            *last = json_integer_value(json_object_get(c, "last_id"));
            json_array_append(entered, c);
        }
        pl_map_put(now, key, last);
        free(key);
    }
    pl_map_each(a->watched, free_value, NULL);
    pl_map_free(a->watched);
    a->watched = now;
    json_array_foreach(entered, i, c) {
        pl_session_key k = {json_string_value(json_object_get(c, "bot")),
                            json_string_value(json_object_get(c, "channel")),
                            json_string_value(json_object_get(c, "user"))};
        stream_new_lines(a, &k);
    }
    json_decref(entered);
}

static void send_queue(agent_stream *st, const json_t *list) {
    json_t *data = queue_for(list, st->scope);
    char *text = json_dumps(data, JSON_COMPACT);
    pl_sse_event(st->sse, "queue", 0, text);
    free(text);
    json_decref(data);
}

/* The queue read: watched again, and sent to every stream (only: to the
 * streams that opened since the last). */
static void queue_read(void *ud) {
    agents_read *r = ud;
    pl_agents *a = r->agents;
    if (r->err) {
        pl_error("agents: %s", r->err);
    } else {
        rewatch(a, r->queue);
        for (agent_stream *st = a->streams; st; st = st->next) {
            if (r->to_all || st->fresh) send_queue(st, r->queue);
            st->fresh = 0;
        }
    }
    read_free(r);
}

/* Reads the queue and sends it to every stream (all 1) or to the new ones. */
static void send_queue_read(pl_agents *a, int all) {
    agents_read *r = new_read(a);
    r->to_all = all;
    r->watching = 1;
    pl_store_offload(pl_app_store(a->app), read_queue, queue_read, r);
}

static void broadcast_line(pl_agents *a, const char *bot, const json_t *line) {
    char *text = json_dumps(line, JSON_COMPACT);
    for (agent_stream *st = a->streams; st; st = st->next)
        if (pl_access_in_scope(st->scope, bot)) pl_sse_event(st->sse, "line", 0, text);
    free(text);
}

/* The lines read: those after the last one sent (reads may overlap) go out,
 * while the conversation is still watched. */
static void lines_read(void *ud) {
    agents_read *r = ud;
    pl_agents *a = r->agents;
    char *k = conversation_key(r->bot, r->channel, r->user);
    int64_t *last = pl_map_get(a->watched, k);
    free(k);
    if (r->err) pl_error("agents: %s", r->err);
    size_t i;
    json_t *line;
    json_array_foreach(last ? r->lines : NULL, i, line) {
        int64_t id = json_integer_value(json_object_get(line, "id"));
        if (id <= *last) continue;
        *last = id;
        json_object_set_new(line, "bot", json_string(r->bot));
        json_object_set_new(line, "channel", json_string(r->channel));
        json_object_set_new(line, "user", json_string(r->user));
        broadcast_line(a, r->bot, line);
    }
    read_free(r);
}

static void stream_new_lines(pl_agents *a, const pl_session_key *key) {
    if (pl_map_count(a->watched) == 0) return; /* no queue: every message of every channel passes here */
    char *k = conversation_key(key->bot, key->channel, key->user);
    int64_t *last = pl_map_get(a->watched, k);
    free(k);
    if (!last) return;
    agents_read *r = new_read(a);
    set_conversation(r, key->bot, key->channel, key->user);
    r->after_id = *last;
    pl_store_offload(pl_app_store(a->app), read_lines, lines_read, r);
}

/* The lines first: a hand back or close is still watched until the queue
 * that no longer lists it goes out. */
void pl_agents_committed(pl_agents *a, const pl_session_key *key, int handoff_changed) {
    stream_new_lines(a, key);
    if (handoff_changed) send_queue_read(a, 1);
}

/* --- the stream ---------------------------------------------------------------------------- */

static void on_stream_closed(pl_sse *sse, void *ud) {
    (void)sse;
    agent_stream *st = ud;
    agent_stream **link = &st->agents->streams;
    while (*link && *link != st) link = &(*link)->next;
    if (*link) *link = st->next;
    free(st->scope);
    free(st);
}

static void open_stream(pl_agents *a, struct evhttp_request *req, const char *scope) {
    agent_stream *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->agents = a;
    st->scope = scope ? pl_strdup(scope) : NULL;
    st->sse = pl_sse_open(req, on_stream_closed, st);
    st->fresh = 1;
    st->next = a->streams;
    a->streams = st;
    send_queue_read(a, 0);
}

static void answer_queue(struct evhttp_request *req, void *ud) {
    agents_read *r = ud;
    if (req && r->err) pl_reply_error(req, 503, "the store is unavailable");
    else if (req) pl_reply_json(req, 200, queue_for(r->queue, r->scope));
    if (r->err) pl_error("agents: %s", r->err);
    read_free(r);
}

/* --- one conversation ------------------------------------------------------------------------- */

typedef struct {
    pl_agents *agents;
    pl_bot *bot;
    char *channel, *user, *agent, *action;
    struct evhttp_request *req;
} action_wait;

/* The orders as an agent sees them (new): without their "token" field,
 * which only the payment page checks; the payment link that carries it
 * stays, as the shopper was given it (in the transcript too), for an agent
 * to send again. */
static json_t *orders_for_agents(const json_t *orders) {
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(orders, i, o) {
        json_t *copy = json_copy(o);
        json_object_del(copy, "token");
        json_array_append_new(out, copy);
    }
    return out;
}

/* The bot's canned replies in the conversation's locale (new). */
static json_t *canned_for(const pl_bot *bot, const json_t *session) {
    const json_t *list = pl_canned_for(pl_bot_manifest(bot), json_string_value(json_object_get(session, "locale")));
    return list ? json_deep_copy(list) : json_array();
}

static void answer_conversation(struct evhttp_request *req, void *ud) {
    agents_read *r = ud;
    pl_bot *bot = pl_app_find_bot(r->agents->app, r->bot);
    json_t *session = r->state ? json_loads(r->state, 0, NULL) : NULL;
    if (!req) {
        json_decref(session);
    } else if (r->err) {
        pl_error("agents: %s", r->err);
        pl_reply_error(req, 503, "the store is unavailable");
        json_decref(session);
    } else if (!session || !bot) {
        pl_reply_error(req, 404, "no conversation with %s on %s", r->user, r->channel);
        json_decref(session);
    } else {
        json_t *cart = json_incref(json_object_get(session, "cart"));
        json_t *totals = pl_bot_ask_engine(bot, "totals", cart);
        json_t *readable = json_object_get(totals, "lines");
        if (cart && readable) json_object_set(cart, "lines", readable); /* titles, not option values */
        json_object_del(totals, "lines");
        json_t *described = pl_bot_ask_engine(bot, "describe", NULL);
        json_t *handoff = handoff_in(r->queue, r->bot, r->channel, r->user);
        json_t *canned = canned_for(bot, session);
        json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:O, s:O, s:o, s:o}", "bot", r->bot, "channel",
                                r->channel, "user", r->user, "handoff", handoff ? handoff : json_null(), "session",
                                session, "cart", cart ? cart : json_object(), "totals", totals ? totals : json_null(),
                                "transcript", r->lines, "flows",
                                described ? json_object_get(described, "flows") : json_object(), "orders",
                                orders_for_agents(r->orders), "canned_replies", canned);
        json_decref(described);
        pl_reply_json(req, 200, out);
    }
    read_free(r);
}

static void show_conversation(pl_agents *a, struct evhttp_request *req, pl_bot *bot, const char *channel,
                              const char *user) {
    agents_read *r = new_read(a);
    set_conversation(r, pl_bot_name(bot), channel, user);
    r->whole = 1;
    pl_reply_after_store(req, pl_app_store(a->app), read_queue, answer_conversation, r);
}

static void action_wait_free(action_wait *w) {
    free(w->channel);
    free(w->user);
    free(w->agent);
    free(w->action);
    free(w);
}

static void on_action_gone(void *arg) {
    ((action_wait *)arg)->req = NULL;
}

/* After the action's commit, the queue read again: a claim says who has
 * the conversation now. */
static void answer_action(struct evhttp_request *req, void *ud) {
    agents_read *r = ud;
    json_t *h = r->err ? NULL : handoff_in(r->queue, r->bot, r->channel, r->user);
    const char *holder = json_string_value(json_object_get(h, "agent"));
    if (!req) {
    } else if (r->err) {
        pl_error("agents: %s", r->err);
        pl_reply_error(req, 503, "the store is unavailable");
    } else if (strcmp(r->action, "claim") == 0 && (!holder || strcmp(holder, r->agent) != 0)) {
        pl_reply_error(req, 409, "claimed by %s", holder ? holder : "nobody (no longer waiting)");
    } else {
        pl_reply_json(req, 200, json_pack("{s:b, s:O}", "ok", 1, "handoff", h ? h : json_null()));
    }
    json_decref(h);
    read_free(r);
}

static void action_done(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    (void)result;
    action_wait *w = ud;
    if (w->req) {
        pl_conn_forget(w->req);
        if (status != 200) {
            pl_reply_error(w->req, 503, "the action could not be stored; please retry");
        } else {
            agents_read *r = new_read(w->agents);
            set_conversation(r, pl_bot_name(w->bot), w->channel, w->user);
            r->action = pl_strdup(w->action);
            r->agent = pl_strdup(w->agent);
            pl_reply_after_store(w->req, pl_app_store(w->agents->app), read_queue, answer_action, r);
        }
    }
    action_wait_free(w);
}

/* Checks what an action needs before it goes into the session: the
 * conversation is in the queue, and (but for claim) not someone else's. */
static int action_allowed(struct evhttp_request *req, const json_t *h, const char *action, const char *agent) {
    const char *holder = json_string_value(json_object_get(h, "agent"));
    if (!h) {
        pl_reply_error(req, 404, "this conversation is not waiting for a person");
        return 0;
    }
    if (holder && strcmp(holder, agent) != 0) {
        pl_reply_error(req, 409, "claimed by %s", holder);
        return 0;
    }
    if (!holder && strcmp(action, "reply") == 0) {
        pl_reply_error(req, 409, "claim the conversation before replying");
        return 0;
    }
    return 1;
}

/* The event an action puts into the session, or NULL with a 400 answered. */
static json_t *action_event(struct evhttp_request *req, pl_bot *bot, const char *action, const json_t *body,
                            const char *agent) {
    json_t *ev = json_pack("{s:s, s:s, s:s}", "type", "agent", "action", action, "agent", agent);
    if (strcmp(action, "reply") == 0) {
        const char *text = json_string_value(json_object_get(body, "text"));
        if (!text || !*text || strlen(text) > MAX_REPLY) {
            pl_reply_error(req, 400, "\"text\" must be 1-%d bytes", MAX_REPLY);
            json_decref(ev);
            return NULL;
        }
        json_object_set_new(ev, "text", json_string(text));
    } else if (strcmp(action, "handback") == 0 && json_object_get(body, "flow")) {
        const char *flow = json_string_value(json_object_get(body, "flow"));
        const char *step = json_string_value(json_object_get(body, "step"));
        json_t *described = pl_bot_ask_engine(bot, "describe", NULL);
        json_t *steps = json_object_get(json_object_get(described, "flows"), flow ? flow : "");
        int found = 0;
        size_t i;
        json_t *s;
        json_array_foreach(steps, i, s) found = found || strcmp(json_string_value(s), step ? step : "start") == 0;
        json_decref(described);
        if (!found) {
            pl_reply_error(req, 400, "bot '%s' has no step '%s' in flow '%s'", pl_bot_name(bot), step ? step : "start",
                           flow ? flow : "?");
            json_decref(ev);
            return NULL;
        }
        json_object_set_new(ev, "flow", json_string(flow));
        json_object_set_new(ev, "step", json_string(step ? step : "start"));
    }
    return ev;
}

/* The action, once the queue is read: checked, then put into the session. */
static void answer_act(struct evhttp_request *req, void *ud) {
    agents_read *r = ud;
    pl_agents *a = r->agents;
    pl_bot *bot = pl_app_find_bot(a->app, r->bot);
    json_t *h = r->err ? NULL : handoff_in(r->queue, r->bot, r->channel, r->user), *ev = NULL;
    if (!req) {
    } else if (r->err || !bot) {
        if (r->err) pl_error("agents: %s", r->err);
        pl_reply_error(req, 503, "the store is unavailable");
    } else if (action_allowed(req, h, r->action, r->agent) && (ev = action_event(req, bot, r->action, r->body, r->agent))) {
        action_wait *w = calloc(1, sizeof *w);
        if (!w) abort();
        *w = (action_wait){a, bot, pl_strdup(r->channel), pl_strdup(r->user), pl_strdup(r->agent), pl_strdup(r->action), req};
        pl_conn_on_gone(req, on_action_gone, w);
        pl_message *msg = pl_message_new(pl_bot_name(bot), r->channel, r->user);
        msg->event = ev;
        pl_pipeline_post(pl_app_pipeline(a->app), bot, msg, action_done, w);
    }
    json_decref(h);
    read_free(r);
}

static void act(pl_agents *a, struct evhttp_request *req, pl_bot *bot, const char *channel, const char *user,
                const char *action) {
    char *why = NULL;
    json_t *body = pl_read_json_body(req, &why);
    const char *agent = body ? json_string_value(json_object_get(body, "agent")) : NULL;
    if (!body) {
        pl_reply_error(req, 400, "%s", why);
    } else if (!agent || !*agent || strlen(agent) > 64) {
        pl_reply_error(req, 400, "\"agent\" must name you (1-64 bytes)");
    } else {
        agents_read *r = new_read(a);
        set_conversation(r, pl_bot_name(bot), channel, user);
        r->action = pl_strdup(action);
        r->agent = pl_strdup(agent);
        r->body = json_incref(body);
        pl_reply_after_store(req, pl_app_store(a->app), read_queue, answer_act, r);
    }
    json_decref(body);
    free(why);
}

/* --- closed conversations ------------------------------------------------------------------- */

typedef struct {
    pl_store_closed_query q; /* its strings point into search and bot */
    char *search, *bot;
    json_t *list;
    int rc;
    char *err;
} closed_read;

static void read_closed(pl_store *store, void *ud) {
    closed_read *c = ud;
    /* one more than a page: whether there is a next one */
    c->q.limit++;
    c->rc = pl_store_handoffs_closed(store, &c->q, &c->list, &c->err);
    c->q.limit--;
}

static void answer_closed(struct evhttp_request *req, void *ud) {
    closed_read *c = ud;
    closed_reads--;
    if (c->rc == PL_AGAIN) {
        pl_warn("agents: a search of closed conversations for \"%s\" stopped: %s", c->search, c->err);
        if (req)
            pl_reply_error(req, 503, "the search took too long (it stops after %d ms); search for more specific words",
                           PL_STORE_CLOSED_BUDGET_MS);
    } else if (c->err) {
        pl_error("agents: %s", c->err);
        if (req) pl_reply_error(req, 503, "the store is unavailable");
    } else if (req) {
        int more = json_array_size(c->list) > (size_t)c->q.limit;
        if (more) json_array_remove(c->list, (size_t)c->q.limit);
        pl_reply_json(req, 200,
                      json_pack("{s:O, s:o}", "conversations", c->list, "next",
                                more ? json_integer(c->q.offset + c->q.limit) : json_null()));
    }
    json_decref(c->list);
    free(c->search);
    free(c->bot);
    free(c->err);
    free(c);
}

/* A whole number from 0 to max in text, or -1. */
static long number_in(const char *text, long max) {
    if (!text || !*text || strlen(text) > 18) return -1;
    char *end = NULL;
    long n = strtol(text, &end, 10);
    return *end || n < 0 || n > max ? -1 : n;
}

/* GET /v1/agent/closed?q=&offset=&limit=: the closed conversations the
 * agent's token may see, newest closed first. q finds a shopper's name or
 * id, a reason, words of the transcript, or an order number ("#12" or
 * "12") among the newest PL_STORE_CLOSED_SEARCHED closed conversations.
 * The read runs on the store's read thread, bounded in time: the loop
 * never waits for it. */
static void list_closed(pl_agents *a, struct evhttp_request *req, const char *scope) {
    struct evkeyvalq params;
    pl_request_query(req, &params);
    const char *search = evhttp_find_header(&params, "q");
    const char *offset = evhttp_find_header(&params, "offset"), *limit = evhttp_find_header(&params, "limit");
    long from = offset ? number_in(offset, 1000000) : 0, count = limit ? number_in(limit, CLOSED_PAGE_MAX) : CLOSED_PAGE;
    if (search && strlen(search) > MAX_SEARCH) {
        pl_reply_error(req, 400, "\"q\" is longer than %d bytes", MAX_SEARCH);
    } else if (from < 0) {
        pl_reply_error(req, 400, "\"offset\" must be a whole number from 0");
    } else if (count < 1) {
        pl_reply_error(req, 400, "\"limit\" must be a whole number from 1 to %d", CLOSED_PAGE_MAX);
    } else if (closed_reads >= CLOSED_READS_MAX) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        pl_reply_error(req, 503, "other searches of closed conversations are running; try again in a moment");
    } else {
        closed_read *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->search = search && *search ? pl_strdup(search) : NULL;
        c->bot = scope ? pl_strdup(scope) : NULL;
        const char *digits = c->search && c->search[0] == '#' ? c->search + 1 : c->search;
        long order = number_in(digits, 1L << 53);
        c->q = (pl_store_closed_query){.bot = c->bot, .search = c->search, .order_id = order > 0 ? order : 0,
                                       .offset = (int)from, .limit = (int)count};
        closed_reads++;
        pl_reply_after_long_read(req, pl_app_store(a->app), read_closed, answer_closed, c);
    }
    evhttp_clear_headers(&params);
}

/* --- routing -------------------------------------------------------------------------------------- */

static void conversation_route(pl_agents *a, struct evhttp_request *req, char **seg, int n, const char *scope) {
    pl_bot *bot = pl_app_find_bot(a->app, seg[3]);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!pl_access_in_scope(scope, seg[3])) pl_reply_error(req, 403, "this agent token is for bot '%s' only", scope);
    else if (!bot) pl_reply_error(req, 404, "no bot named '%s' is served here", seg[3]);
    else if (n == 6 && cmd == EVHTTP_REQ_GET) show_conversation(a, req, bot, seg[4], seg[5]);
    else if (n == 6) pl_reply_405(req, "GET");
    else if (cmd != EVHTTP_REQ_POST) pl_reply_405(req, "POST");
    else if (strcmp(seg[6], "claim") == 0 || strcmp(seg[6], "reply") == 0 || strcmp(seg[6], "handback") == 0 ||
             strcmp(seg[6], "close") == 0)
        act(a, req, bot, seg[4], seg[5], seg[6]);
    else pl_reply_error(req, 404, "no such action (claim, reply, handback, close)");
}

int pl_agents_route(pl_agents *a, struct evhttp_request *req, char **seg, int n) {
    if (n == 1 && strcmp(seg[0], "agent") == 0) {
        pl_asset_reply_page(req, "agent.html", "the agent console");
        return 1;
    }
    if (n < 3 || strcmp(seg[0], "v1") != 0 || strcmp(seg[1], "agent") != 0) return 0;
    const char *scope = NULL;
    if (!pl_access_allowed(a->app, &agent_access, req, &scope)) return 1;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (n == 3 && strcmp(seg[2], "events") == 0) {
        if (cmd == EVHTTP_REQ_GET) open_stream(a, req, scope);
        else pl_reply_405(req, "GET");
    } else if (n == 3 && strcmp(seg[2], "conversations") == 0) {
        if (cmd != EVHTTP_REQ_GET) {
            pl_reply_405(req, "GET");
        } else {
            agents_read *r = new_read(a);
            r->scope = scope;
            pl_reply_after_store(req, pl_app_store(a->app), read_queue, answer_queue, r);
        }
    } else if (n == 3 && strcmp(seg[2], "closed") == 0) {
        if (cmd == EVHTTP_REQ_GET) list_closed(a, req, scope);
        else pl_reply_405(req, "GET");
    } else if ((n == 6 || n == 7) && strcmp(seg[2], "conversations") == 0) {
        conversation_route(a, req, seg, n, scope);
    } else {
        pl_reply_error(req, 404, "no such endpoint");
    }
    return 1;
}

/* --- life ----------------------------------------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_agents *a = arg;
    for (agent_stream *st = a->streams; st; st = st->next) pl_sse_comment(st->sse, "ping");
}

pl_agents *pl_agents_new(pl_app *app) {
    pl_agents *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->app = app;
    a->watched = pl_map_new();
    a->tick = event_new(pl_app_base(app), -1, EV_PERSIST, on_tick, a);
    struct timeval every = {PING_SECONDS, 0};
    event_add(a->tick, &every);
    send_queue_read(a, 0);
    return a;
}

void pl_agents_free(pl_agents *a) {
    if (!a) return;
    event_free(a->tick);
    for (agent_stream *st = a->streams, *next; st; st = next) {
        next = st->next;
        pl_sse_end(st->sse);
        free(st->scope);
        free(st);
    }
    pl_map_each(a->watched, free_value, NULL);
    pl_map_free(a->watched);
    free(a);
}
