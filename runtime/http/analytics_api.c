/* analytics_api: the shop's figures over HTTP (docs/analytics.md):
 *
 *   GET /analytics                              the dashboard (runtime/web/analytics.html)
 *   GET /v1/analytics/bots                      the bots a token opens
 *   GET /v1/bots/{bot}/analytics                the figures (app/analytics.h)
 *   GET /v1/bots/{bot}/analytics/events         the events, CSV or NDJSON, paged
 *
 * Behind PARLEY_ANALYTICS_TOKEN (every bot) or a bot's analytics_token_env
 * (that bot), as the agent console is (access.h). The reads run on the
 * store's read thread (pl_reply_after_long_read): the loop never waits. */
#define _GNU_SOURCE
#include "analytics_api.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "app/analytics.h"
#include "assets.h"
#include "base/calendar.h"
#include "base/common.h"
#include "base/map.h"
#include "reply.h"
#include "store_reply.h"

#define DEFAULT_DAYS 7
#define EXPORT_ROWS 1000
#define EXPORT_MAX_ROWS 10000

/* Reads of the figures and the events waiting or running at once, in all
 * and of one bot: more are told to come back (they would queue behind each
 * other on the read thread, and one brand's would hold up the others'; the
 * loop's thread only counts). */
#define MAX_READS 4
#define MAX_READS_OF_A_BOT 2
static int reads_in_flight;
static pl_map *reads_of_bots; /* bot -> its reads in flight (int64_t *) */

static const pl_access analytics_access = {"PARLEY_ANALYTICS_TOKEN", "analytics_token_env", "the analytics API"};

/* 1 when another long read of bot may start; else answers 503. */
static int read_may_start(struct evhttp_request *req, const char *bot) {
    if (!reads_of_bots) reads_of_bots = pl_map_new();
    int64_t *mine = pl_map_get(reads_of_bots, bot);
    if (reads_in_flight < MAX_READS && (!mine || *mine < MAX_READS_OF_A_BOT)) {
        if (!mine) {
            if (!(mine = calloc(1, sizeof *mine))) abort();
            pl_map_put(reads_of_bots, bot, mine);
        }
        ++*mine;
        reads_in_flight++;
        return 1;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    pl_reply_error(req, 503, "%s analytics reads are running; try again in a moment",
                   reads_in_flight < MAX_READS ? "this bot's" : "other");
    return 0;
}

static void read_ended(const char *bot) {
    reads_in_flight--;
    int64_t *mine = pl_map_get(reads_of_bots, bot);
    if (mine && --*mine == 0) free(pl_map_put(reads_of_bots, bot, NULL));
}

/* --- GET /v1/analytics/bots ----------------------------------------------------------------- */

static json_t *strings_of(const json_t *v) {
    json_t *list = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) if (json_is_string(item)) json_array_append(list, item);
    return list;
}

static void list_bots(pl_app *app, struct evhttp_request *req, const char *scope) {
    json_t *bots = json_array();
    for (size_t i = 0; i < pl_app_bot_count(app); i++) {
        pl_bot *bot = pl_app_bot(app, i);
        if (!pl_access_in_scope(scope, pl_bot_name(bot))) continue;
        const json_t *manifest = pl_bot_manifest(bot);
        json_t *channels = json_array();
        const char *name;
        json_t *settings;
        json_array_append_new(channels, json_string("rest"));
        json_object_foreach((json_t *)json_object_get(manifest, "channels"), name, settings)
            json_array_append_new(channels, json_string(name));
        const char *title = json_string_value(json_object_get(manifest, "title"));
        json_array_append_new(bots, json_pack("{s:s, s:s, s:s, s:o, s:o}", "name", pl_bot_name(bot), "title",
                                              title ? title : pl_bot_name(bot), "time_zone", pl_bot_time_zone(bot), "channels",
                                              channels, "locales", strings_of(json_object_get(manifest, "locales"))));
    }
    pl_reply_json(req, 200, json_pack("{s:o}", "bots", bots));
}

/* --- the range a request asks for ----------------------------------------------------------- */

typedef struct {
    char from[11], to[11];
    char *channel, *locale;
} range;

/* from/to default to the DEFAULT_DAYS ending today in the bot's zone. */
static void read_range(struct evhttp_request *req, pl_bot *bot, range *r) {
    struct evkeyvalq params;
    pl_request_query(req, &params);
    char today[11] = "1970-01-01";
    int64_t now = pl_now_ms();
    pl_calendar_date_at(pl_bot_time_zone(bot), now, today);
    char week_ago[11] = "1970-01-01";
    pl_calendar_date_at(pl_bot_time_zone(bot), now - (int64_t)(DEFAULT_DAYS - 1) * 86400000, week_ago);
    const char *from = evhttp_find_header(&params, "from"), *to = evhttp_find_header(&params, "to");
    snprintf(r->to, sizeof r->to, "%s", to && *to ? to : today);
    snprintf(r->from, sizeof r->from, "%s", from && *from ? from : week_ago);
    if (to && strlen(to) > 10) r->to[0] = 'x'; /* too long to be a date: refused as one */
    if (from && strlen(from) > 10) r->from[0] = 'x';
    const char *channel = evhttp_find_header(&params, "channel"), *locale = evhttp_find_header(&params, "locale");
    r->channel = channel && *channel ? pl_strdup(channel) : NULL;
    r->locale = locale && *locale ? pl_strdup(locale) : NULL;
    evhttp_clear_headers(&params);
}

/* --- GET /v1/bots/{bot}/analytics ------------------------------------------------------------- */

typedef struct {
    pl_analytics_query q;
    range r;
    char *bot, *zone;
    json_t *figures;
    int bad_request;
    char *err;
} figures_read;

static void read_figures(pl_store *store, void *ud) {
    figures_read *f = ud;
    pl_analytics_figures(store, &f->q, &f->figures, &f->bad_request, &f->err);
}

static void answer_figures(struct evhttp_request *req, void *ud) {
    figures_read *f = ud;
    read_ended(f->bot);
    if (req && f->figures) pl_reply_json(req, 200, json_incref(f->figures));
    else if (req && f->bad_request) pl_reply_error(req, 400, "%s", f->err ? f->err : "bad range");
    else if (req) pl_reply_error(req, 503, "the analytics could not be read: %s", f->err ? f->err : "?");
    json_decref(f->figures);
    free(f->err);
    free(f->r.channel);
    free(f->r.locale);
    free(f->bot);
    free(f->zone);
    free(f);
}

static void figures(pl_app *app, struct evhttp_request *req, pl_bot *bot) {
    if (!read_may_start(req, pl_bot_name(bot))) return;
    figures_read *f = calloc(1, sizeof *f);
    if (!f) abort();
    read_range(req, bot, &f->r);
    f->bot = pl_strdup(pl_bot_name(bot));
    f->zone = pl_strdup(pl_bot_time_zone(bot));
    f->q = (pl_analytics_query){.bot = f->bot, .time_zone = f->zone, .from = f->r.from, .to = f->r.to,
                                .channel = f->r.channel, .locale = f->r.locale, .quiet_ms = pl_bot_quiet_ms(bot),
                                .now_ms = pl_now_ms()};
    pl_reply_after_long_read(req, pl_app_store(app), read_figures, answer_figures, f);
}

/* --- GET /v1/bots/{bot}/analytics/events ---------------------------------------------------- */

typedef struct {
    pl_store_events_query q;
    range r;
    pl_calendar_days days;
    char *bot, *zone;
    int csv;
    json_t *rows;
    int bad_request;
    char *err;
} events_read;

static void read_events(pl_store *store, void *ud) {
    events_read *e = ud;
    if (pl_calendar_days_of(e->zone, e->r.from, e->r.to, PL_ANALYTICS_MAX_DAYS, &e->days, &e->err) != PL_OK) {
        e->bad_request = 1;
        return;
    }
    e->q.from_ms = e->days.starts[0];
    e->q.to_ms = e->days.starts[e->days.n];
    pl_store_events_read(store, &e->q, &e->rows, &e->err);
}

/* A CSV field (RFC 4180): quoted when it holds a quote, comma or line
 * break; a field a spreadsheet would take for a formula (= + - @ first) is
 * kept as text with a leading apostrophe. */
static void csv_field(struct evbuffer *out, const char *v, int last) {
    if (!v) v = "";
    int formula = strchr("=+-@\t\r", v[0]) != NULL && v[0];
    if (formula || strpbrk(v, "\",\r\n")) {
        evbuffer_add(out, "\"", 1);
        if (formula) evbuffer_add(out, "'", 1);
        for (const char *p = v; *p; p++) {
            if (*p == '"') evbuffer_add(out, "\"\"", 2);
            else evbuffer_add(out, p, 1);
        }
        evbuffer_add(out, "\"", 1);
    } else {
        evbuffer_add(out, v, strlen(v));
    }
    evbuffer_add(out, last ? "\r\n" : ",", last ? 2 : 1);
}

static void write_event(events_read *e, struct evbuffer *out, const json_t *row, const json_t *event) {
    char at[32], day[11] = "";
    int64_t ms = json_integer_value(json_object_get(row, "at"));
    pl_format_time(ms, at, sizeof at);
    size_t d = pl_calendar_day_index(&e->days, ms);
    if (d < e->days.n) memcpy(day, e->days.names[d], sizeof day);
    const json_t *props = json_object_get(event, "props");
    if (!e->csv) {
        json_t *line = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "at", at, "day", day, "channel",
                                 json_object_get(row, "channel"), "user", json_object_get(row, "user"), "conversation",
                                 json_object_get(row, "conv"), "locale", json_object_get(row, "locale"), "step",
                                 json_object_get(row, "step"), "event", json_object_get(event, "name"), "props",
                                 props ? (json_t *)props : json_null());
        char *text = json_dumps(line, JSON_COMPACT);
        evbuffer_add_printf(out, "%s\n", text);
        free(text);
        json_decref(line);
        return;
    }
    char conv[24];
    snprintf(conv, sizeof conv, "%lld", (long long)json_integer_value(json_object_get(row, "conv")));
    char *props_text = props ? json_dumps(props, JSON_COMPACT) : NULL;
    csv_field(out, at, 0);
    csv_field(out, day, 0);
    csv_field(out, json_string_value(json_object_get(row, "channel")), 0);
    csv_field(out, json_string_value(json_object_get(row, "user")), 0);
    csv_field(out, conv, 0);
    csv_field(out, json_string_value(json_object_get(row, "locale")), 0);
    csv_field(out, json_string_value(json_object_get(row, "step")), 0);
    csv_field(out, json_string_value(json_object_get(event, "name")), 0);
    csv_field(out, props_text, 1);
    free(props_text);
}

static void answer_events(struct evhttp_request *req, void *ud) {
    events_read *e = ud;
    read_ended(e->bot);
    if (req && e->bad_request) {
        pl_reply_error(req, 400, "%s", e->err ? e->err : "bad range");
    } else if (req && !e->rows) {
        pl_reply_error(req, 503, "the events could not be read: %s", e->err ? e->err : "?");
    } else if (req) {
        struct evbuffer *out = evbuffer_new();
        if (e->csv) evbuffer_add_printf(out, "at,day,channel,user,conversation,locale,step,event,props\r\n");
        size_t i, n = json_array_size(e->rows);
        json_t *row;
        json_array_foreach(e->rows, i, row) {
            json_t *list = pl_analytics_row_events(json_string_value(json_object_get(row, "names")),
                                                   json_string_value(json_object_get(row, "list")),
                                                   json_string_value(json_object_get(row, "step")));
            size_t j;
            json_t *event;
            json_array_foreach(list, j, event) write_event(e, out, row, event);
            json_decref(list);
        }
        struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
        evhttp_add_header(headers, "Content-Type", e->csv ? "text/csv; charset=utf-8" : "application/x-ndjson");
        if (n == (size_t)e->q.limit) {
            /* a full page: the next one starts after its last row */
            json_t *last = json_array_get(e->rows, n - 1);
            char cursor[48];
            snprintf(cursor, sizeof cursor, "%lld.%lld", (long long)json_integer_value(json_object_get(last, "at")),
                     (long long)json_integer_value(json_object_get(last, "id")));
            evhttp_add_header(headers, "X-Next-Cursor", cursor);
        }
        pl_reply_send(req, 200, "OK", out);
        evbuffer_free(out);
    }
    json_decref(e->rows);
    free(e->err);
    free(e->r.channel);
    free(e->r.locale);
    free(e->bot);
    free(e->zone);
    pl_calendar_days_free(&e->days);
    free(e);
}

/* ?cursor=AT.ID (X-Next-Cursor of the page before) and ?limit= (rows). */
static int read_page(struct evhttp_request *req, events_read *e, char **why) {
    struct evkeyvalq params;
    pl_request_query(req, &params);
    const char *format = evhttp_find_header(&params, "format");
    const char *cursor = evhttp_find_header(&params, "cursor");
    const char *limit = evhttp_find_header(&params, "limit");
    int ok = 1;
    e->csv = format && strcmp(format, "csv") == 0;
    if (format && !e->csv && strcmp(format, "ndjson") != 0) ok = !(*why = pl_strdup("format is csv or ndjson"));
    e->q.after_at = INT64_MIN;
    if (ok && cursor) {
        long long at = 0, id = 0;
        int used = 0;
        if (sscanf(cursor, "%lld.%lld%n", &at, &id, &used) != 2 || cursor[used])
            ok = !(*why = pl_strdup("cursor is the X-Next-Cursor of the page before"));
        e->q.after_at = at;
        e->q.after_id = id;
    }
    e->q.limit = EXPORT_ROWS;
    if (ok && limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (*end || n < 1 || n > EXPORT_MAX_ROWS) ok = !(*why = pl_strdupf("limit is 1 to %d rows", EXPORT_MAX_ROWS));
        e->q.limit = (int)n;
    }
    evhttp_clear_headers(&params);
    return ok;
}

static void events(pl_app *app, struct evhttp_request *req, pl_bot *bot) {
    events_read *e = calloc(1, sizeof *e);
    if (!e) abort();
    char *why = NULL;
    if (!read_page(req, e, &why)) {
        pl_reply_error(req, 400, "%s", why);
        free(why);
        free(e);
        return;
    }
    if (!read_may_start(req, pl_bot_name(bot))) {
        free(e);
        return;
    }
    read_range(req, bot, &e->r);
    e->bot = pl_strdup(pl_bot_name(bot));
    e->zone = pl_strdup(pl_bot_time_zone(bot));
    e->q.bot = e->bot;
    e->q.channel = e->r.channel;
    e->q.locale = e->r.locale;
    pl_reply_after_long_read(req, pl_app_store(app), read_events, answer_events, e);
}

/* --- routing ------------------------------------------------------------------------------------ */

int pl_analytics_route(pl_app *app, struct evhttp_request *req, char **seg, int n) {
    if (n == 1 && strcmp(seg[0], "analytics") == 0) { /* the page asks for its token itself */
        pl_asset_reply_page(req, "analytics.html", "the analytics dashboard");
        return 1;
    }
    int listing = n == 3 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "analytics") == 0 &&
                  strcmp(seg[2], "bots") == 0;
    int of_bot = (n == 4 || n == 5) && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "bots") == 0 &&
                 strcmp(seg[3], "analytics") == 0 && (n == 4 || strcmp(seg[4], "events") == 0);
    if (!listing && !of_bot) return 0;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        pl_reply_405(req, "GET");
        return 1;
    }
    const char *scope = NULL;
    if (!pl_access_allowed(app, &analytics_access, req, &scope)) return 1;
    if (listing) {
        list_bots(app, req, scope);
        return 1;
    }
    pl_bot *bot = pl_app_find_bot(app, seg[2]);
    if (!bot) pl_reply_error(req, 404, "no bot named '%s' is served here", seg[2]);
    else if (!pl_access_in_scope(scope, seg[2])) pl_reply_error(req, 403, "this analytics token is for bot '%s' only", scope);
    else if (n == 4) figures(app, req, bot);
    else events(app, req, bot);
    return 1;
}
