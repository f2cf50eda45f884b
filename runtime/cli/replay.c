/* replay: `parley replay` — reads recorded conversations (a database's
 * transcripts, replay files), re-runs them in the spec runtime through
 * parley.replay (runtime/lua/parley/replay.lua), prints where the bot now
 * answers differently, and writes replay files (--export, --accept). See
 * replay.h; the format and the decisions are in docs/authoring.md. */
#define _GNU_SOURCE
#include "replay.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "cli.h"
#include "sandbox/json_lua.h"
#include "spec.h"

#define FORMAT "replay/1"
#define DEFAULT_LIMIT 100
#define PAGE 1000

static const char replay_usage[] =
    "usage: parley replay [BOT_DIR] --from DB|FILE|DIR [options]\n"
    "\n"
    "Re-runs recorded conversations against the bot's scripts as they are now (in\n"
    "the spec runtime: an in-memory store, parley's clock moved to each recorded\n"
    "turn) and shows, per turn, where the bot answers differently: text, choices,\n"
    "cards, the link, step. Exits 1 when any turn differs, 0 when none does.\n"
    "\n"
    "  --from SOURCE         a database (an SQLite file or a postgres:// URL), a\n"
    "                        replay file, or a folder of replay files\n"
    "  --bot NAME            the bot whose conversations to read from a database\n"
    "                        (default: BOT_DIR's own name)\n"
    "  --conversation CHANNEL:USER   only this conversation (as the report names it)\n"
    "  --channel CHANNEL     only conversations on this channel\n"
    "  --user ID             only this shopper's conversations\n"
    "  --limit N             at most N conversations from a database (default 100)\n"
    "  --export DIR|FILE     write the recorded conversations as replay files (a\n"
    "                        FILE ending in .json takes one) and replay nothing\n"
    "  --accept              keep the bot's answers of now as the expected replies:\n"
    "                        writes BOT_DIR/spec/replays/NAME.json, which `parley\n"
    "                        test` checks from then on\n";

typedef struct {
    const char *from;
    const char *bot;
    const char *channel;
    const char *user;
    const char *export_to;
    int limit;
    int accept;
} replay_opts;

/* One recorded conversation: its name in reports and file names
 * ("channel:user" or the file's name), the document, and the file it was
 * read from (NULL for a database). */
typedef struct {
    char *name;
    char *path;
    json_t *doc;
} recording;

typedef struct {
    recording *items;
    size_t count, room;
} recordings;

static void add_recording(recordings *r, char *name, char *path, json_t *doc) {
    if (r->count == r->room) {
        r->room = r->room ? r->room * 2 : 8;
        r->items = realloc(r->items, r->room * sizeof *r->items);
    }
    r->items[r->count++] = (recording){name, path, doc};
}

static void free_recordings(recordings *r) {
    for (size_t i = 0; i < r->count; i++) {
        free(r->items[i].name);
        free(r->items[i].path);
        json_decref(r->items[i].doc);
    }
    free(r->items);
}

/* --- from a database -------------------------------------------------------------- */

/* The steps the analytics recorded for the conversation's turns: a new
 * object from the id of a turn's "in" line to "flow.step" ("" once no flow
 * is open); turns that did not move the conversation are not in it. Reads
 * this shopper's events only (the store reads them by conversation). */
static json_t *steps_of(pl_store *store, const char *bot, const char *channel, const char *user, int64_t from_ms,
                        int64_t to_ms, char **err) {
    json_t *steps = json_object();
    pl_store_events_query q = {.bot = bot, .from_ms = from_ms, .to_ms = to_ms + 1, .channel = channel,
                               .user = user, .after_at = INT64_MIN, .limit = PAGE};
    for (;;) {
        json_t *rows = NULL;
        if (pl_store_events_read(store, &q, &rows, err) != PL_OK) {
            json_decref(steps);
            return NULL;
        }
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            const json_t *step = json_object_get(row, "step");
            if (!json_is_string(step)) continue;
            char *id = pl_strdupf("%lld", (long long)json_integer_value(json_object_get(row, "id")));
            json_object_set(steps, id, (json_t *)step);
            free(id);
        }
        size_t n = json_array_size(rows);
        if (n > 0) {
            q.after_at = json_integer_value(json_object_get(json_array_get(rows, n - 1), "at"));
            q.after_id = json_integer_value(json_object_get(json_array_get(rows, n - 1), "id"));
        }
        json_decref(rows);
        if (n < PAGE) return steps;
    }
}

/* A message as a replay sends it: its text, payload, locale, channel info
 * or event (new). An order an event names keeps its number and tracking
 * URL only: the replay pays or updates its own order, and a file in
 * spec/replays/ need not hold the order's lines or payment link. */
static json_t *send_of(const json_t *message) {
    static const char *const keys[] = {"text", "payload", "locale", "info", "event"};
    json_t *send = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        json_t *v = json_object_get(message, keys[i]);
        if (v && !json_is_null(v)) json_object_set_new(send, keys[i], json_deep_copy(v));
    }
    json_t *event = json_object_get(send, "event");
    const json_t *order = json_object_get(event, "order");
    if (json_is_object(order)) {
        json_t *kept = json_pack("{s:O}", "id", json_object_get(order, "id"));
        const json_t *tracking = json_object_get(order, "tracking_url");
        if (json_is_string(tracking)) json_object_set(kept, "tracking_url", (json_t *)tracking);
        json_object_set_new(event, "order", kept);
    }
    return send;
}

/* Adds the turns of lines (a page of the transcript) to turns: an "in"
 * line and the "out" line after it; *step carries the last step known. */
static void add_turns(json_t *turns, const json_t *lines, const json_t *steps, json_t **step) {
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        if (strcmp(json_string_value(json_object_get(line, "direction")), "in") != 0) continue;
        json_t *out = json_array_get(lines, i + 1);
        if (!out || strcmp(json_string_value(json_object_get(out, "direction")), "out") != 0) continue;
        char *id = pl_strdupf("%lld", (long long)json_integer_value(json_object_get(line, "id")));
        json_t *moved = json_object_get(steps, id);
        free(id);
        if (moved) *step = moved;
        json_t *turn = json_pack("{s:O, s:o}", "at", json_object_get(line, "at"), "send",
                                 send_of(json_object_get(line, "body")));
        if (*step) json_object_set(turn, "step", *step);
        json_object_set(turn, "replies", json_object_get(out, "body"));
        json_array_append_new(turns, turn);
    }
}

/* The numbers of the conversation's orders, oldest first (new array), or
 * NULL with *err; *urls (new) their payment links. */
static json_t *order_ids(pl_store *store, const char *bot, const char *channel, const char *user, json_t **urls,
                         char **err) {
    json_t *orders = NULL;
    *urls = NULL;
    if (pl_store_orders_of(store, bot, channel, user, 10000, &orders, err) != PL_OK) return NULL;
    json_t *ids = json_array();
    *urls = json_array();
    for (size_t i = json_array_size(orders); i-- > 0;) {
        const json_t *order = json_array_get(orders, i);
        json_array_append(ids, json_object_get(order, "id"));
        if (json_is_string(json_object_get(order, "payment_url")))
            json_array_append(*urls, json_object_get(order, "payment_url"));
    }
    json_decref(orders);
    return ids;
}

/* Whether url pays an order: one of the conversation's payment links
 * (urls), or the test provider's (".../payments/test/ID?token=T"; an
 * erased shopper's orders keep no link). */
static int is_payment_url(const char *url, const json_t *urls) {
    size_t i;
    const json_t *u;
    json_array_foreach(urls, i, u) if (strcmp(json_string_value(u), url) == 0) return 1;
    return strstr(url, "/payments/test/") != NULL;
}

/* A payment link's URL names one run's order and its token: the turns keep
 * such a link by its title only (other links keep their URL, which a
 * replay compares). */
static void drop_payment_urls(json_t *turns, const json_t *urls) {
    size_t i, j;
    json_t *turn, *reply;
    json_array_foreach(turns, i, turn) {
        json_array_foreach(json_object_get(turn, "replies"), j, reply) {
            json_t *link = json_object_get(reply, "link");
            const char *url = json_string_value(json_object_get(link, "url"));
            if (url && is_payment_url(url, urls)) json_object_del(link, "url");
        }
    }
}

json_t *pl_replay_doc_from_store(pl_store *store, const char *bot, const char *channel, const char *user,
                                 const char *source, char **err) {
    pl_session_key key = {bot, channel, user};
    json_t *convs = NULL;
    if (pl_store_conversations(store, bot, channel, user, 1, &convs, err) != PL_OK) return NULL;
    const json_t *conv = json_array_get(convs, 0);
    json_t *steps = conv ? steps_of(store, bot, channel, user, json_integer_value(json_object_get(conv, "first_at")),
                                    json_integer_value(json_object_get(conv, "last_at")), err)
                         : json_object();
    json_decref(convs);
    if (!steps) return NULL;
    json_t *turns = json_array(), *step = NULL, *lines = NULL;
    int64_t after = 0;
    for (;;) {
        /* a page ends where a turn may be cut in two: the next page starts
         * at its "in" line again */
        if (pl_store_transcript_since(store, &key, after, PAGE, &lines, err) != PL_OK) {
            json_decref(turns);
            json_decref(steps);
            return NULL;
        }
        size_t n = json_array_size(lines);
        add_turns(turns, lines, steps, &step);
        if (n < PAGE) break;
        json_t *last = json_array_get(lines, n - 1);
        after = json_integer_value(json_object_get(last, "id"));
        if (strcmp(json_string_value(json_object_get(last, "direction")), "in") == 0) after--;
        json_decref(lines);
    }
    json_decref(lines);
    json_decref(steps);
    json_t *urls = NULL;
    json_t *orders = order_ids(store, bot, channel, user, &urls, err);
    if (!orders) {
        json_decref(turns);
        return NULL;
    }
    drop_payment_urls(turns, urls);
    json_decref(urls);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "parley", FORMAT, "bot", bot, "channel", channel, "user",
                     user, "source", source, "orders", orders, "turns", turns);
}

/* The database is read as it is: read-only, never created nor migrated (a
 * production database stays at its schema; an unknown or other version is
 * refused with the reason). */
static int read_database(const replay_opts *o, const char *bot, recordings *out, char **err) {
    pl_store *store = NULL;
    if (pl_store_open_existing(o->from, &store, err) != PL_OK) return PL_ERR;
    json_t *convs = NULL;
    int rc = pl_store_conversations(store, bot, o->channel, o->user, o->limit, &convs, err);
    size_t i;
    json_t *conv;
    const char *source = pl_store_is_postgres(o->from) ? "postgresql" : o->from;
    json_array_foreach(rc == PL_OK ? convs : NULL, i, conv) {
        const char *channel = json_string_value(json_object_get(conv, "channel"));
        const char *user = json_string_value(json_object_get(conv, "user"));
        json_t *doc = pl_replay_doc_from_store(store, bot, channel, user, source, err);
        if (!doc) {
            rc = PL_ERR;
            break;
        }
        add_recording(out, pl_strdupf("%s:%s", channel, user), NULL, doc);
    }
    json_decref(convs);
    pl_store_close(store);
    return rc;
}

/* --- from files ----------------------------------------------------------------- */

static int read_file(const char *path, recordings *out, char **err) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        *err = pl_strdupf("%s:%d: %s", path, jerr.line, jerr.text);
        return PL_ERR;
    }
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "parley")) ||
        strcmp(json_string_value(json_object_get(doc, "parley")), FORMAT) != 0 ||
        !json_is_string(json_object_get(doc, "channel")) || !json_is_string(json_object_get(doc, "user")) ||
        !json_is_array(json_object_get(doc, "turns"))) {
        json_decref(doc);
        *err = pl_strdupf("%s: not a replay file (it needs \"parley\": \"" FORMAT "\", channel, user and turns)",
                          path);
        return PL_ERR;
    }
    const char *base = strrchr(path, '/');
    add_recording(out, pl_strdup(base ? base + 1 : path), pl_strdup(path), doc);
    return PL_OK;
}

static int ends_with(const char *s, const char *end) {
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

static int only_json(const struct dirent *e) { return e->d_name[0] != '.' && ends_with(e->d_name, ".json"); }

static int read_folder(const char *dir, recordings *out, char **err) {
    struct dirent **names = NULL;
    int n = scandir(dir, &names, only_json, by_name);
    if (n < 0) {
        *err = pl_strdupf("%s: %s", dir, strerror(errno));
        return PL_ERR;
    }
    int rc = PL_OK;
    for (int i = 0; i < n; i++) {
        char *path = pl_strdupf("%s/%s", dir, names[i]->d_name);
        if (rc == PL_OK) rc = read_file(path, out, err);
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* A file that starts with '{' is a replay file; any other file a database. */
static int is_replay_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int c;
    while ((c = fgetc(f)) != EOF && isspace(c)) {
    }
    fclose(f);
    return c == '{';
}

/* Keeps the recordings that --conversation, --channel and --user name
 * (a database was already asked for those only). */
static void keep_matching(recordings *r, const replay_opts *o, const char *conversation) {
    size_t kept = 0;
    for (size_t i = 0; i < r->count; i++) {
        recording *rec = &r->items[i];
        const char *channel = json_string_value(json_object_get(rec->doc, "channel"));
        const char *user = json_string_value(json_object_get(rec->doc, "user"));
        char *name = pl_strdupf("%s:%s", channel, user);
        int keep = (!o->channel || strcmp(o->channel, channel) == 0) && (!o->user || strcmp(o->user, user) == 0) &&
                   (!conversation || strcmp(conversation, name) == 0) && (int)kept < o->limit;
        free(name);
        if (keep) r->items[kept++] = *rec;
        else {
            free(rec->name);
            free(rec->path);
            json_decref(rec->doc);
        }
    }
    r->count = kept;
}

/* --- writing files ---------------------------------------------------------------- */

/* The order keys are written in; others follow, sorted. */
static const char *const key_order[] = {"parley", "bot",   "channel", "user",    "source",  "orders", "turns", "at",
                                        "send",   "step",  "replies", "sku",     "title",   "subtitle", "text",
                                        "payload", "locale", "info",  "event",   "choices", "cards", "link",
                                        "image",  "agent", "price",   "amount",  "currency", "url"};

static json_t *canonical(const json_t *v);

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static json_t *canonical_object(const json_t *v) {
    json_t *out = json_object();
    size_t nkeys = sizeof key_order / sizeof *key_order;
    for (size_t k = 0; k < nkeys; k++) {
        const json_t *x = json_object_get(v, key_order[k]);
        if (x) json_object_set_new(out, key_order[k], canonical(x));
    }
    size_t n = json_object_size(v), m = 0;
    const char **rest = malloc((n + 1) * sizeof *rest);
    const char *key;
    json_t *x;
    json_object_foreach((json_t *)v, key, x) {
        if (!json_object_get(out, key)) rest[m++] = key;
    }
    qsort(rest, m, sizeof *rest, cmp_str);
    for (size_t i = 0; i < m; i++) json_object_set_new(out, rest[i], canonical(json_object_get(v, rest[i])));
    free(rest);
    return out;
}

/* A new copy of v whose objects have their keys in key_order. */
static json_t *canonical(const json_t *v) {
    if (json_is_object(v)) return canonical_object(v);
    if (!json_is_array(v)) return json_deep_copy(v);
    json_t *out = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) json_array_append_new(out, canonical(x));
    return out;
}

static void copy_keys(json_t *dst, const json_t *src, const char *const *keys, size_t n) {
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(src, keys[i]);
        if (v && !json_is_null(v)) json_object_set(dst, keys[i], v);
    }
}

/* A reply as a replay keeps it (new): what parley.replay compares. A
 * link keeps its title and URL (a payment link came without its URL). */
/* out[name] = reply[name]'s items with only their keys, when it has any. */
static void copy_list(json_t *out, const json_t *reply, const char *name, const char *const *keys, size_t nkeys) {
    const json_t *items = json_object_get(reply, name);
    if (json_array_size(items) == 0) return;
    json_t *kept = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(items, i, x) {
        json_t *item = json_object();
        copy_keys(item, x, keys, nkeys);
        json_array_append_new(kept, item);
    }
    json_object_set_new(out, name, kept);
}

static json_t *kept_reply(const json_t *reply) {
    static const char *const top[] = {"text", "image", "agent"};
    static const char *const choice_keys[] = {"title", "payload"};
    static const char *const card_keys[] = {"sku", "title", "subtitle", "image", "payload", "price"};
    json_t *out = json_object();
    copy_keys(out, reply, top, 3);
    copy_list(out, reply, "choices", choice_keys, 2);
    copy_list(out, reply, "cards", card_keys, 6);
    const json_t *link = json_object_get(reply, "link");
    if (json_is_object(link)) {
        json_t *kept = json_pack("{s:O}", "title", json_object_get(link, "title"));
        if (json_is_string(json_object_get(link, "url"))) json_object_set(kept, "url", json_object_get(link, "url"));
        json_object_set_new(out, "link", kept);
    }
    return out;
}

int pl_replay_write(const json_t *doc, const char *path, char **err) {
    json_t *copy = json_deep_copy(doc);
    size_t i, j;
    json_t *turn, *reply;
    json_array_foreach(json_object_get(copy, "turns"), i, turn) {
        json_t *kept = json_array();
        json_array_foreach(json_object_get(turn, "replies"), j, reply) json_array_append_new(kept, kept_reply(reply));
        json_object_set_new(turn, "replies", kept);
    }
    json_t *out = canonical(copy);
    json_decref(copy);
    char *text = json_dumps(out, JSON_INDENT(2));
    json_decref(out);
    /* written beside it, then renamed: the file is the old one or the new */
    char *temp = pl_strdupf("%s.%ld.tmp", path, (long)getpid());
    FILE *f = text ? fopen(temp, "w") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(temp, path) != 0) ok = 0;
    free(text);
    if (!ok) {
        *err = pl_strdupf("%s: %s", path, strerror(errno));
        if (f) unlink(temp);
    }
    free(temp);
    return ok ? PL_OK : PL_ERR;
}

/* How long a file name made of a conversation's name may be, ".json"
 * and the hash aside (a file system's names end at 255 bytes). */
#define NAME_ROOM 100

/* FNV-1a of s: the short hash that tells two names apart. */
static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* "rest:u-1" -> "rest-u-1.json" (new). When the name had to change more
 * than its first ':' (what is not a letter, digit, '-', '_' or '.' becomes
 * '_': "rest:a/b" and "rest:a_b" would meet) or is long, it is cut to
 * NAME_ROOM and a hash of the whole name follows ("rest-a_b-3f2a9c01.json"),
 * so that two conversations never share a file. A file's own name stays. */
static char *file_name(const recording *rec) {
    if (rec->path) return pl_strdup(rec->name);
    char *name = pl_strdup(rec->name);
    int changed = 0, colon = 0;
    for (char *p = name; *p; p++) {
        if (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.') continue;
        if (*p == ':' && !colon++) *p = '-';
        else {
            *p = '_';
            changed = 1;
        }
    }
    if (name[0] == '.') changed = 1, name[0] = '_';
    if (!changed && strlen(name) <= NAME_ROOM) {
        char *file = pl_strdupf("%s.json", name);
        free(name);
        return file;
    }
    if (strlen(name) > NAME_ROOM) name[NAME_ROOM] = '\0';
    char *file = pl_strdupf("%s-%08x.json", name, (unsigned)name_hash(rec->name));
    free(name);
    return file;
}

static int make_dir(const char *dir, char **err) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) return PL_OK;
    *err = pl_strdupf("%s: %s", dir, strerror(errno));
    return PL_ERR;
}

static int export_all(const recordings *r, const char *to, char **err) {
    if (ends_with(to, ".json")) {
        if (r->count != 1) {
            *err = pl_strdupf("--export %s: %zu conversations, and a .json file takes one (give a folder)", to,
                              r->count);
            return PL_ERR;
        }
        if (pl_replay_write(r->items[0].doc, to, err) != PL_OK) return PL_ERR;
        printf("exported %s to %s\n", r->items[0].name, to);
        return PL_OK;
    }
    if (make_dir(to, err) != PL_OK) return PL_ERR;
    for (size_t i = 0; i < r->count; i++) {
        char *name = file_name(&r->items[i]);
        char *path = pl_strdupf("%s/%s", to, name);
        int rc = pl_replay_write(r->items[i].doc, path, err);
        if (rc == PL_OK) printf("exported %s to %s\n", r->items[i].name, path);
        free(name);
        free(path);
        if (rc != PL_OK) return PL_ERR;
    }
    return PL_OK;
}

/* --- replaying ---------------------------------------------------------------------- */

/* Runs one recording through parley.replay on a fresh bot (a new store,
 * the catalog's stock: what `parley test` gives each replay file): prints
 * its report; returns the number of turns that differ (-1: the replay
 * failed), and *now the document with the bot's answers of now (new). */
static const char driver[] =
    "local replay, doc, name = require 'parley.replay', ...\n"
    "require('parley.testing.native').reset()\n"
    "local result = replay.run(doc)\n"
    "return result.differing, table.concat(replay.report(name, result), '\\n'), result.doc\n";

static int replay_one(lua_State *L, const recording *rec, json_t **now) {
    *now = NULL;
    if (luaL_loadbuffer(L, driver, sizeof driver - 1, "=(parley replay)") != LUA_OK) return -1;
    pl_json_push(L, rec->doc);
    lua_pushstring(L, rec->name);
    if (lua_pcall(L, 2, 3, 0) != LUA_OK) {
        printf("%s: could not be replayed: %s\n", rec->name, lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    int differing = (int)lua_tointeger(L, -3);
    printf("%s\n", lua_tostring(L, -2));
    char *err = NULL;
    *now = pl_json_from_lua(L, -1, "replay", &err);
    if (!*now) {
        printf("%s: %s\n", rec->name, err);
        free(err);
    }
    lua_pop(L, 3);
    return differing;
}

/* Writes now as BOT_DIR/spec/replays/NAME.json (the file itself when it was
 * read from there). */
static int accept_one(const char *bot_dir, const recording *rec, const json_t *now, char **err) {
    char *spec = pl_strdupf("%s/spec", bot_dir);
    char *dir = pl_strdupf("%s/spec/replays", bot_dir);
    int rc = make_dir(spec, err) == PL_OK && make_dir(dir, err) == PL_OK ? PL_OK : PL_ERR;
    char *name = file_name(rec);
    char *path = pl_strdupf("%s/%s", dir, name);
    if (rc == PL_OK) rc = pl_replay_write(now, path, err);
    if (rc == PL_OK) printf("accepted: %s\n", path);
    free(name);
    free(path);
    free(dir);
    free(spec);
    return rc;
}

static int replay_all(const char *bot_dir, pl_spec *spec, const recordings *r, int accept) {
    lua_State *L = pl_spec_state(spec);
    int differing = 0, failed = 0, turns = 0;
    for (size_t i = 0; i < r->count; i++) {
        json_t *now = NULL;
        int n = replay_one(L, &r->items[i], &now);
        turns += (int)json_array_size(json_object_get(r->items[i].doc, "turns"));
        if (n < 0 || !now) failed++;
        else if (n > 0) differing++;
        if (accept && now && n >= 0) {
            char *err = NULL;
            if (accept_one(bot_dir, &r->items[i], now, &err) != PL_OK) {
                fprintf(stderr, "parley replay: %s\n", err);
                free(err);
                failed++;
            }
        }
        json_decref(now);
    }
    lua_close(L);
    printf("%zu conversation%s, %d turn%s: %d differ%s%s\n", r->count, r->count == 1 ? "" : "s", turns,
           turns == 1 ? "" : "s", differing, differing == 1 ? "s" : "", failed ? ", some could not be replayed" : "");
    if (failed) return 1;
    return differing && !accept ? 1 : 0;
}

/* --- the command ------------------------------------------------------------------- */

static int read_source(const replay_opts *o, const char *bot, const char *conversation, recordings *r, char **err) {
    struct stat st;
    int is_file = !pl_store_is_postgres(o->from) && stat(o->from, &st) == 0;
    int rc;
    if (is_file && S_ISDIR(st.st_mode)) rc = read_folder(o->from, r, err);
    else if (is_file && is_replay_file(o->from)) rc = read_file(o->from, r, err);
    else if (!is_file && !pl_store_is_postgres(o->from)) {
        *err = pl_strdupf("--from %s: no such file or folder", o->from);
        rc = PL_ERR;
    } else {
        replay_opts db = *o;
        char *channel = NULL;
        if (conversation) { /* CHANNEL:USER */
            const char *colon = strchr(conversation, ':');
            channel = pl_strndup(conversation, colon ? (size_t)(colon - conversation) : strlen(conversation));
            db.channel = channel;
            db.user = colon ? colon + 1 : NULL;
        }
        rc = read_database(&db, bot, r, err);
        free(channel);
    }
    if (rc == PL_OK) keep_matching(r, o, conversation);
    return rc;
}

static int run_replay(const char *dir, const replay_opts *o, const char *conversation) {
    pl_spec *spec = NULL;
    char *err = NULL;
    if (pl_spec_open(dir, 0, &spec, &err) != PL_OK) {
        fprintf(stderr, "parley replay: %s\n", err);
        free(err);
        return 1;
    }
    pl_bot *bot = pl_app_bot(pl_spec_app(spec), 0);
    if (pl_bot_error(bot)) fprintf(stderr, "parley replay: the scripts did not load: %s\n", pl_bot_error(bot));
    recordings r = {0};
    int rc = 1;
    if (read_source(o, o->bot ? o->bot : pl_bot_name(bot), conversation, &r, &err) != PL_OK) {
        fprintf(stderr, "parley replay: %s\n", err);
        free(err);
    } else if (r.count == 0) {
        fprintf(stderr, "parley replay: no recorded conversation of '%s' in %s%s\n",
                o->bot ? o->bot : pl_bot_name(bot), o->from,
                o->bot ? "" : " (another bot's? pick it with --bot NAME)");
    } else if (o->export_to) {
        rc = export_all(&r, o->export_to, &err) == PL_OK ? 0 : 1;
        if (rc) {
            fprintf(stderr, "parley replay: %s\n", err);
            free(err);
        }
    } else {
        rc = replay_all(dir, spec, &r, o->accept);
    }
    free_recordings(&r);
    pl_spec_close(spec);
    return rc;
}

int pl_cmd_replay(int argc, char **argv) {
    static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                         {"bot", required_argument, 0, 'b'},
                                         {"conversation", required_argument, 0, 'c'},
                                         {"channel", required_argument, 0, 'C'},
                                         {"user", required_argument, 0, 'u'},
                                         {"limit", required_argument, 0, 'n'},
                                         {"export", required_argument, 0, 'e'},
                                         {"accept", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    replay_opts o = {.limit = DEFAULT_LIMIT};
    const char *conversation = NULL;
    char *end = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': o.from = optarg; break;
        case 'b': o.bot = optarg; break;
        case 'c':
            if (!strchr(optarg, ':'))
                return pl_cli_usage_error("replay", "--conversation wants CHANNEL:USER, such as rest:u-1");
            conversation = optarg;
            break;
        case 'C': o.channel = optarg; break;
        case 'u': o.user = optarg; break;
        case 'n':
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || n < 1 || n > 1000000)
                return pl_cli_usage_error("replay", "--limit wants a whole number from 1 to 1000000");
            o.limit = (int)n;
            break;
        case 'e': o.export_to = optarg; break;
        case 'a': o.accept = 1; break;
        case 'h': fputs(replay_usage, stdout); return 0;
        default: return pl_cli_usage_error("replay", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (!o.from) return pl_cli_usage_error("replay", "--from DB|FILE|DIR is needed: the recorded conversations");
    if (o.accept && o.export_to) return pl_cli_usage_error("replay", "--accept or --export, not both");
    if (argc - optind > 1) return pl_cli_usage_error("replay", "one BOT_DIR at a time");
    char *default_dir = optind < argc ? NULL : pl_cli_default_bot();
    const char *dir = optind < argc ? argv[optind] : default_dir;
    struct stat st;
    int rc;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = pl_cli_usage_error("replay", "%s: no such folder", dir ? dir : "(no bot.json here)");
    else rc = run_replay(dir, &o, conversation);
    free(default_dir);
    return rc;
}
