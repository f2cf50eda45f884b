/* bot: manifest, load/reload and load state of one bot; see bot.h.
 * Uses vm.c for the sandbox, catalog.c for products and the Lua engine
 * (parley.engine) for checking the shape of flows and scripts. */
#define _GNU_SOURCE
#include "bot.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/calendar.h"
#include "base/common.h"
#include "base/log.h"
#include "base/secrets.h"
#include "canned.h"
#include "catalog/catalog.h"
#include "event/watch.h"
#include "event/workers.h"
#include "llm.h"
#include "modules.h"
#include "sandbox/json_lua.h"

/* Loading runs whole files; they get more room than a single turn
 * (percent of a turn's budgets). */
#define LOAD_BUDGET_PERCENT 2000
#define ENGINE_BUDGET_PERCENT 100

struct pl_bot {
    char *dir;
    char *name;
    json_t *manifest;
    pl_vm *vm;
    pl_usage *usage;
    int64_t loaded_at;
    char version[PL_BOT_VERSION_LEN + 1]; /* of the files last loaded; "" before */
    int loads;                            /* successful loads so far */
    char *error;
    json_t *stock; /* units left per stock key (commerce.c keeps it current) */
    pthread_mutex_t stock_lock; /* the loop writes under it, turn threads read under it */
    /* with turn threads: each worker's own state and copy of the manifest,
     * touched only by that worker (pl_bot_set_worker_state) */
    size_t nworkers;
    struct worker_state {
        pl_vm *vm;
        json_t *manifest;
    } *workers;
};

void pl_errors_add(pl_errors *errors, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = pl_vstrdupf(fmt, ap);
    va_end(ap);
    errors->items = realloc(errors->items, sizeof *errors->items * (errors->count + 1));
    if (!errors->items) abort();
    errors->items[errors->count++] = s;
}

void pl_errors_clear(pl_errors *errors) {
    for (size_t i = 0; i < errors->count; i++) free(errors->items[i]);
    free(errors->items);
    errors->items = NULL;
    errors->count = 0;
}

static int valid_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 64) return 0;
    for (const char *p = name; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
    return 1;
}

/* The most a bot's webchat.rate_limit may allow one shopper on a server
 * other merchants share (docs/http-limits.md): a burst of 100 messages,
 * then one every 0.05 s (20 a second). A bot may be stricter, never laxer:
 * past this, one shopper's script could take the loop from everyone. */
#define WEBCHAT_MAX_BURST 100
#define WEBCHAT_MIN_REFILL_S 0.05

/* What is wrong with the web chat's settings that the server reads per
 * request (webchat.greet_on_open, webchat.rate_limit), or NULL. */
static const char *webchat_problem(const json_t *m) {
    json_t *w = json_object_get(m, "webchat");
    json_t *greet = json_object_get(w, "greet_on_open"), *limit = json_object_get(w, "rate_limit");
    json_t *burst = json_object_get(limit, "burst"), *refill = json_object_get(limit, "refill_seconds");
    if (greet && !json_is_boolean(greet)) return "\"webchat\": \"greet_on_open\" must be true or false";
    if (limit && (!json_is_object(limit) || !json_is_integer(burst) || !json_is_number(refill)))
        return "\"webchat\": \"rate_limit\" must be {\"burst\": messages at once, \"refill_seconds\": seconds "
               "for one more}, as in {\"burst\": 20, \"refill_seconds\": 1} (leave it out for those)";
    if (limit && (json_integer_value(burst) < 1 || json_integer_value(burst) > WEBCHAT_MAX_BURST))
        return "\"webchat\": \"rate_limit\": \"burst\" must be 1-100 messages: this server lets a shopper "
               "send at most 100 at once (it is shared with other bots)";
    if (limit && (json_number_value(refill) < WEBCHAT_MIN_REFILL_S || json_number_value(refill) > 3600))
        return "\"webchat\": \"rate_limit\": \"refill_seconds\" must be 0.05-3600: this server lets a shopper "
               "send at most 20 messages a second (it is shared with other bots)";
    return NULL;
}

/* Reads and checks bot.json; returns a new manifest or NULL with *err. */
static json_t *read_manifest(const char *dir, char **err) {
    char *path = pl_strdupf("%s/bot.json", dir);
    json_error_t jerr;
    json_t *m = json_load_file(path, 0, &jerr);
    free(path);
    if (!m) {
        if (strstr(jerr.text, "unable to open")) {
            pl_fail(err, "%s: no bot.json here (is this a bot folder?)", dir);
            return NULL;
        }
        pl_fail(err, "bot.json:%d: %s", jerr.line, jerr.text);
        return NULL;
    }
    const char *reason = NULL;
    const char *name = json_string_value(json_object_get(m, "name"));
    json_t *locales = json_object_get(m, "locales");
    if (!json_is_object(m)) reason = "must be an object";
    else if (!name || !valid_name(name))
        reason = "\"name\" must be 1-64 characters of a-z, 0-9, - and _ (it is the bot's address)";
    else if (locales && (!json_is_array(locales) || json_array_size(locales) == 0))
        reason = "\"locales\" must be a non-empty list such as [\"en\", \"ja\"]";
    else if (json_object_get(m, "time_zone") &&
             !pl_calendar_zone_known(json_string_value(json_object_get(m, "time_zone"))))
        reason = "\"time_zone\" must name a time zone such as \"Europe/Madrid\" or \"UTC\" (days of the "
                 "analytics are counted in it)";
    if (!reason && locales) {
        size_t i;
        json_t *l;
        json_array_foreach(locales, i, l) if (!json_is_string(l)) reason = "\"locales\" must list strings";
    }
    if (!reason) reason = webchat_problem(m);
    json_t *retention = json_object_get(m, "retention_days");
    if (!reason && retention &&
        (!json_is_integer(retention) || json_integer_value(retention) < 1 ||
         json_integer_value(retention) > PL_BOT_MAX_RETENTION_DAYS))
        reason = "\"retention_days\" must be a whole number of days from 1 to 36500 (leave it out to keep "
                 "transcripts for good)";
    if (reason) {
        json_decref(m);
        pl_fail(err, "bot.json:1: %s", reason);
        return NULL;
    }
    char *llm = pl_llm_check_manifest(m);
    if (llm) {
        json_decref(m);
        pl_fail(err, "bot.json:1: %s", llm);
        free(llm);
        return NULL;
    }
    char *canned = pl_canned_check(m);
    if (canned) {
        json_decref(m);
        pl_fail(err, "bot.json:1: %s", canned);
        free(canned);
        return NULL;
    }
    char *outside = pl_secrets_check_manifest(name, m);
    if (outside) {
        json_decref(m);
        pl_fail(err, "%s", outside);
        free(outside);
        return NULL;
    }
    if (!locales) json_object_set_new(m, "locales", json_pack("[s]", "en"));
    return m;
}

int pl_bot_open(const char *dir, pl_bot **out, char **err) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pl_fail(err, "%s: no such folder", dir);
    char *real = realpath(dir, NULL);
    json_t *manifest = read_manifest(real, err);
    if (!manifest) {
        free(real);
        return PL_ERR;
    }
    pl_bot *bot = calloc(1, sizeof *bot);
    if (!bot) abort();
    bot->dir = real;
    bot->manifest = manifest;
    bot->name = pl_strdup(json_string_value(json_object_get(manifest, "name")));
    bot->stock = json_object();
    pthread_mutex_init(&bot->stock_lock, NULL);
    bot->usage = pl_usage_new();
    *out = bot;
    return PL_OK;
}

void pl_bot_free(pl_bot *bot) {
    if (!bot) return;
    for (size_t i = 0; i < bot->nworkers; i++) {
        pl_vm_release(bot->workers[i].vm);
        json_decref(bot->workers[i].manifest);
    }
    free(bot->workers);
    pl_vm_release(bot->vm);
    json_decref(bot->manifest);
    json_decref(bot->stock);
    pthread_mutex_destroy(&bot->stock_lock);
    pl_usage_free(bot->usage);
    free(bot->dir);
    free(bot->name);
    free(bot->error);
    free(bot);
}

pl_vm *pl_bot_vm(const pl_bot *bot) { return bot->vm; }

void pl_bot_set_workers(pl_bot *bot, size_t n) {
    bot->workers = calloc(n, sizeof *bot->workers);
    if (!bot->workers) abort();
    bot->nworkers = n;
}

pl_vm *pl_bot_vm_here(const pl_bot *bot) {
    int i = pl_worker_index();
    if (i < 0) return bot->vm;
    return (size_t)i < bot->nworkers ? bot->workers[i].vm : NULL;
}

void pl_bot_set_worker_state(pl_bot *bot, pl_vm *vm, json_t *manifest) {
    int i = pl_worker_index();
    if (i < 0 || (size_t)i >= bot->nworkers) abort();
    if (vm) {
        pl_vm_release(bot->workers[i].vm);
        bot->workers[i].vm = vm;
    }
    json_decref(bot->workers[i].manifest);
    bot->workers[i].manifest = manifest;
}

/* The manifest this thread may read: a worker's own copy (it has one from
 * the bot's first load on, before any turn reaches it). */
static const json_t *manifest_here(const pl_bot *bot) {
    int i = pl_worker_index();
    if (i < 0 || (size_t)i >= bot->nworkers) return bot->manifest;
    return bot->workers[i].manifest;
}
const char *pl_bot_name(const pl_bot *bot) { return bot->name; }
const char *pl_bot_dir(const pl_bot *bot) { return bot->dir; }
const json_t *pl_bot_manifest(const pl_bot *bot) { return bot->manifest; }
int64_t pl_bot_loaded_at(const pl_bot *bot) { return bot->loaded_at; }
const char *pl_bot_version(const pl_bot *bot) { return bot->version[0] ? bot->version : NULL; }
int pl_bot_loads(const pl_bot *bot) { return bot->loads; }
const char *pl_bot_error(const pl_bot *bot) { return bot->error; }

json_t *pl_bot_stock(pl_bot *bot) { return bot->stock; }

int pl_bot_stock_left(pl_bot *bot, const char *key, int64_t *left) {
    pthread_mutex_lock(&bot->stock_lock);
    json_t *v = json_object_get(bot->stock, key);
    if (v) *left = (int64_t)json_integer_value(v);
    pthread_mutex_unlock(&bot->stock_lock);
    return v != NULL;
}

void pl_bot_stock_set(pl_bot *bot, const char *key, json_t *left) {
    pthread_mutex_lock(&bot->stock_lock);
    json_object_set(bot->stock, key, left);
    pthread_mutex_unlock(&bot->stock_lock);
}
pl_usage *pl_bot_usage(const pl_bot *bot) { return bot->usage; }

static pl_bot_caps caps = {PL_CAP_MEMORY_MB, PL_CAP_INSTRUCTIONS, PL_CAP_TIME_MS};

void pl_bot_set_caps(const pl_bot_caps *c) {
    if (c->memory_mb > 0) caps.memory_mb = c->memory_mb;
    if (c->instructions > 0) caps.instructions = c->instructions;
    if (c->time_ms > 0) caps.time_ms = c->time_ms;
}

void pl_bot_get_caps(pl_bot_caps *c) { *c = caps; }

/* engine.<fn>(arg) under percent of the state's budgets; *err (new) when
 * NULL is returned. */
static json_t *ask_engine(pl_bot *bot, const char *fn, const json_t *arg, int percent, char **err) {
    if (!bot->vm) {
        pl_fail(err, "the bot's scripts have not loaded");
        return NULL;
    }
    lua_State *L = pl_vm_lua(bot->vm);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "parley.engine");
    lua_getfield(L, -1, fn);
    lua_replace(L, -3);
    lua_pop(L, 1);
    if (arg) pl_json_push(L, arg);
    json_t *result = NULL;
    if (pl_vm_run(bot->vm, arg ? 1 : 0, 1, percent, err) == PL_OK) {
        result = pl_json_from_lua(L, -1, fn, err);
        lua_pop(L, 1);
    }
    return result;
}

json_t *pl_bot_ask_engine(pl_bot *bot, const char *fn, const json_t *arg) {
    char *err = NULL;
    json_t *result = ask_engine(bot, fn, arg, ENGINE_BUDGET_PERCENT, &err);
    if (!result) pl_warn("[%s] engine.%s: %s", bot->name, fn, err ? err : "?");
    free(err);
    return result;
}

json_t *pl_bot_ask_engine_whole(pl_bot *bot, const char *fn, const json_t *arg, char **err) {
    return ask_engine(bot, fn, arg, LOAD_BUDGET_PERCENT, err);
}

const json_t *pl_bot_channel_settings(const pl_bot *bot, const char *channel) {
    const json_t *settings = json_object_get(json_object_get(bot->manifest, "channels"), channel);
    return json_is_object(settings) ? settings : NULL;
}

int pl_bot_retention_days(const pl_bot *bot) {
    return (int)json_integer_value(json_object_get(manifest_here(bot), "retention_days"));
}

const char *pl_bot_time_zone(const pl_bot *bot) {
    const char *zone = json_string_value(json_object_get(manifest_here(bot), "time_zone"));
    return zone ? zone : "UTC";
}

int64_t pl_bot_quiet_ms(const pl_bot *bot) {
    json_t *v = json_object_get(json_object_get(manifest_here(bot), "analytics"), "quiet_minutes");
    return (json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 30) * 60000;
}

int pl_bot_analytics_on(const pl_bot *bot) {
    return !json_is_false(json_object_get(json_object_get(manifest_here(bot), "analytics"), "enabled"));
}

const char *pl_bot_static_fallback(const pl_bot *bot, const char *locale) {
    const json_t *manifest = manifest_here(bot);
    json_t *fb = json_object_get(manifest, "fallback");
    if (json_is_string(fb)) return json_string_value(fb);
    const char *s = json_string_value(json_object_get(fb, locale ? locale : ""));
    if (!s) s = json_string_value(json_object_get(
        fb, json_string_value(json_array_get(json_object_get(manifest, "locales"), 0))));
    return s ? s : "Sorry, something went wrong on our side. Please try again in a moment.";
}

/* limits.<key> of the manifest, or the default; never above the host's
 * cap (a warning says so when the bot asked for more). */
static long manifest_limit(const json_t *manifest, const char *key, long fallback, long cap,
                           pl_errors *warnings) {
    json_t *v = json_object_get(json_object_get(manifest, "limits"), key);
    long asked = json_is_integer(v) && json_integer_value(v) > 0 ? (long)json_integer_value(v) : fallback;
    if (asked <= cap) return asked;
    if (warnings)
        pl_errors_add(warnings, "bot.json: limits.%s of %ld is over this host's cap of %ld; the cap applies",
                      key, asked, cap);
    return cap;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The sorted names in folder path that keep(name) accepts, hidden ones
 * never (new list; NULL and *n 0 when there is no such folder). */
static char **list_names(const char *path, int (*keep)(const char *name), size_t *n) {
    DIR *d = opendir(path);
    char **names = NULL;
    *n = 0;
    if (!d) return NULL;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || !keep(e->d_name)) continue;
        names = realloc(names, sizeof *names * (*n + 1));
        if (!names) abort();
        names[(*n)++] = pl_strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(names, *n, sizeof *names, by_name);
    return names;
}

static int is_lua_name(const char *name) {
    size_t len = strlen(name);
    return len >= 5 && strcmp(name + len - 4, ".lua") == 0;
}

static int any_name(const char *name) {
    (void)name;
    return 1;
}

/* The sorted *.lua file names in dir/sub (new list). */
static char **list_lua(const char *dir, const char *sub, size_t *n) {
    char *path = pl_strdupf("%s/%s", dir, sub);
    char **names = list_names(path, is_lua_name, n);
    free(path);
    return names;
}

static void free_list(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Adds relpath and its bytes (when the file can be read) to the digest. */
static void digest_file(EVP_MD_CTX *md, const char *path, const char *relpath) {
    char *text = NULL, *err = NULL;
    size_t len = 0;
    if (pl_read_file(path, &text, &len, &err) == PL_OK) {
        unsigned char size[8]; /* little-endian, so that every machine digests the same bytes */
        for (int i = 0; i < 8; i++) size[i] = (unsigned char)((uint64_t)len >> (8 * i));
        EVP_DigestUpdate(md, relpath, strlen(relpath) + 1);
        EVP_DigestUpdate(md, size, sizeof size);
        EVP_DigestUpdate(md, text, len);
    }
    free(text);
    free(err);
}

/* Digests the bot's files in dir/rel, by name: those a change of which
 * reloads the bot (watch.h), so the version and the reloads agree. */
static void digest_tree(EVP_MD_CTX *md, const char *dir, const char *rel, int depth) {
    char *path = *rel ? pl_strdupf("%s/%s", dir, rel) : pl_strdup(dir);
    size_t n = 0;
    char **names = depth < 16 ? list_names(path, any_name, &n) : NULL;
    for (size_t i = 0; i < n; i++) {
        char *sub = *rel ? pl_strdupf("%s/%s", rel, names[i]) : pl_strdup(names[i]);
        char *full = pl_strdupf("%s/%s", path, names[i]);
        struct stat st;
        /* a symlinked folder is not entered, as the watcher does not watch
         * it: links to `..` would have the walk go round and round */
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (*rel || pl_watch_is_bot_folder(names[i])) digest_tree(md, dir, sub, depth + 1);
        } else if (pl_watch_is_bot_file(names[i])) {
            digest_file(md, full, sub);
        }
        free(full);
        free(sub);
    }
    free_list(names, n);
    free(path);
}

/* The bot's version: the first hex digits of a SHA-256 over its files
 * (names and contents), so that nodes serving the same files say the
 * same version. */
static void bot_version(const char *dir, char out[PL_BOT_VERSION_LEN + 1]) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md) abort();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    digest_tree(md, dir, "", 0);
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int sum_len = 0;
    EVP_DigestFinal_ex(md, sum, &sum_len);
    EVP_MD_CTX_free(md);
    for (size_t i = 0; i < PL_BOT_VERSION_LEN / 2; i++) snprintf(out + 2 * i, 3, "%02x", sum[i]);
}

/* Calls engine.<fn>(args...) where the args are already pushed; errors go
 * to the list. */
static int call_engine(pl_vm *vm, const char *fn, int nargs, int nres, pl_errors *errors) {
    lua_State *L = pl_vm_lua(vm);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "parley.engine");
    lua_getfield(L, -1, fn);
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_insert(L, -(nargs + 1));
    char *err = NULL;
    int rc = pl_vm_run(vm, nargs, nres, LOAD_BUDGET_PERCENT, &err);
    if (rc != PL_OK) {
        pl_errors_add(errors, "%s", err);
        free(err);
    }
    return rc;
}

/* Compiles relpath and hands it to engine.<fn>(name, chunk, relpath, source). */
static void load_script(pl_vm *vm, const char *fn, const char *name, const char *relpath,
                        pl_errors *errors) {
    lua_State *L = pl_vm_lua(vm);
    char *err = NULL;
    char *path = pl_strdupf("%s/%s", pl_vm_bot_dir(vm), relpath);
    char *source = NULL;
    int rc = pl_read_file(path, &source, NULL, &err);
    free(path);
    if (rc == PL_OK) rc = pl_vm_load_file(vm, L, relpath, &err);
    if (rc != PL_OK) {
        pl_errors_add(errors, "%s", err);
        free(err);
        free(source);
        return;
    }
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_pushstring(L, relpath);
    lua_pushstring(L, source);
    free(source);
    call_engine(vm, fn, 4, 0, errors);
}

/* Gives the engine (fn: add_flow, set_script) every .lua file of folder,
 * each named after its file. */
static void load_folder(pl_vm *vm, const char *folder, const char *fn, pl_errors *errors) {
    size_t n;
    char **files = list_lua(pl_vm_bot_dir(vm), folder, &n);
    for (size_t i = 0; i < n; i++) {
        char *rel = pl_strdupf("%s/%s", folder, files[i]);
        char *name = pl_strndup(files[i], strlen(files[i]) - 4);
        load_script(vm, fn, name, rel, errors);
        free(rel);
        free(name);
    }
    free_list(files, n);
}

static pl_catalog *load_catalog(const pl_bot *bot, const json_t *manifest, pl_errors *errors) {
    const char *file = json_string_value(json_object_get(manifest, "catalog"));
    char *path = pl_strdupf("%s/%s", bot->dir, file ? file : "catalog.json");
    pl_catalog *catalog = NULL;
    char *err = NULL;
    struct stat st;
    if (!file && stat(path, &st) != 0) catalog = pl_catalog_empty();
    else if (pl_catalog_load(path, file ? file : "catalog.json", &catalog, &err) != PL_OK) {
        pl_errors_add(errors, "%s", err);
        free(err);
    }
    free(path);
    return catalog;
}

/* Runs engine.finish() and collects its warnings. */
static void finish_engine(pl_vm *vm, pl_errors *errors, pl_errors *warnings) {
    lua_State *L = pl_vm_lua(vm);
    if (call_engine(vm, "finish", 0, 1, errors) != PL_OK) return;
    if (warnings && lua_istable(L, -1)) {
        lua_Integer n = luaL_len(L, -1);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            pl_errors_add(warnings, "%s", lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

static pl_bot_state_setup state_setup;

void pl_bot_set_state_setup(pl_bot_state_setup setup) { state_setup = setup; }

/* Builds a complete state for the bot, or returns NULL with errors. */
static pl_vm *build(const pl_bot *bot, const json_t *manifest, pl_errors *errors,
                    pl_errors *warnings) {
    pl_vm_config config = {
        .bot_name = bot->name,
        .bot_dir = bot->dir,
        .memory_limit = (size_t)manifest_limit(manifest, "memory_mb", PL_DEFAULT_MEMORY_MB, caps.memory_mb, warnings)
                        << 20,
        .instruction_limit =
            manifest_limit(manifest, "instructions", PL_DEFAULT_INSTRUCTIONS, caps.instructions, warnings),
        .time_limit_ms = manifest_limit(manifest, "time_ms", PL_DEFAULT_TIME_MS, caps.time_ms, warnings),
        .usage = bot->usage,
        .open_modules = pl_modules_open,
    };
    pl_catalog *catalog = load_catalog(bot, manifest, errors);
    char *err = NULL;
    pl_vm *vm = pl_vm_new(&config, &err);
    if (!vm) {
        pl_errors_add(errors, "%s", err);
        free(err);
        pl_catalog_free(catalog);
        return NULL;
    }
    lua_State *L = pl_vm_lua(vm);
    pl_vm_set_userdata(vm, (void *)bot);
    pl_modules_set_catalog(L, catalog ? catalog : pl_catalog_empty());
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parley.engine");
    if (pl_vm_run(vm, 1, 0, LOAD_BUDGET_PERCENT, &err) != PL_OK) {
        pl_errors_add(errors, "runtime: %s", err);
        free(err);
    } else {
        if (state_setup) state_setup(L, manifest, errors);
        pl_json_push(L, manifest);
        if (call_engine(vm, "configure", 1, 0, errors) == PL_OK) {
            load_folder(vm, "flows", "add_flow", errors);
            load_folder(vm, "scripts", "set_script", errors);
            if (errors->count == 0) finish_engine(vm, errors, warnings);
        }
    }
    lua_gc(L, LUA_GCCOLLECT);
    if (errors->count > 0) {
        pl_vm_release(vm);
        return NULL;
    }
    return vm;
}

pl_vm *pl_bot_build_copy(const pl_bot *bot) {
    pl_errors errors = {0};
    pl_vm *vm = build(bot, bot->manifest, &errors, NULL);
    if (!vm) pl_error("[%s] a turn thread's copy of the scripts did not load: %s", bot->name,
                      errors.count ? errors.items[0] : "?");
    pl_errors_clear(&errors);
    return vm;
}

/* Copies the new catalog into the store and brings its stock counts in
 * (sold units stay sold unless the catalog's count changed); *stock gets
 * the units left per key (new). Without a store the catalog's counts. */
static int sync_catalog(const pl_bot *bot, pl_vm *vm, pl_store *store, json_t **stock, char **err) {
    const json_t *products = pl_catalog_products(pl_modules_catalog(pl_vm_lua(vm)));
    json_t *counts = pl_catalog_stock(products);
    int rc = PL_OK;
    if (!store) {
        *stock = json_incref(counts);
    } else if ((rc = pl_store_begin(store, err)) == PL_OK) {
        /* products and stock together, or neither: the old scripts go on
         * serving with the old catalog when this fails */
        rc = pl_store_catalog_replace(store, bot->name, products, err);
        if (rc == PL_OK) rc = pl_store_stock_sync(store, bot->name, counts, stock, err);
        if (rc == PL_OK) rc = pl_store_commit(store, err);
        if (rc != PL_OK) pl_store_rollback(store);
    }
    json_decref(counts);
    return rc;
}

static char *join_errors(const pl_errors *errors) {
    char *joined = pl_strdup(errors->items[0]);
    if (errors->count > 1) {
        char *more = pl_strdupf("%s (and %zu more: run parley check)", joined, errors->count - 1);
        free(joined);
        joined = more;
    }
    return joined;
}

int pl_bot_reload(pl_bot *bot, pl_store *store, pl_errors *errors, pl_errors *warnings) {
    pl_errors local = {0};
    if (!errors) errors = &local;
    char *err = NULL;
    json_t *manifest = read_manifest(bot->dir, &err);
    if (manifest && strcmp(json_string_value(json_object_get(manifest, "name")), bot->name) != 0) {
        pl_fail(&err, "bot.json:1: the name cannot change while the bot is served (restart parley)");
        json_decref(manifest);
        manifest = NULL;
    }
    pl_vm *vm = NULL;
    if (!manifest) {
        pl_errors_add(errors, "%s", err);
        free(err);
    } else {
        vm = build(bot, manifest, errors, warnings);
    }
    json_t *stock = NULL;
    if (vm && sync_catalog(bot, vm, store, &stock, &err) != PL_OK) {
        pl_errors_add(errors, "%s", err);
        free(err);
        pl_vm_release(vm);
        vm = NULL;
    }
    int rc = PL_OK;
    if (vm) {
        pthread_mutex_lock(&bot->stock_lock);
        json_object_clear(bot->stock);
        json_object_update(bot->stock, stock);
        pthread_mutex_unlock(&bot->stock_lock);
        json_decref(stock);
        pl_vm_release(bot->vm);
        bot->vm = vm;
        json_decref(bot->manifest);
        bot->manifest = manifest;
        bot->loaded_at = pl_now_ms();
        bot_version(bot->dir, bot->version);
        bot->loads++;
        free(bot->error);
        bot->error = NULL;
    } else {
        json_decref(manifest);
        free(bot->error);
        bot->error = join_errors(errors);
        rc = PL_ERR;
    }
    pl_errors_clear(&local);
    return rc;
}
