/* check: `parley check [BOT_DIR]` — loads a bot as the server does and
 * reports each load error, then runs the static checks of parley.check
 * (runtime/lua/parley/check.lua) over its scripts: what they name as
 * literals (steps, templates and their variables, flows, catalog options)
 * compared with what the loaded bot has, and router phrases that an
 * earlier one hides. The static checks run in a tooling Lua state of their
 * own with luacheck's parser (Debian's lua-check), never in a bot's
 * sandbox; that state has budgets of its own (memory, instructions a file),
 * since the scripts it reads may be hostile. */
#define _GNU_SOURCE
#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "cli.h"
#include "core/bot.h"
#include "core/modules.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"

/* Where Debian's lua-check keeps luacheck's modules (luacheck.parser ...).
 * The package is for Lua 5.1; its parser runs unchanged on 5.4. The
 * environment's PARLEY_LUACHECK_PATH (a package.path) names another place,
 * such as luarocks's. */
#ifndef PL_LUACHECK_PATH
#define PL_LUACHECK_PATH "/usr/share/lua/5.1/?.lua"
#endif

static const char *luacheck_path(void) {
    const char *path = getenv("PARLEY_LUACHECK_PATH");
    return path && *path ? path : PL_LUACHECK_PATH;
}

static const char check_usage[] =
    "usage: parley check [BOT_DIR]\n"
    "\n"
    "Loads the bot's manifest, catalog and every script the way the server does, and\n"
    "prints each error as file:line: message. When everything loads, reads the\n"
    "scripts (with luacheck's Lua parser) for what would fail only when a shopper\n"
    "reaches it: a step name a flow lacks, a template key missing in a locale or a\n"
    "variable a c:say does not give, c:call of a missing flow, catalog options the\n"
    "catalog lacks, what the sandbox does not have (io, os.execute, require of a\n"
    "missing module), a syntax error in lib/, text that is not UTF-8; and warns of\n"
    "router phrases an earlier one hides. Exits 1 if there is any error (warnings\n"
    "do not fail). Needs luacheck's parser (Debian's lua-check). See\n"
    "docs/authoring.md.\n";

/* --- the bot's script files ------------------------------------------------ */

typedef struct {
    char **items;
    size_t count, cap;
} file_list;

static void add_file(file_list *list, char *path) {
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 16;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (!list->items) abort();
    }
    list->items[list->count++] = path;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_lua_file(const char *name) {
    size_t len = strlen(name);
    return len > 4 && strcmp(name + len - 4, ".lua") == 0;
}

/* Adds the .lua files of dir/rel, in name order, as paths relative to dir:
 * only those right in it (as the loader reads flows/ and scripts/), or also
 * those of its subfolders to a depth of 8 when deep (lib/, whose modules
 * `require "lib.sub.x"` finds). A symlinked folder is never entered: a
 * link to `..` would have the walk go round. */
static void find_lua_files(const char *dir, const char *rel, file_list *list, int deep, int depth) {
    char *path = pl_strdupf("%s/%s", dir, rel);
    DIR *d = depth < 8 ? opendir(path) : NULL;
    free(path);
    if (!d) return;
    file_list here = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        add_file(&here, pl_strdupf("%s/%s", rel, e->d_name));
    }
    closedir(d);
    if (here.count) qsort(here.items, here.count, sizeof *here.items, by_name);
    for (size_t i = 0; i < here.count; i++) {
        char *full = pl_strdupf("%s/%s", dir, here.items[i]);
        struct stat st;
        int linked = lstat(full, &st) == 0 && S_ISLNK(st.st_mode);
        int is_dir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        free(full);
        if (is_dir && deep && !linked) {
            find_lua_files(dir, here.items[i], list, deep, depth + 1);
            free(here.items[i]);
        } else if (!is_dir && is_lua_file(here.items[i])) {
            add_file(list, here.items[i]);
        } else {
            free(here.items[i]);
        }
    }
    free(here.items);
}

/* --- the tooling state's budgets ------------------------------------------ */

/* The scripts are the merchant's and may be hostile (a 14 MB file, a
 * phrase list of thousands), so the tooling state has budgets too: its
 * memory in all, and the instructions spent on each file (check.lua asks
 * for a fresh budget before each one and reports the file that ran out). */
#define CHECK_MEMORY_LIMIT ((size_t)512 << 20)
#define CHECK_FILE_INSTRUCTIONS 400000000L
#define HOOK_EVERY 10000
/* the error the hook raises; check.lua tells it from others by this text */
#define OVER_INSTRUCTIONS "over the check's instruction budget"

typedef struct {
    size_t used;
    long spent; /* instructions since the last fresh_budget() */
} tooling_budget;

static void *tooling_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    tooling_budget *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && b->used + (nsize - old) > CHECK_MEMORY_LIMIT) return NULL;
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    b->used = b->used - old + nsize;
    return p;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    void *ud = NULL;
    lua_getallocf(L, &ud);
    tooling_budget *b = ud;
    b->spent += HOOK_EVERY;
    if (b->spent > CHECK_FILE_INSTRUCTIONS) {
        lua_pushliteral(L, OVER_INSTRUCTIONS);
        lua_error(L);
    }
}

/* fresh_budget(): the next file's instructions start from zero */
static int fresh_budget(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    ((tooling_budget *)ud)->spent = 0;
    return 0;
}

/* The options check.run takes from here: its budgets and limits. */
static void push_limits(lua_State *L) {
    lua_createtable(L, 0, 5);
    lua_pushcfunction(L, fresh_budget);
    lua_setfield(L, -2, "fresh_budget");
    lua_pushliteral(L, OVER_INSTRUCTIONS);
    lua_setfield(L, -2, "over_instructions");
    lua_pushinteger(L, CHECK_FILE_INSTRUCTIONS);
    lua_setfield(L, -2, "instructions");
    lua_pushinteger(L, (lua_Integer)(CHECK_MEMORY_LIMIT >> 20));
    lua_setfield(L, -2, "memory_mb");
    lua_pushinteger(L, PL_MAX_SCRIPT_FILE);
    lua_setfield(L, -2, "max_file");
}

/* --- the static checks ---------------------------------------------------- */

typedef struct {
    json_t *facts;
    const char *dir;
    const file_list *files;
} check_args;

/* Called protected, with parley.check and a check_args: its run(facts,
 * dir, files, limits). Making the facts' tables counts in the memory
 * budget, so that too must be able to fail with an error. */
static int call_run(lua_State *L) {
    const check_args *args = lua_touserdata(L, 2);
    lua_getfield(L, 1, "run");
    pl_json_push(L, args->facts);
    lua_pushstring(L, args->dir);
    lua_createtable(L, (int)args->files->count, 0);
    for (size_t i = 0; i < args->files->count; i++) {
        lua_pushstring(L, args->files->items[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    push_limits(L);
    fresh_budget(L);
    lua_call(L, 4, 1);
    return 1;
}

/* Runs parley.check over the bot's scripts in a new tooling state and adds
 * "file:line: message" to errors or warnings. Returns PL_ERR (with *err,
 * new) when the checks could not run at all. */
static int run_static_checks(pl_bot *bot, pl_errors *errors, pl_errors *warnings, char **err) {
    char *failed = NULL;
    json_t *facts = pl_bot_ask_engine_whole(bot, "facts", NULL, &failed);
    if (!facts) {
        *err = pl_strdupf("the static checks could not read the loaded bot: %s", failed ? failed : "?");
        free(failed);
        return PL_ERR;
    }
    file_list files = {0};
    find_lua_files(pl_bot_dir(bot), "flows", &files, 0, 0);
    find_lua_files(pl_bot_dir(bot), "scripts", &files, 0, 0);
    find_lua_files(pl_bot_dir(bot), "lib", &files, 1, 0);
    tooling_budget budget = {0};
    lua_State *L = lua_newstate(tooling_alloc, &budget);
    if (!L) abort();
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    /* no sandbox here: the runtime's C modules find no pl_vm, so charge
     * and log nothing to one */
    *(void **)lua_getextraspace(L) = NULL;
    luaL_openlibs(L);
    pl_modules_register(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, luacheck_path());
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "");
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    int rc = PL_ERR;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "parley.check");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *why = lua_tostring(L, -1);
        if (why && strstr(why, "module 'luacheck."))
            *err = pl_strdupf("the static checks need luacheck's parser, which is not in %s: install Debian's "
                              "lua-check (apt-get install lua-check), or set PARLEY_LUACHECK_PATH to where "
                              "luacheck is (docs/authoring.md#parley-check)",
                              luacheck_path());
        else
            *err = pl_strdupf("the static checks could not start: %s", why ? why : "?");
        goto done;
    }
    check_args args = {facts, pl_bot_dir(bot), &files};
    lua_pushcfunction(L, call_run);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, &args);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        const char *why = lua_tostring(L, -1);
        *err = pl_strdupf("the static checks failed: %s", why ? why : "?");
        goto done;
    }
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        lua_getfield(L, -1, "level");
        lua_getfield(L, -2, "file");
        lua_getfield(L, -3, "line");
        lua_getfield(L, -4, "message");
        pl_errors *to = strcmp(lua_tostring(L, -4), "error") == 0 ? errors : warnings;
        pl_errors_add(to, "%s:%d: %s", lua_tostring(L, -3), (int)lua_tointeger(L, -2), lua_tostring(L, -1));
        lua_pop(L, 5);
    }
    rc = PL_OK;
done:
    lua_close(L);
    for (size_t i = 0; i < files.count; i++) free(files.items[i]);
    free(files.items);
    json_decref(facts);
    return rc;
}

/* --- the command ---------------------------------------------------------------- */

int pl_cmd_check(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(check_usage, stdout);
            return 0;
        }
        if (argv[i][0] == '-') return pl_cli_usage_error("check", "unknown option '%s'", argv[i]);
        if (dir) return pl_cli_usage_error("check", "one BOT_DIR at a time");
        dir = argv[i];
    }
    char *default_dir = dir ? NULL : pl_cli_default_bot();
    if (!dir) dir = default_dir;
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(default_dir);
        return pl_cli_usage_error("check", "%s: no such folder", dir ? dir : "(no bot.json here)");
    }
    pl_log_set_level(PL_LOG_WARN);
    pl_app_wire_layers();
    char *err = NULL;
    pl_bot *bot = NULL;
    if (pl_bot_open(dir, &bot, &err) != PL_OK) {
        printf("%s\n", err);
        free(err);
        free(default_dir);
        return 1;
    }
    pl_errors errors = {0}, warnings = {0};
    int loads = pl_bot_reload(bot, NULL, &errors, &warnings) == PL_OK;
    if (loads && run_static_checks(bot, &errors, &warnings, &err) != PL_OK) {
        pl_errors_add(&errors, "%s", err);
        free(err);
    }
    for (size_t i = 0; i < errors.count; i++) printf("%s\n", errors.items[i]);
    for (size_t i = 0; i < warnings.count; i++) printf("warning: %s\n", warnings.items[i]);
    int ok = loads && errors.count == 0;
    if (ok) printf("%s: every script loads\n", pl_bot_name(bot));
    else printf("%s: %zu error%s\n", pl_bot_name(bot), errors.count, errors.count == 1 ? "" : "s");
    pl_errors_clear(&errors);
    pl_errors_clear(&warnings);
    pl_bot_free(bot);
    free(default_dir);
    return ok ? 0 : 1;
}
