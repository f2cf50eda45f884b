/* understand: `parley understand` — what c:understand makes of a message,
 * for a bot's author, and the check of labelled corpora (how many
 * utterances it parses exactly as labelled, per field, and how long a call
 * takes). The bot loads in the spec runtime (spec.h), exactly as `parley
 * test` loads it; each utterance is understood in the bot's own state by a
 * made-up shopper's conversation (runtime/lua/parley/understand_cli.lua).
 * The corpus format and its conventions: tests/understand/README.md. */
#define _GNU_SOURCE
#include <getopt.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/common.h"
#include "cli.h"
#include "core/bot.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"
#include "spec.h"

#define HELPER "parley.understand_cli"
/* each call under a turn's budgets, as c:understand runs in a turn */
#define CALL_BUDGET_PERCENT 100
#define DEFAULT_BENCH_RUNS 20
#define MAX_BENCH_RUNS 100000

static const char understand_usage[] =
    "usage: parley understand [BOT_DIR] [--locale L] TEXT...\n"
    "       parley understand [BOT_DIR] --corpus FILE... [--bench[=N]] [--tap]\n"
    "\n"
    "Prints what c:understand makes of TEXT (the words joined by spaces) as a\n"
    "shopper of the bot in locale L (default: the bot's first locale) would have\n"
    "it understood: intent, items (sku, qty, options, without), without, yes,\n"
    "number, code, what was left over and the confidences, as JSON. The bot loads\n"
    "as `parley test` loads it: offline, an in-memory store. BOT_DIR is the first\n"
    "argument when it is a folder holding bot.json (default: the bot here).\n"
    "\n"
    "With --corpus, each FILE is a labelled corpus (tests/understand/README.md),\n"
    "named BOT.LOCALE.json: a list of {\"text\", \"expect\", \"note\"}. Prints the\n"
    "share of utterances parsed exactly as labelled and per field (intent, items,\n"
    "without, yes, number, code), and each miss as text / expected / got. Exits 1\n"
    "when a file's exact share is under --min-exact or a field's under --min-field.\n"
    "\n"
    "  --locale L         the shopper's locale (with --corpus: instead of FILE's)\n"
    "  --min-exact X      the least exact share a corpus file passes with (0.9)\n"
    "  --min-field X      the least share of each field (0.95)\n"
    "  --bench[=N]        also time c:understand: each utterance N times (20),\n"
    "                     the mean time per call\n"
    "  --tap              with --corpus: TAP, a line per utterance (a miss is \"ok\"\n"
    "                     while its file meets the thresholds, and says so) and\n"
    "                     one per file for its thresholds\n";

typedef struct {
    const char *locale;
    int corpus;
    int tap;
    long bench_runs; /* 0: no timing */
    double min_exact, min_field;
} understand_opts;

/* The fields compared, in the order they are reported. */
enum { F_INTENT, F_ITEMS, F_WITHOUT, F_YES, F_NUMBER, F_CODE, NFIELDS };
static const char *const field_names[NFIELDS + 1] = {"intent", "items", "without", "yes", "number", "code", "label"};
/* beside the fields' bits: the label names what the bot does not have */
#define LABEL_BIT (1u << NFIELDS)
#define ALL_FIELDS ((1u << NFIELDS) - 1)

/* --- calls into the bot's state ------------------------------------------------ */

typedef struct {
    pl_vm *vm;
    lua_State *L;
} bot_state;

/* Loads the helper module into the bot's state (package.loaded, where the
 * runtime's modules go once required). */
static int load_helper(bot_state *b, char **err) {
    lua_State *L = b->L;
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_getfield(L, -1, HELPER);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return pl_fail(err, "this build has no %s module", HELPER);
    }
    lua_pushliteral(L, HELPER);
    if (pl_vm_run(b->vm, 1, 1, CALL_BUDGET_PERCENT, err) != PL_OK) return PL_ERR;
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_insert(L, -2);
    lua_setfield(L, -2, HELPER);
    lua_pop(L, 1);
    return PL_OK;
}

static void push_helper_fn(lua_State *L, const char *fn) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, HELPER);
    lua_getfield(L, -1, fn);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* helper.fn(locale, arg) where arg is a string or JSON (or nothing when
 * both are NULL); its result as JSON (new), or NULL with *err. */
static json_t *ask(bot_state *b, const char *fn, const char *locale, const char *text, const json_t *value,
                   char **err) {
    push_helper_fn(b->L, fn);
    int nargs = 0;
    if (locale) {
        lua_pushstring(b->L, locale);
        nargs++;
        if (text) lua_pushstring(b->L, text);
        else pl_json_push(b->L, value);
        nargs++;
    }
    if (pl_vm_run(b->vm, nargs, 1, CALL_BUDGET_PERCENT, err) != PL_OK) return NULL;
    json_t *result = pl_json_from_lua(b->L, -1, fn, err);
    lua_pop(b->L, 1);
    return result;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Times runs calls of c:understand(text); the nanoseconds they took in
 * all, or -1 with *err when a call failed. */
static int64_t time_calls(bot_state *b, const char *locale, const char *text, long runs, char **err) {
    int64_t spent = 0;
    for (long i = 0; i < runs; i++) {
        push_helper_fn(b->L, "call");
        lua_pushstring(b->L, locale);
        lua_pushstring(b->L, text);
        int64_t t0 = now_ns();
        int rc = pl_vm_run(b->vm, 2, 0, CALL_BUDGET_PERCENT, err);
        spent += now_ns() - t0;
        if (rc != PL_OK) return -1;
    }
    return spent;
}

/* Whether locale is one of the bot's. */
static int bot_has_locale(const json_t *locales, const char *locale) {
    size_t i;
    json_t *l;
    json_array_foreach(locales, i, l) if (strcmp(json_string_value(l), locale) == 0) return 1;
    return 0;
}

/* --- comparing a parse with its label ------------------------------------------ */

/* 2.0 and 2 are the same number here (a Lua float from the parser). */
static json_t *whole_number(const json_t *v) {
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -1e15 && d <= 1e15 && (double)(json_int_t)d == d) return json_integer((json_int_t)d);
    }
    return json_deep_copy(v);
}

static int is_empty(const json_t *v) {
    return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}

/* An item as compared: sku, qty (a label without one means 1), options
 * and without when not empty. */
static json_t *norm_item(const json_t *item, int is_label) {
    json_t *out = json_object();
    json_t *sku = json_object_get(item, "sku"), *qty = json_object_get(item, "qty");
    json_object_set_new(out, "sku", sku ? json_deep_copy(sku) : json_null());
    if (qty) json_object_set_new(out, "qty", whole_number(qty));
    else json_object_set_new(out, "qty", is_label ? json_integer(1) : json_null());
    const char *keys[] = {"options", "without"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(item, keys[i]);
        if (!is_empty(v)) json_object_set_new(out, keys[i], json_deep_copy(v));
    }
    return out;
}

/* A field's value as compared (new), or NULL when it is absent or empty. */
static json_t *norm_field(int field, const json_t *v, int is_label) {
    if (is_empty(v)) return NULL;
    if (field == F_NUMBER) return whole_number(v);
    if (field == F_ITEMS && json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) json_array_append_new(out, norm_item(item, is_label));
        return out;
    }
    if (field == F_WITHOUT && json_is_array(v)) {
        json_t *out = json_array();
        size_t i;
        json_t *w;
        json_array_foreach(v, i, w) {
            json_t *sku = json_is_object(w) ? json_object_get(w, "sku") : w;
            json_array_append_new(out, sku ? json_deep_copy(sku) : json_null());
        }
        return out;
    }
    return json_deep_copy(v);
}

/* The compared fields of a parse or label (new object, fields in order). */
static json_t *normalize(const json_t *parse, int is_label) {
    json_t *out = json_object();
    for (int f = 0; f < NFIELDS; f++) {
        json_t *v = norm_field(f, json_object_get(parse, field_names[f]), is_label);
        if (v) json_object_set_new(out, field_names[f], v);
    }
    return out;
}

/* The fields where two normalized parses differ, as a bit mask. */
static unsigned differing(const json_t *a, const json_t *b) {
    unsigned mask = 0;
    for (int f = 0; f < NFIELDS; f++) {
        json_t *x = json_object_get(a, field_names[f]), *y = json_object_get(b, field_names[f]);
        if ((x || y) && !(x && y && json_equal(x, y))) mask |= 1u << f;
    }
    return mask;
}

/* --- a corpus file ------------------------------------------------------------- */

typedef struct {
    const char *text; /* borrowed from the file's JSON */
    json_t *expected; /* normalized */
    json_t *got;      /* normalized, with "rest" */
    unsigned diff;    /* differing fields (all when the call failed), LABEL_BIT */
    char *why;        /* the label names what the bot lacks, or the call failed (new) */
} utterance;

typedef struct {
    char *path;
    char *locale;
    json_t *doc;
    utterance *u;
    size_t n;
    size_t exact;
    size_t field_ok[NFIELDS];
    int64_t spent_ns; /* with --bench */
    long calls;
} corpus;

static const char *const label_keys[] = {"intent", "items", "without", "yes", "number", "code", "rest", NULL};
static const char *const item_keys[] = {"sku", "qty", "options", "without", NULL};

static int known_key(const char *key, const char *const *keys) {
    for (; *keys; keys++)
        if (strcmp(key, *keys) == 0) return 1;
    return 0;
}

/* What is wrong with the shape of entry i (new message), or NULL. */
static char *bad_entry(const json_t *e) {
    if (!json_is_object(e)) return pl_strdup("is not an object");
    if (!json_is_string(json_object_get(e, "text"))) return pl_strdup("has no \"text\" string");
    json_t *expect = json_object_get(e, "expect");
    if (!json_is_object(expect)) return pl_strdup("has no \"expect\" object");
    const char *key;
    json_t *v;
    json_object_foreach(expect, key, v) if (!known_key(key, label_keys)) return pl_strdupf("expects an unknown field \"%s\"", key);
    json_t *items = json_object_get(expect, "items");
    if (items && !json_is_array(items)) return pl_strdup("\"items\" is not a list");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        if (!json_is_object(item) || !json_is_string(json_object_get(item, "sku")))
            return pl_strdupf("items[%zu] has no \"sku\"", i + 1);
        json_object_foreach(item, key, v) if (!known_key(key, item_keys)) return pl_strdupf("items[%zu] has an unknown field \"%s\"", i + 1, key);
        json_t *qty = json_object_get(item, "qty");
        if (qty && (!json_is_integer(qty) || json_integer_value(qty) < 1))
            return pl_strdupf("items[%zu].qty is not a whole number above 0", i + 1);
    }
    json_t *without = json_object_get(expect, "without");
    if (without && !json_is_array(without)) return pl_strdup("\"without\" is not a list of skus");
    return NULL;
}

/* BOT and LOCALE of a file named BOT.LOCALE.json; 0 when it is not so named. */
static int split_name(const char *path, char **bot, char **locale) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot1 = strchr(base, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot1 || !dot2 || dot1 == base || dot2 == dot1 + 1 || strcmp(dot2, ".json") != 0) return 0;
    *bot = pl_strndup(base, (size_t)(dot1 - base));
    *locale = pl_strndup(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    return 1;
}

/* Understands utterance e of the corpus and compares it with its label. */
static void check_utterance(bot_state *b, corpus *c, const json_t *e, utterance *u) {
    json_t *expect = json_object_get(e, "expect");
    u->text = json_string_value(json_object_get(e, "text"));
    u->expected = normalize(expect, 1);
    char *err = NULL;
    json_t *problems = ask(b, "problems", c->locale, NULL, expect, &err);
    if (problems && json_array_size(problems) > 0) {
        u->why = pl_strdup("the label names what the bot lacks:");
        size_t i;
        json_t *p;
        json_array_foreach(problems, i, p) {
            char *longer = pl_strdupf("%s%s %s", u->why, i ? ";" : "", json_string_value(p));
            free(u->why);
            u->why = longer;
        }
    } else if (!problems) {
        u->why = pl_strdupf("checking the label failed: %s", err);
    }
    json_decref(problems);
    free(err);
    err = NULL;
    json_t *parse = ask(b, "parse", c->locale, u->text, NULL, &err);
    if (!parse) {
        free(u->why);
        u->why = pl_strdupf("c:understand failed: %s", err);
        free(err);
        u->got = json_object();
        u->diff = ALL_FIELDS;
        return;
    }
    u->got = normalize(parse, 0);
    json_t *rest = json_object_get(parse, "rest");
    if (json_is_string(rest) && json_string_length(rest) > 0) json_object_set(u->got, "rest", rest);
    json_decref(parse);
    u->diff = differing(u->expected, u->got);
    if (u->why) u->diff |= LABEL_BIT;
}

/* Loads and checks one corpus file; PL_ERR with *err when it cannot be read. */
static int run_corpus(bot_state *b, const char *bot_name, const json_t *locales, const understand_opts *o, corpus *c,
                      char **err) {
    char *file_bot = NULL, *file_locale = NULL;
    int named = split_name(c->path, &file_bot, &file_locale);
    int rc = PL_ERR;
    if (!named && !o->locale) {
        pl_fail(err, "%s: name it BOT.LOCALE.json, or give --locale", c->path);
    } else if (named && strcmp(file_bot, bot_name) != 0) {
        pl_fail(err, "%s is a corpus of the bot '%s'; this bot is '%s'", c->path, file_bot, bot_name);
    } else {
        c->locale = pl_strdup(o->locale ? o->locale : file_locale);
        json_error_t jerr;
        if (!bot_has_locale(locales, c->locale)) {
            pl_fail(err, "%s: the bot has no locale '%s'", c->path, c->locale);
        } else if (!(c->doc = json_load_file(c->path, 0, &jerr))) {
            pl_fail(err, "%s:%d: %s", c->path, jerr.line, jerr.text);
        } else if (!json_is_array(c->doc)) {
            pl_fail(err, "%s: not a list of utterances", c->path);
        } else {
            rc = PL_OK;
        }
    }
    free(file_bot);
    free(file_locale);
    if (rc != PL_OK) return rc;
    c->n = json_array_size(c->doc);
    for (size_t i = 0; i < c->n; i++) {
        char *why = bad_entry(json_array_get(c->doc, i));
        if (why) {
            pl_fail(err, "%s: utterance %zu %s", c->path, i + 1, why);
            free(why);
            c->n = 0;
            return PL_ERR;
        }
    }
    c->u = calloc(c->n ? c->n : 1, sizeof *c->u);
    for (size_t i = 0; i < c->n; i++) {
        utterance *u = &c->u[i];
        check_utterance(b, c, json_array_get(c->doc, i), u);
        if (!u->diff) c->exact++;
        for (int f = 0; f < NFIELDS; f++)
            if (!(u->diff & (1u << f))) c->field_ok[f]++;
    }
    return PL_OK;
}

/* Times every utterance of c (runs calls each); PL_ERR with *err when one fails. */
static int bench_corpus(bot_state *b, corpus *c, long runs, char **err) {
    for (size_t i = 0; i < c->n; i++) {
        int64_t ns = time_calls(b, c->locale, c->u[i].text, runs, err);
        if (ns < 0) return PL_ERR;
        c->spent_ns += ns;
        c->calls += runs;
    }
    return PL_OK;
}

static double share(size_t k, size_t n) { return n ? (double)k / (double)n : 1.0; }

/* Whether the corpus meets the thresholds. */
static int passes(const corpus *c, const understand_opts *o) {
    if (share(c->exact, c->n) < o->min_exact) return 0;
    for (int f = 0; f < NFIELDS; f++)
        if (share(c->field_ok[f], c->n) < o->min_field) return 0;
    return 1;
}

static void free_corpus(corpus *c) {
    for (size_t i = 0; i < c->n && c->u; i++) {
        json_decref(c->u[i].expected);
        json_decref(c->u[i].got);
        free(c->u[i].why);
    }
    free(c->u);
    json_decref(c->doc);
    free(c->locale);
}

/* --- reports ----------------------------------------------------------------------- */

static char *dump(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER); }

/* "items, code": the names of the fields in mask. */
static void print_fields(FILE *out, unsigned mask) {
    const char *sep = "";
    for (int f = 0; f <= NFIELDS; f++) {
        if (!(mask & (1u << f))) continue;
        fprintf(out, "%s%s", sep, field_names[f]);
        sep = ", ";
    }
}

static void print_miss(FILE *out, const char *indent, size_t i, const utterance *u) {
    char *e = dump(u->expected), *g = dump(u->got);
    fprintf(out, "%smiss %zu: \"%s\" (", indent, i + 1, u->text);
    print_fields(out, u->diff);
    fprintf(out, ")\n%s  expected: %s\n%s  got:      %s\n", indent, e, indent, g);
    if (u->why) fprintf(out, "%s  %s\n", indent, u->why);
    free(e);
    free(g);
}

static void print_shares(FILE *out, const char *prefix, const size_t *ok, size_t exact, size_t n) {
    fprintf(out, "%sexact %.1f%% (%zu/%zu);", prefix, 100 * share(exact, n), exact, n);
    for (int f = 0; f < NFIELDS; f++) fprintf(out, " %s %.1f%%", field_names[f], 100 * share(ok[f], n));
}

static void print_time(FILE *out, int64_t ns, long calls) {
    if (calls) fprintf(out, "; %.1f µs per call (%ld calls)", (double)ns / (double)calls / 1000.0, calls);
}

static void report_text(const corpus *cs, size_t ncs, const understand_opts *o) {
    size_t ok[NFIELDS] = {0}, exact = 0, n = 0;
    int64_t ns = 0;
    long calls = 0;
    for (size_t k = 0; k < ncs; k++) {
        const corpus *c = &cs[k];
        printf("%s (%s, %zu utterances)%s\n", c->path, c->locale, c->n, passes(c, o) ? "" : ": UNDER THE THRESHOLDS");
        print_shares(stdout, "  ", c->field_ok, c->exact, c->n);
        print_time(stdout, c->spent_ns, c->calls);
        putchar('\n');
        for (size_t i = 0; i < c->n; i++)
            if (c->u[i].diff) print_miss(stdout, "  ", i, &c->u[i]);
        exact += c->exact;
        n += c->n;
        for (int f = 0; f < NFIELDS; f++) ok[f] += c->field_ok[f];
        ns += c->spent_ns;
        calls += c->calls;
    }
    print_shares(stdout, "total: ", ok, exact, n);
    print_time(stdout, ns, calls);
    printf(" (thresholds: exact %.2f, each field %.2f)\n", o->min_exact, o->min_field);
}

/* A TAP description: one line, '#' escaped (it would start a directive). */
static void print_tap_text(const char *s) {
    for (; *s; s++) {
        if (*s == '\n' || *s == '\r') putchar(' ');
        else if (*s == '#') fputs("\\#", stdout);
        else putchar(*s);
    }
}

static void report_tap(const corpus *cs, size_t ncs, const understand_opts *o) {
    size_t total = 0;
    for (size_t k = 0; k < ncs; k++) total += cs[k].n + 1;
    printf("1..%zu\n", total);
    size_t t = 0;
    for (size_t k = 0; k < ncs; k++) {
        const corpus *c = &cs[k];
        int pass = passes(c, o);
        for (size_t i = 0; i < c->n; i++) {
            const utterance *u = &c->u[i];
            printf("%s %zu - %s: ", !u->diff || pass ? "ok" : "not ok", ++t, c->path);
            print_tap_text(u->text);
            if (u->diff) {
                fputs(" (missed: ", stdout);
                print_fields(stdout, u->diff);
                fputs(pass ? "; within the file's thresholds)" : ")", stdout);
            }
            putchar('\n');
            if (u->diff) print_miss(stdout, "# ", i, u);
        }
        printf("%s %zu - %s: ", pass ? "ok" : "not ok", ++t, c->path);
        print_shares(stdout, "", c->field_ok, c->exact, c->n);
        print_time(stdout, c->spent_ns, c->calls);
        printf(" (needs exact >= %.2f, each field >= %.2f)\n", o->min_exact, o->min_field);
    }
}

/* --- the command -------------------------------------------------------------------- */

static int open_bot(const char *dir, pl_spec **spec, bot_state *b, json_t **locales, char **name) {
    char *err = NULL;
    if (pl_spec_open(dir, 0, spec, &err) != PL_OK) {
        fprintf(stderr, "parley understand: %s\n", err);
        free(err);
        return 1;
    }
    pl_bot *bot = pl_app_bot(pl_spec_app(*spec), 0);
    if (!pl_bot_vm(bot)) {
        fprintf(stderr, "parley understand: the scripts did not load: %s\n", pl_bot_error(bot));
        return 1;
    }
    b->vm = pl_bot_vm(bot);
    b->L = pl_vm_lua(b->vm);
    json_t *n = NULL;
    if (load_helper(b, &err) != PL_OK || !(*locales = ask(b, "locales", NULL, NULL, NULL, &err)) ||
        !(n = ask(b, "name", NULL, NULL, NULL, &err))) {
        fprintf(stderr, "parley understand: %s\n", err);
        free(err);
        return 1;
    }
    *name = pl_strdup(json_string_value(n));
    json_decref(n);
    return 0;
}

static int understand_text(bot_state *b, const json_t *locales, const understand_opts *o, const char *text) {
    const char *locale = o->locale ? o->locale : json_string_value(json_array_get(locales, 0));
    if (!bot_has_locale(locales, locale)) return pl_cli_usage_error("understand", "the bot has no locale '%s'", locale);
    char *err = NULL;
    json_t *parse = ask(b, "parse", locale, text, NULL, &err);
    if (!parse) {
        fprintf(stderr, "parley understand: %s\n", err);
        free(err);
        return 1;
    }
    json_object_set_new(parse, "text", json_string(text));
    json_object_set_new(parse, "locale", json_string(locale));
    int rc = 0;
    if (o->bench_runs) {
        int64_t ns = time_calls(b, locale, text, o->bench_runs, &err);
        if (ns < 0) {
            fprintf(stderr, "parley understand: %s\n", err);
            free(err);
            rc = 1;
        } else {
            double us = (double)ns / (double)o->bench_runs / 1000.0;
            json_object_set_new(parse, "us_per_call", json_real((double)(int64_t)(us * 10 + 0.5) / 10));
        }
    }
    json_dumpf(parse, stdout, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(4));
    putchar('\n');
    json_decref(parse);
    return rc;
}

static int understand_corpora(bot_state *b, const char *bot_name, const json_t *locales, const understand_opts *o,
                              char **files, int nfiles) {
    corpus *cs = calloc((size_t)nfiles, sizeof *cs);
    int rc = 0;
    char *err = NULL;
    for (int i = 0; i < nfiles && rc == 0; i++) {
        cs[i].path = files[i];
        if (run_corpus(b, bot_name, locales, o, &cs[i], &err) != PL_OK ||
            (o->bench_runs && bench_corpus(b, &cs[i], o->bench_runs, &err) != PL_OK)) {
            fprintf(stderr, "parley understand: %s\n", err);
            free(err);
            rc = 1;
        }
    }
    if (rc == 0) {
        if (o->tap) report_tap(cs, (size_t)nfiles, o);
        else report_text(cs, (size_t)nfiles, o);
        for (int i = 0; i < nfiles; i++)
            if (!passes(&cs[i], o)) rc = 1;
    }
    for (int i = 0; i < nfiles; i++) free_corpus(&cs[i]);
    free(cs);
    return rc;
}

/* A share from 0 to 1 in s; 0 when s is not one. */
static int parse_share(const char *s, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0 && v <= 1)) return 0;
    *out = v;
    return 1;
}

/* Whether path is a folder holding bot.json (the BOT_DIR argument). */
static int is_bot_dir(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    char *manifest = pl_strdupf("%s/bot.json", path);
    int yes = stat(manifest, &st) == 0;
    free(manifest);
    return yes;
}

/* The words joined by single spaces (new). */
static char *joined(char **words, int n) {
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(words[i]) + 1;
    char *s = calloc(1, len);
    for (int i = 0; i < n; i++) {
        if (i) strcat(s, " ");
        strcat(s, words[i]);
    }
    return s;
}

static int parse_options(int argc, char **argv, understand_opts *o) {
    static const struct option opts[] = {{"locale", required_argument, 0, 'l'},
                                         {"corpus", no_argument, 0, 'c'},
                                         {"bench", optional_argument, 0, 'b'},
                                         {"min-exact", required_argument, 0, 'e'},
                                         {"min-field", required_argument, 0, 'f'},
                                         {"tap", no_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'l': o->locale = optarg; break;
        case 'c': o->corpus = 1; break;
        case 't': o->tap = 1; break;
        case 'b':
            o->bench_runs = optarg ? strtol(optarg, &end, 10) : DEFAULT_BENCH_RUNS;
            if ((optarg && (!*optarg || *end)) || o->bench_runs < 1 || o->bench_runs > MAX_BENCH_RUNS)
                return pl_cli_usage_error("understand", "--bench=N wants a whole number from 1 to %d", MAX_BENCH_RUNS);
            break;
        case 'e':
            if (!parse_share(optarg, &o->min_exact)) return pl_cli_usage_error("understand", "--min-exact wants a share from 0 to 1");
            break;
        case 'f':
            if (!parse_share(optarg, &o->min_field)) return pl_cli_usage_error("understand", "--min-field wants a share from 0 to 1");
            break;
        case 'h': fputs(understand_usage, stdout); return -1;
        default: return pl_cli_usage_error("understand", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (o->tap && !o->corpus) return pl_cli_usage_error("understand", "--tap goes with --corpus");
    return 0;
}

int pl_cmd_understand(int argc, char **argv) {
    understand_opts o = {.min_exact = 0.9, .min_field = 0.95};
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char **args = argv + optind;
    int nargs = argc - optind;
    const char *dir = NULL;
    if (nargs > 0 && is_bot_dir(args[0])) {
        dir = args[0];
        args++;
        nargs--;
    }
    if (nargs == 0)
        return pl_cli_usage_error("understand", o.corpus ? "--corpus wants one FILE or more" : "no TEXT to understand");
    char *default_dir = dir ? NULL : pl_cli_default_bot();
    if (!dir) dir = default_dir;
    if (!dir) return pl_cli_usage_error("understand", "no BOT_DIR given and no bot.json here");
    pl_spec *spec = NULL;
    bot_state b = {0};
    json_t *locales = NULL;
    char *name = NULL;
    rc = open_bot(dir, &spec, &b, &locales, &name);
    if (rc == 0 && o.corpus) {
        rc = understand_corpora(&b, name, locales, &o, args, nargs);
    } else if (rc == 0) {
        char *text = joined(args, nargs);
        rc = understand_text(&b, locales, &o, text);
        free(text);
    }
    json_decref(locales);
    free(name);
    pl_spec_close(spec);
    free(default_dir);
    return rc;
}
