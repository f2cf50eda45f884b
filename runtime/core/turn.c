/* turn: runs parley.engine's turn in a coroutine of the bot's state and
 * turns its result (or its failure) into plain JSON; see turn.h. */
#include "turn.h"

#include <lauxlib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "base/metrics.h"
#include "channels/channel.h"
#include "event/workers.h"
#include "sandbox/json_lua.h"

/* The fallback reply runs under a tenth of a turn's budgets. */
#define FALLBACK_BUDGET_PERCENT 10


struct pl_turn {
    pl_bot *bot;
    pl_vm *vm;
    lua_State *co;
    int co_ref;
    int waiting; /* yielded on I/O; pl_turn_wake resumes it */
    int worker;  /* the worker it runs on (pl_worker_index), -1: the loop */
    int remote;  /* pl_turn_on_loop is running a function on the loop */
    int remote_yieldable; /* whether the coroutine could yield where it called it */
    int yield_after;      /* pl_turn_wait was called on the loop: yield once back */
    pl_budget budget;
    const pl_message *msg;
    char *session_json; /* the stored session, when it was read (not cached) */
    char *locale;       /* the session's locale and turn before this turn, */
    lua_Integer number; /* for the fallback reply */
    pl_turn_done_fn done;
    void *ud;
};
typedef struct pl_turn turn;

/* --- the session cache: {young, old, size} in the registry ---------------
 * Its three slots are integer keys (the table's array part: read without a
 * string's lookup). */

static const char cache_key = 's';
enum { YOUNG = 1, OLD = 2, SIZE = 3 };

static void push_cache(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_createtable(L, 3, 0);
    lua_newtable(L);
    lua_rawseti(L, -2, YOUNG);
    lua_newtable(L);
    lua_rawseti(L, -2, OLD);
    lua_pushinteger(L, 0);
    lua_rawseti(L, -2, SIZE);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
}

/* "channel\x1fuser", joined here when it fits (lua_pushfstring parses its
 * format, and the key is made twice a turn). */
static void push_cache_key(lua_State *L, const pl_message *m) {
    char key[256];
    size_t channel = strlen(m->channel), user = strlen(m->user);
    if (channel + 1 + user > sizeof key) {
        lua_pushfstring(L, "%s\x1f%s", m->channel, m->user);
        return;
    }
    memcpy(key, m->channel, channel);
    key[channel] = '\x1f';
    memcpy(key + channel + 1, m->user, user);
    lua_pushlstring(L, key, channel + 1 + user);
}

/* Pushes the cached session table for m, or nothing; returns whether found.
 * A hit in the old generation moves to the young one. */
static int cache_get(lua_State *L, const pl_message *m) {
    push_cache(L);
    int cache = lua_gettop(L);
    push_cache_key(L, m);
    int key = cache + 1;
    lua_rawgeti(L, cache, YOUNG);
    lua_pushvalue(L, key);
    if (lua_rawget(L, -2) == LUA_TTABLE) { /* [cache, key, young, session] */
        lua_replace(L, cache);
        lua_settop(L, cache);
        return 1;
    }
    lua_pop(L, 2);
    lua_rawgeti(L, cache, OLD);
    lua_pushvalue(L, key);
    if (lua_rawget(L, -2) != LUA_TTABLE) {
        lua_settop(L, cache - 1);
        return 0;
    }
    /* [cache, key, old, session]: promote to young, drop from old */
    lua_rawgeti(L, cache, YOUNG);
    lua_pushvalue(L, key);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushvalue(L, key);
    lua_pushnil(L);
    lua_rawset(L, -4);
    lua_replace(L, cache);
    lua_settop(L, cache);
    return 1;
}

/* Caches the table at idx as m's session; rotates generations when full. */
static void cache_put(lua_State *L, const pl_message *m, int idx) {
    idx = lua_absindex(L, idx);
    push_cache(L);
    lua_rawgeti(L, -1, SIZE);
    lua_Integer size = lua_tointeger(L, -1) + 1;
    lua_pop(L, 1);
    if (size > PL_SESSION_CACHE) {
        lua_rawgeti(L, -1, YOUNG);
        lua_rawseti(L, -2, OLD);
        lua_newtable(L);
        lua_rawseti(L, -2, YOUNG);
        size = 1;
    }
    lua_pushinteger(L, size);
    lua_rawseti(L, -2, SIZE);
    lua_rawgeti(L, -1, YOUNG);
    push_cache_key(L, m);
    lua_pushvalue(L, idx);
    lua_rawset(L, -3);
    lua_pop(L, 2);
}

static void cache_drop(lua_State *L, const pl_message *m) {
    push_cache(L);
    push_cache_key(L, m);
    for (int generation = YOUNG; generation <= OLD; generation++) {
        lua_rawgeti(L, -2, generation);
        lua_pushvalue(L, -2);
        lua_pushnil(L);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

static pl_workers *workers;

void pl_turn_use_workers(pl_workers *w) { workers = w; }

static void forget_here(pl_bot *bot, const char *channel, const char *user) {
    pl_vm *vm = pl_bot_vm_here(bot);
    if (!vm) return;
    pl_message m = {.channel = (char *)channel, .user = (char *)user};
    cache_drop(pl_vm_lua(vm), &m);
}

typedef struct {
    pl_bot *bot;
    char *channel, *user;
} forgotten;

static void forget_on_worker(void *arg) {
    forgotten *f = arg;
    forget_here(f->bot, f->channel, f->user);
    free(f->channel);
    free(f->user);
    free(f);
}

void pl_turn_forget(pl_bot *bot, const char *channel, const char *user) {
    if (!workers || pl_worker_index() >= 0) {
        forget_here(bot, channel, user);
        return;
    }
    /* queued before the session's next turn, on the worker that runs it */
    forgotten *f = malloc(sizeof *f);
    if (!f) abort();
    *f = (forgotten){bot, pl_strdup(channel), pl_strdup(user)};
    pl_workers_post(workers, pl_workers_shard(workers, pl_bot_name(bot), channel, user), forget_on_worker, f);
}

pl_message *pl_message_new(const char *bot, const char *channel, const char *user) {
    pl_message *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->bot = pl_strdup(bot);
    m->channel = pl_strdup(channel);
    m->user = pl_strdup(user);
    m->received_at = pl_now_ms();
    return m;
}

static char *string_or_null(const json_t *v) {
    return json_is_string(v) ? pl_strdup(json_string_value(v)) : NULL;
}

pl_message *pl_message_from_event(const char *bot, const char *channel, const json_t *event,
                                  int64_t inbox_id) {
    pl_message *m = pl_message_new(bot, channel, json_string_value(json_object_get(event, "user")));
    m->text = string_or_null(json_object_get(event, "text"));
    m->payload = string_or_null(json_object_get(event, "payload"));
    m->locale = string_or_null(json_object_get(event, "locale"));
    json_t *info = json_object_get(event, "info");
    if (json_is_object(info)) m->channel_info = json_deep_copy(info);
    json_t *ev = json_object_get(event, "event");
    if (ev) m->event = json_deep_copy(ev);
    json_t *at = json_object_get(event, "received_at");
    if (json_is_integer(at)) m->received_at = json_integer_value(at);
    m->inbox_id = inbox_id;
    return m;
}

void pl_message_free(pl_message *m) {
    if (!m) return;
    free(m->bot);
    free(m->channel);
    free(m->user);
    free(m->text);
    free(m->payload);
    free(m->locale);
    json_decref(m->channel_info);
    json_decref(m->event);
    free(m->stored_session);
    free(m);
}

json_t *pl_turn_replies(const pl_turn_result *r) {
    if (!r->replies) {
        /* the text is the writer's (or jansson's): it reads back as the
         * tree it stands for (reals are written with 17 digits) */
        json_t *tree = r->replies_text ? json_loads(r->replies_text, JSON_ALLOW_NUL, NULL) : NULL;
        ((pl_turn_result *)r)->replies = json_is_array(tree) ? tree : json_array();
        if (tree && !json_is_array(tree)) json_decref(tree);
    }
    return r->replies;
}

int pl_turn_ignored(const pl_turn_result *r) { return json_is_true(json_object_get(r->effects, "ignored")); }

void pl_turn_result_clear(pl_turn_result *r) {
    free(r->session_json);
    json_decref(r->replies);
    free(r->replies_text);
    free(r->locale);
    json_decref(r->effects);
    json_decref(r->heard_facts);
    free(r->events.step);
    free(r->events.names);
    free(r->events.list);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* What the channel registry says of a channel name, asked once per name
 * and thread: its table of adapters is fixed, and a turn asks two or three
 * times (each a walk of the table), nearly always of the channel it asked
 * last. */
typedef struct {
    char name[32];
    const pl_channel_adapter *adapter;
    int can_push;
} channel_facts;

static const channel_facts *facts_of(const char *channel) {
    static _Thread_local channel_facts last;
    if (strcmp(last.name, channel) == 0 && last.name[0]) return &last;
    channel_facts facts = {.adapter = pl_channel_find(channel), .can_push = pl_channel_can_push(channel)};
    size_t len = strlen(channel);
    if (len == 0 || len >= sizeof facts.name) { /* not kept: asked again next time */
        static _Thread_local channel_facts once;
        once = facts;
        return &once;
    }
    memcpy(facts.name, channel, len + 1);
    last = facts;
    return &last;
}

/* lua_pushstring without its cache of C strings by address, which the
 * message's strings, new each message, never hit. */
static void push_text(lua_State *L, const char *s) {
    if (s) lua_pushlstring(L, s, strlen(s));
    else lua_pushnil(L);
}

static void push_message(lua_State *L, const pl_message *m) {
    lua_createtable(L, 0, 8);
    push_text(L, m->user);
    lua_setfield(L, -2, "user");
    if (m->channel_info) pl_json_push(L, m->channel_info);
    else lua_createtable(L, 0, 2); /* name and push */
    push_text(L, m->channel);
    lua_setfield(L, -2, "name");
    /* whether parley can send this shopper something unasked (a payment
     * result, a reminder): not on the HTTP API, the console, or voice */
    lua_pushboolean(L, facts_of(m->channel)->can_push);
    lua_setfield(L, -2, "push");
    lua_setfield(L, -2, "channel");
    if (m->text) {
        push_text(L, m->text);
        lua_setfield(L, -2, "text");
    }
    if (m->payload) {
        push_text(L, m->payload);
        lua_setfield(L, -2, "payload");
    }
    if (m->locale) {
        push_text(L, m->locale);
        lua_setfield(L, -2, "locale");
    }
    if (m->event) {
        pl_json_push(L, m->event);
        lua_setfield(L, -2, "event");
    }
}

/* Pushes parley.engine[fn] onto L. */
static void push_engine_fn(lua_State *L, const char *fn) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "parley.engine");
    lua_getfield(L, -1, fn);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static void push_session(lua_State *L, const char *session_json) {
    json_t *state = session_json ? json_loads(session_json, 0, NULL) : NULL;
    if (state) pl_json_push(L, state);
    else lua_pushnil(L);
    json_decref(state);
}

static json_t *static_fallback(const pl_bot *bot, const pl_message *msg) {
    return json_pack("[{s:s}]", "text", pl_bot_static_fallback(bot, msg->locale));
}

/* The bot's fallback replies, worded by its tone when that works, in the
 * session's locale. */
static json_t *fallback_replies(turn *t) {
    lua_State *L = pl_vm_lua(t->vm);
    push_engine_fn(L, "fallback");
    lua_createtable(L, 0, 2);
    if (t->locale) {
        lua_pushstring(L, t->locale);
        lua_setfield(L, -2, "locale");
    }
    lua_pushinteger(L, t->number);
    lua_setfield(L, -2, "turn");
    push_message(L, t->msg);
    char *err = NULL;
    json_t *replies = NULL;
    if (pl_vm_run(t->vm, 2, 1, FALLBACK_BUDGET_PERCENT, &err) == PL_OK) {
        replies = pl_json_from_lua(L, -1, "replies", &err);
        lua_pop(L, 1);
    }
    if (!replies) {
        pl_error("[%s] the fallback reply failed too: %s", pl_bot_name(t->bot), err);
        replies = static_fallback(t->bot, t->msg);
    }
    free(err);
    return replies;
}

/* Lets go of the turn's coroutine (never closing it: that would run the
 * script's __close after a failed run) and, when asked, of everything it
 * built, so that the fallback and the next turns have the memory back
 * (the bot pays for that collection). */
static void drop_run(turn *t, int collect_garbage) {
    lua_State *L = pl_vm_lua(t->vm);
    luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
    t->co = NULL;
    /* the turn may have changed the cached table before it failed */
    cache_drop(L, t->msg);
    if (!collect_garbage) return;
    int64_t t0 = pl_cpu_us();
    lua_gc(L, LUA_GCCOLLECT);
    pl_usage_add(pl_bot_usage(t->bot), pl_cpu_us() - t0);
}

/* A failed turn's event: "budget_abort" with the budget it ran out of, or
 * "script_error" with where (the file:line the error starts with; never its
 * message, which may hold what the shopper wrote). */
static void failure_event(turn *t, pl_turn_result *r, const char *error) {
    static const char *const budgets[] = {[PL_OVER_INSTRUCTIONS] = "instructions", [PL_OVER_TIME] = "time",
                                          [PL_OVER_MEMORY] = "memory"};
    json_t *event;
    if (t->budget.over > PL_OVER_NONE && t->budget.over <= PL_OVER_MEMORY) {
        event = json_pack("{s:s, s:{s:s}}", "name", "budget_abort", "props", "budget", budgets[t->budget.over]);
    } else {
        long line = 0;
        char *file = pl_log_script_position(error, &line);
        char *where = file ? pl_strdupf("%s:%ld", file, line) : NULL;
        event = where ? json_pack("{s:s, s:{s:s}}", "name", "script_error", "props", "where", where)
                      : json_pack("{s:s}", "name", "script_error");
        free(where);
        free(file);
    }
    json_t *list = json_pack("[o]", event);
    r->events.list = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    r->events.names = pl_strdupf(" %s ", t->budget.over ? "budget_abort" : "script_error");
}

/* Turns that failed by a script's error (a budget's abort is counted by
 * usage.c, per budget). */
static pl_metric *script_errors;
static pthread_once_t metrics_once = PTHREAD_ONCE_INIT;

static void make_metrics(void) {
    script_errors = pl_metric_counter("parley_script_errors_total",
                                      "Turns that failed by an error of the bot's scripts (the shopper got the fallback)",
                                      "bot");
}

void pl_turn_metrics(void) { pthread_once(&metrics_once, make_metrics); }

/* Whether the shopper did nothing that asked for an answer: the web chat
 * panel opened (or a page was visited). A failure of such a turn is the
 * author's, in the log; the shopper, who wrote nothing, is not told that
 * something broke. */
static int unasked_by_shopper(const pl_message *m) {
    const char *type = json_string_value(json_object_get(m->event, "type"));
    return type && (strcmp(type, "open") == 0 || strcmp(type, "page") == 0);
}

static void fail_turn(turn *t, pl_turn_result *r, char *error, const char *traceback) {
    pl_log_fields fields = {.bot = pl_bot_name(t->bot), .channel = t->msg->channel, .script_error = error};
    pl_log_with(PL_LOG_ERROR, &fields, "[%s] %s/%s: turn failed: %s%s%s", pl_bot_name(t->bot), t->msg->channel,
                t->msg->user, error, traceback ? "\n" : "", traceback ? traceback : "");
    if (t->budget.over == PL_OVER_NONE) {
        pl_turn_metrics();
        pl_metric_add(script_errors, (const char *[]){pl_bot_name(t->bot)}, 1);
    }
    if (t->co) drop_run(t, 0);
    if (pl_bot_analytics_on(t->bot)) failure_event(t, r, error);
    r->error = error;
    r->replies = unasked_by_shopper(t->msg) ? json_array() : fallback_replies(t);
    r->locale = t->locale ? pl_strdup(t->locale) : NULL;
}

/* The session's locale, whether its dialog stack is empty and when the
 * shopper last wrote, read from
 * the session table at idx of co, which was written as a JSON object: raw
 * reads (no script runs here) of what its object's members are. */
static void read_session(lua_State *co, int idx, pl_turn_result *r) {
    lua_pushliteral(co, "locale");
    if (lua_rawget(co, idx) == LUA_TSTRING) r->locale = pl_strdup(lua_tostring(co, -1));
    lua_pop(co, 1);
    lua_pushliteral(co, "stack");
    lua_rawget(co, idx);
    r->done = pl_json_list_length(co, -1) == 0;
    lua_pop(co, 1);
    lua_pushliteral(co, "heard_at");
    if (lua_rawget(co, idx) == LUA_TNUMBER) r->heard_at = (long long)lua_tonumber(co, -1);
    lua_pop(co, 1);
}

/* For an event's turn on a platform's channel: the facts of the shopper's
 * last message, from the session table at idx (see pl_turn_result). */
static void read_heard_facts(lua_State *co, int idx, const pl_message *msg, pl_turn_result *r) {
    if (msg->channel_info || !msg->event || !facts_of(msg->channel)->adapter) return;
    lua_pushliteral(co, "heard_facts");
    if (lua_rawget(co, idx) == LUA_TTABLE) {
        char *err = NULL;
        r->heard_facts = pl_json_from_lua(co, lua_gettop(co), "heard_facts", &err);
        free(err); /* facts that cannot be JSON are left out: the adapter does without */
    }
    lua_pop(co, 1);
}

/* The most a turn's analytics row holds: its names, and its events' props
 * as JSON (parley.analytics keeps far less: 32 events of 2 KiB at most). */
#define MAX_EVENT_NAMES 4096
#define MAX_EVENT_LIST (96 * 1024)

/* Bytes appended to a string of C (new, NUL-terminated), for the names of
 * a turn's events: a Lua buffer made a Lua string of them only for it to
 * be copied. */
typedef struct {
    char *text;
    size_t len, cap;
} joined;

static void join(joined *j, const char *s, size_t len) {
    if (j->len + len + 1 > j->cap) {
        j->cap = 2 * (j->len + len + 1) + 64;
        j->text = realloc(j->text, j->cap);
        if (!j->text) abort();
    }
    memcpy(j->text + j->len, s, len);
    j->len += len;
    j->text[j->len] = '\0';
}

#define JOIN_LITERAL(j, s) join((j), s, sizeof s - 1)

/* The turn's analytics, the table at idx of co ({conv =, flow =, step =,
 * marks =, names =, list =}, see parley.analytics), into r->events: the
 * row's names are the marked events and the named ones, in turn order
 * (cut at a NUL byte, should a name hold one). */
static int read_events(lua_State *co, int idx, pl_turn_result *r, char **err) {
    enum { STARTED = 1, MESSAGE = 2, STEP = 4, REPLY = 8 };
    lua_getfield(co, idx, "conv");
    r->events.conv = lua_isinteger(co, -1) ? (int64_t)lua_tointeger(co, -1) : 0;
    lua_getfield(co, idx, "marks");
    lua_Integer marks = lua_isinteger(co, -1) ? lua_tointeger(co, -1) : 0;
    lua_getfield(co, idx, "flow");
    lua_getfield(co, idx, "step");
    /* the step is kept on the turns that moved the conversation to it ("":
     * its flows all ended) */
    if ((marks & STEP) && lua_type(co, -2) == LUA_TSTRING && lua_type(co, -1) == LUA_TSTRING) {
        joined step = {0};
        const char *flow = lua_tostring(co, -2), *name = lua_tostring(co, -1);
        join(&step, flow, strlen(flow));
        JOIN_LITERAL(&step, ".");
        join(&step, name, strlen(name));
        r->events.step = step.text;
    } else if (marks & STEP) {
        r->events.step = pl_strdup("");
    }
    lua_pop(co, 4);
    joined names = {0};
    JOIN_LITERAL(&names, " ");
    if (marks & STARTED) JOIN_LITERAL(&names, "conversation_started ");
    if (marks & MESSAGE) JOIN_LITERAL(&names, "message ");
    if (lua_getfield(co, idx, "names") == LUA_TTABLE) {
        size_t len;
        for (lua_Integer i = 1; lua_rawgeti(co, -1, i) == LUA_TSTRING; i++) {
            const char *name = lua_tolstring(co, -1, &len);
            join(&names, name, len);
            JOIN_LITERAL(&names, " ");
            lua_pop(co, 1);
        }
        lua_pop(co, 1); /* what ended the list */
    }
    lua_pop(co, 1);
    if (marks & STEP) JOIN_LITERAL(&names, "step ");
    if (marks & REPLY) JOIN_LITERAL(&names, "reply ");
    r->events.names = names.text;
    int listed = lua_getfield(co, idx, "list") == LUA_TTABLE;
    size_t list_len = 0;
    if (listed) r->events.list = pl_json_text_from_lua(co, lua_gettop(co), "events", &list_len, err);
    lua_pop(co, 1);
    if (listed && !r->events.list) return PL_ERR;
    /* (parley.analytics bounds what a turn records; this bounds what a row
     * can ever hold, whatever reached here) */
    if (strlen(r->events.names) > MAX_EVENT_NAMES || list_len > MAX_EVENT_LIST) {
        pl_warn("the analytics events of a turn were left out: %zu bytes of names, %zu of props (at most %d, %d)",
                strlen(r->events.names), list_len, MAX_EVENT_NAMES, MAX_EVENT_LIST);
        free(r->events.names);
        free(r->events.list);
        free(r->events.step);
        memset(&r->events, 0, sizeof r->events);
    }
    return PL_OK;
}

/* Converts the engine's (session, replies, effects) results on co into r:
 * the session and the replies straight to JSON text, the effects to a
 * tree, which the commit reads. The replies' tree is made here too for a
 * platform's channel, whose adapter renders them (for the outbox, or as
 * the answer of a synchronous channel): from the Lua values it costs a
 * third of what reading the text back would. Elsewhere (the HTTP API, web
 * chat) nothing needs it, or hardly ever: pl_turn_replies reads it then. */
static int collect(turn *t, pl_turn_result *r, char **err) {
    /* the session keeps the choices the replies offer: written once */
    pl_json_shared shared = {0};
    char *session = pl_json_text_from_lua_sharing(t->co, 1, "session", NULL, err, &shared);
    if (!session) return PL_ERR;
    char *replies = pl_json_text_from_lua_sharing(t->co, 2, "replies", NULL, err, &shared);
    if (!replies || replies[0] != '[') {
        free(session);
        free(replies);
        if (!*err) *err = pl_strdup("the engine returned no list of replies");
        return PL_ERR;
    }
    if (facts_of(t->msg->channel)->adapter && !(r->replies = pl_json_from_lua(t->co, 2, "replies", err))) {
        free(session);
        free(replies);
        return PL_ERR;
    }
    if (lua_istable(t->co, 3)) {
        r->effects = pl_json_from_lua(t->co, 3, "effects", err);
        if (!r->effects) {
            free(session);
            free(replies);
            json_decref(r->replies);
            r->replies = NULL;
            return PL_ERR;
        }
    }
    if (lua_istable(t->co, 4) && read_events(t->co, 4, r, err) != PL_OK) {
        free(session);
        free(replies);
        json_decref(r->replies);
        r->replies = NULL;
        json_decref(r->effects);
        r->effects = NULL;
        return PL_ERR;
    }
    r->replies_text = replies;
    r->done = 1;
    if (session[0] == '{') {
        read_session(t->co, 1, r);
        read_heard_facts(t->co, 1, t->msg, r);
    }
    /* a session that is no object or list is not stored (json_dumps
     * without JSON_ENCODE_ANY wrote none), nor that of a turn the engine
     * ignored ({"ignored": true}: the session is as it was) */
    if ((session[0] == '{' || session[0] == '[') && !pl_turn_ignored(r)) r->session_json = session;
    else free(session);
    return PL_OK;
}

static void finish(turn *t, int status, int nres) {
    pl_turn_result r = {.status = 200};
    char *err = NULL, *traceback = NULL;
    if (status == LUA_OK) {
        lua_settop(t->co, nres >= 4 ? 4 : nres);
        if (collect(t, &r, &err) == PL_OK) {
            lua_State *L = pl_vm_lua(t->vm);
            lua_pushvalue(t->co, 1);
            lua_xmove(t->co, L, 1);
            cache_put(L, t->msg, -1);
            lua_pop(L, 1);
            pl_vm_recycle_thread(t->vm, t->co, t->co_ref);
            t->co_ref = LUA_NOREF;
        } else {
            fail_turn(t, &r, err, NULL);
        }
    } else if (status == LUA_YIELD && t->waiting) {
        return; /* pl_turn_wake goes on */
    } else if (status == LUA_YIELD) {
        err = pl_strdup("a step yielded without waiting for I/O (coroutine.yield outside a coroutine?)");
        fail_turn(t, &r, err, NULL);
    } else {
        err = pl_vm_describe_error(t->vm, t->co, status, &traceback);
        /* a failed run may leave much garbage: collected at once when it
         * fills half the budget (Lua collects before refusing an allocation
         * of its own, but not before refusing a string buffer's) */
        drop_run(t, t->budget.over == PL_OVER_MEMORY || status == LUA_ERRMEM ||
                        pl_vm_memory_used(t->vm) > pl_vm_memory_limit(t->vm) / 2);
        fail_turn(t, &r, err, traceback);
        free(traceback);
    }
    luaL_unref(pl_vm_lua(t->vm), LUA_REGISTRYINDEX, t->co_ref);
    pl_vm_release(t->vm);
    free(t->session_json);
    free(t->locale);
    t->done(&r, t->ud);
    free(t);
}

/* The store is the loop's: a worker reads a session there. */
typedef struct {
    pl_store *store;
    pl_session_key key;
    char **json;
    char *err;
    int rc;
} session_read;

static void load_session(void *arg) {
    session_read *r = arg;
    r->rc = pl_store_session_get(r->store, &r->key, r->json, &r->err);
}

/* A turn thread's own read-only connection (WAL readers do not wait for
 * the loop's writes), opened at its first read; NULL where the database
 * has no file, and the loop reads for it then. A turn sees every commit of
 * the session's earlier turns: its mailbox released it after them. */
static _Thread_local pl_store *reader;
static _Thread_local int reader_tried;

static pl_store *store_here(pl_store *store) {
    if (pl_worker_index() < 0) return store;
    if (!reader_tried) {
        reader_tried = 1;
        const char *path = pl_store_path(store);
        char *err = NULL;
        if (path && pl_store_open_reader(path, &reader, &err) != PL_OK) {
            pl_warn("turn thread %d reads sessions through the loop: %s", pl_worker_index(), err);
            free(err);
        }
    }
    return reader;
}

void pl_turn_thread_done(void) {
    pl_store_close(reader);
    reader = NULL;
    reader_tried = 0;
}

/* Pushes the session onto co: the cached table, or the stored one (then
 * kept in t->session_json for the fallback), or nil for a new shopper. */
static int push_session_of(turn *t, pl_store *store, char **err) {
    lua_State *L = pl_vm_lua(t->vm);
    if (t->msg->session_known) { /* read as the session was taken */
        cache_drop(L, t->msg);
        t->session_json = t->msg->stored_session ? pl_strdup(t->msg->stored_session) : NULL;
        push_session(t->co, t->session_json);
        return PL_OK;
    }
    if (cache_get(L, t->msg)) {
        lua_xmove(L, t->co, 1);
        return PL_OK;
    }
    session_read read = {.store = store, .key = {t->msg->bot, t->msg->channel, t->msg->user}, .json = &t->session_json};
    pl_store *own = store_here(store);
    if (own) {
        read.store = own;
        load_session(&read);
    } else {
        pl_workers_call_loop(load_session, &read);
    }
    if (read.rc != PL_OK) {
        *err = read.err;
        return PL_ERR;
    }
    push_session(t->co, t->session_json);
    return PL_OK;
}

/* Notes the locale and turn number of the session on co's top. */
static void note_session(turn *t) {
    if (!lua_istable(t->co, -1)) return;
    if (lua_getfield(t->co, -1, "locale") == LUA_TSTRING) t->locale = pl_strdup(lua_tostring(t->co, -1));
    lua_pop(t->co, 1);
    lua_getfield(t->co, -1, "turn");
    t->number = lua_tointeger(t->co, -1);
    lua_pop(t->co, 1);
}

static void run_turn(pl_bot *bot, const pl_message *msg, pl_store *store, pl_turn_done_fn done, void *ud) {
    pl_vm *vm = pl_bot_vm_here(bot);
    if (!vm) {
        /* a turn thread does not read the bot's error: the loop replaces it */
        const char *why = pl_worker_index() < 0 ? pl_bot_error(bot) : NULL;
        pl_turn_result r = {.status = 200,
                            .replies = static_fallback(bot, msg),
                            .error = pl_strdupf("the bot's scripts have not loaded: %s",
                                                why ? why : "see the log")};
        pl_error("[%s] %s/%s: %s", pl_bot_name(bot), msg->channel, msg->user, r.error);
        done(&r, ud);
        return;
    }
    turn *t = calloc(1, sizeof *t);
    if (!t) abort();
    *t = (turn){.bot = bot, .vm = vm, .msg = msg, .done = done, .ud = ud, .worker = pl_worker_index()};
    t->budget.limit = pl_vm_instruction_limit(vm);
    t->budget.owner = t;
    pl_vm_retain(vm);
    lua_State *L = pl_vm_lua(vm);
    t->co = pl_vm_new_thread(vm, &t->co_ref);
    push_engine_fn(t->co, "turn");
    char *err = NULL;
    if (push_session_of(t, store, &err) != PL_OK) {
        pl_error("[%s] %s/%s: %s", pl_bot_name(bot), msg->channel, msg->user, err);
        free(err);
        luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
        pl_vm_release(vm);
        free(t);
        pl_turn_result r = {.status = 503, .replies = json_array()};
        done(&r, ud);
        return;
    }
    note_session(t);
    push_message(t->co, msg);
    int nres = 0;
    int status = pl_vm_resume(vm, t->co, 2, &nres, &t->budget);
    finish(t, status, nres);
}

/* The turn's lines name its bot and channel. Nothing logs after done was
 * called (msg may be gone by then, on a turn thread). */
void pl_turn_run(pl_bot *bot, const pl_message *msg, pl_store *store, pl_turn_done_fn done,
                 void *ud) {
    pl_log_fields outer = pl_log_set_context(pl_bot_name(bot), msg->channel);
    run_turn(bot, msg, store, done, ud);
    pl_log_restore_context(outer);
}

pl_turn *pl_turn_current(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_budget *b = vm ? pl_vm_current_budget(vm) : NULL;
    return b ? b->owner : NULL;
}

void pl_turn_check_wait(lua_State *L, pl_turn *t) {
    if (L != t->co)
        luaL_error(L, "cannot wait for I/O inside a coroutine of the script's own; call it from the step itself");
    if (!(t->remote ? t->remote_yieldable : lua_isyieldable(L)))
        luaL_error(L, "cannot wait for I/O here (inside require, a metamethod, a sort comparator or a "
                      "string.gsub callback); call it from the step itself");
}

int pl_turn_wait(lua_State *L, pl_turn *t) {
    pl_turn_check_wait(L, t);
    t->waiting = 1;
    if (!t->remote) return lua_yield(L, 0);
    t->yield_after = 1; /* pl_turn_on_loop yields, back on the worker */
    return 0;
}

/* pl_turn_wake on the worker: push runs on the loop (it may read what the
 * loop owns), then the turn resumes here. */
typedef struct {
    pl_turn *turn;
    int (*push)(lua_State *co, void *ud);
    void *ud;
    int nargs;
} wake;

static void push_on_loop(void *arg) {
    wake *w = arg;
    w->nargs = w->push(w->turn->co, w->ud);
}

static void resume_woken(pl_turn *t, int nargs) {
    pl_log_fields outer = pl_log_set_context(pl_bot_name(t->bot), t->msg->channel);
    int nres = 0;
    int status = pl_vm_resume(t->vm, t->co, nargs, &nres, &t->budget);
    finish(t, status, nres);
    pl_log_restore_context(outer);
}

/* Runs once the turn has yielded: tasks run between turns, and the turn
 * yields before its thread takes the next task. */
static void wake_on_worker(void *arg) {
    wake *w = arg;
    w->turn->waiting = 0;
    pl_workers_call_loop(push_on_loop, w);
    pl_turn *t = w->turn;
    int nargs = w->nargs;
    free(w);
    resume_woken(t, nargs);
}

void pl_turn_wake(pl_turn *t, int (*push)(lua_State *co, void *ud), void *ud) {
    /* the answer can come before the worker's turn has yielded: nothing of
     * the turn is touched here then, its thread does it all */
    if (t->worker >= 0 && pl_worker_index() != t->worker) {
        wake *w = malloc(sizeof *w);
        if (!w) abort();
        *w = (wake){.turn = t, .push = push, .ud = ud};
        pl_workers_post(workers, (size_t)t->worker, wake_on_worker, w);
        return;
    }
    t->waiting = 0;
    resume_woken(t, push(t->co, ud));
}

/* --- pl_turn_on_loop ------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    lua_CFunction fn;
    int status;
    int nresults;
} remote_call;

/* On the loop: calls fn with the worker's arguments, in protected mode (an
 * error must not jump across threads: it is raised again on the worker). */
static void call_remote(void *arg) {
    remote_call *c = arg;
    int nargs = lua_gettop(c->L);
    lua_pushcfunction(c->L, c->fn);
    lua_insert(c->L, 1);
    c->status = lua_pcall(c->L, nargs, LUA_MULTRET, 0);
    c->nresults = lua_gettop(c->L);
}

/* The loop's time for a task it runs for a worker's run. */
typedef struct {
    pl_task_fn fn;
    void *arg;
    int64_t us;
} timed_call;

/* The loop thread's CPU time in µs: what a call on the loop costs the
 * loop, which the script is charged for. Time spent waiting (a PostgreSQL
 * round trip) is not work done for the script, and is not charged. */
static int64_t loop_cpu_us(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return pl_monotonic_us();
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void run_timed(void *arg) {
    timed_call *c = arg;
    int64_t t0 = loop_cpu_us();
    c->fn(c->arg);
    c->us = loop_cpu_us() - t0;
}

void pl_turn_call_loop(lua_State *L, pl_task_fn fn, void *arg) {
    if (pl_worker_index() < 0) {
        fn(arg);
        return;
    }
    timed_call c = {fn, arg, 0};
    lua_State *watched = pl_vm_pause_watch();
    pl_workers_call_loop(run_timed, &c);
    pl_vm_resume_watch(watched);
    pl_vm_charge_elsewhere(L, c.us);
}

int pl_turn_on_loop(lua_State *L, lua_CFunction fn) {
    if (pl_worker_index() < 0) return fn(L);
    pl_turn *t = pl_turn_current(L);
    if (t) {
        t->remote = 1;
        t->remote_yieldable = lua_isyieldable(L);
    }
    remote_call c = {.L = L, .fn = fn};
    pl_turn_call_loop(L, call_remote, &c);
    if (t) t->remote = 0;
    if (c.status != LUA_OK) return lua_error(L);
    if (t && t->yield_after) {
        t->yield_after = 0;
        return lua_yield(L, 0);
    }
    return c.nresults;
}

/* --- pl_turn_dispatch ------------------------------------------------------------- */

typedef struct {
    pl_bot *bot;
    const pl_message *msg;
    pl_store *store;
    pl_turn_done_fn done;
    void *ud;
    pl_turn_result result;
} dispatched;

static void done_on_loop(void *arg) {
    dispatched *d = arg;
    d->done(&d->result, d->ud);
    pl_turn_result_clear(&d->result);
    free(d);
}

static void done_on_worker(pl_turn_result *result, void *ud) {
    dispatched *d = ud;
    d->result = *result;
    memset(result, 0, sizeof *result);
    pl_workers_post_loop(workers, done_on_loop, d);
}

static void run_on_worker(void *arg) {
    dispatched *d = arg;
    pl_turn_run(d->bot, d->msg, d->store, done_on_worker, d);
}

void pl_turn_dispatch(pl_bot *bot, const pl_message *msg, pl_store *store, pl_turn_done_fn done,
                      void *ud) {
    if (!workers) {
        pl_turn_run(bot, msg, store, done, ud);
        return;
    }
    dispatched *d = calloc(1, sizeof *d);
    if (!d) abort();
    *d = (dispatched){.bot = bot, .msg = msg, .store = store, .done = done, .ud = ud};
    pl_workers_post(workers, pl_workers_shard(workers, msg->bot, msg->channel, msg->user), run_on_worker, d);
}

const pl_message *pl_turn_message(const pl_turn *t) { return t->msg; }
pl_bot *pl_turn_bot(const pl_turn *t) { return t->bot; }
