/* test_vm: the sandbox and the budgets of a bot's Lua state (vm.h). */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bot_vm.h"
#include "check.h"
#include "sandbox/vm.h"

#define MEMORY_LIMIT (16u << 20)
#define INSTRUCTIONS 200000L

static char bot_dir[64];

static void write_file(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", bot_dir, rel);
    FILE *f = fopen(path, "w");
    if (!f) {
        printf("#   cannot write %s\n", path);
        return;
    }
    fputs(text, f);
    fclose(f);
}

static void make_bot_dir(void) {
    strcpy(bot_dir, "/tmp/parley-test-vm-XXXXXX");
    if (!mkdtemp(bot_dir)) {
        printf("#   mkdtemp failed\n");
        return;
    }
    char sub[128];
    snprintf(sub, sizeof sub, "%s/lib", bot_dir);
    mkdir(sub, 0700);
    write_file("util.lua", "local M = {}\nfunction M.double(x) return x * 2 end\nreturn M\n");
    write_file("lib/money.lua", "return { cents = function(n) return n * 100 end }\n");
    write_file("loop.lua", "local n = 0\nwhile true do\n  n = n + 1\nend\n");
    write_file("bad.lua", "local x = 1\nlocal y = 2\nif x then\n  return y +\nend\n");
    write_file("hello.lua", "return 'hello from ' .. ...\n");
    write_file("broken_module.lua", "return {\n");
}

static void remove_bot_dir(void) {
    const char *files[] = {"util.lua", "lib/money.lua", "loop.lua", "bad.lua", "hello.lua",
                           "broken_module.lua"};
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", bot_dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/lib", bot_dir);
    rmdir(path);
    rmdir(bot_dir);
}

static pl_vm *new_vm(void) { return test_bot_vm("testbot", bot_dir, MEMORY_LIMIT, INSTRUCTIONS, 0); }

/* Compiles code (chunk name "@chunk.lua") and runs it under the budget;
 * returns PL_OK with one result on the stack, or PL_ERR with *err set. */
static int run(pl_vm *vm, const char *code, long limit, char **err) {
    return test_bot_run(vm, "@chunk.lua", code, limit * 100 / INSTRUCTIONS, err); /* percent of the budget */
}

/* Runs code that must succeed and return true. */
static int run_true(pl_vm *vm, const char *code) {
    char *err = NULL;
    lua_State *L = pl_vm_lua(vm);
    int top = lua_gettop(L);
    int ok = run(vm, code, INSTRUCTIONS, &err) == 0;
    if (!ok) printf("#   %s\n#   -> error: %s\n", code, err);
    else if (lua_toboolean(L, -1) != 1) {
        printf("#   %s\n#   -> returned %s\n", code, luaL_tolstring(L, -1, NULL));
        lua_pop(L, 1);
        ok = 0;
    }
    if (ok || lua_gettop(L) > top) lua_settop(L, top);
    free(err);
    return ok;
}

/* Runs code that must fail with a message containing want (and want2). */
static int run_fails(pl_vm *vm, const char *code, long limit, const char *want, const char *want2,
                     char **msg_out) {
    char *err = NULL;
    lua_State *L = pl_vm_lua(vm);
    int top = lua_gettop(L);
    int rc = run(vm, code, limit, &err);
    int ok = rc != 0 && err && strstr(err, want) && (!want2 || strstr(err, want2));
    if (!ok) printf("#   %s\n#   -> rc %d, \"%s\", want \"%s\" \"%s\"\n", code, rc, err ? err : "(none)", want,
                    want2 ? want2 : "");
    if (rc == 0) lua_pop(L, 1);
    CHECK(lua_gettop(L) == top);
    if (msg_out) *msg_out = err;
    else free(err);
    return ok;
}

TEST(new_and_accessors) {
    pl_vm *vm = new_vm();
    CHECK(vm != NULL);
    if (!vm) return;
    lua_State *L = pl_vm_lua(vm);
    CHECK(L != NULL);
    CHECK(pl_vm_from_lua(L) == vm);
    CHECK_STR(pl_vm_bot_name(vm), "testbot");
    CHECK_STR(pl_vm_bot_dir(vm), bot_dir);
    CHECK(pl_vm_instruction_limit(vm) == INSTRUCTIONS);
    CHECK(pl_vm_memory_used(vm) > 0 && pl_vm_memory_used(vm) < MEMORY_LIMIT);
    int x = 0;
    pl_vm_set_userdata(vm, &x);
    CHECK(pl_vm_userdata(vm) == &x);
    /* a thread finds its vm too */
    lua_State *co = lua_newthread(L);
    CHECK(pl_vm_from_lua(co) == vm);
    lua_pop(L, 1);
    /* reference counting: one retain, two releases */
    pl_vm_retain(vm);
    pl_vm_release(vm);
    CHECK(pl_vm_from_lua(pl_vm_lua(vm)) == vm);
    pl_vm_release(vm);
}

TEST(run_returns_results) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    lua_State *L = pl_vm_lua(vm);
    luaL_loadstring(L, "local a, b = ... return a + b, 'two', true");
    lua_pushinteger(L, 40);
    lua_pushinteger(L, 2);
    char *err = NULL;
    CHECK(pl_vm_run(vm, 2, 2, 100, &err) == 0);
    CHECK(lua_gettop(L) == 2);
    CHECK(lua_tointeger(L, -2) == 42);
    CHECK_STR(lua_tostring(L, -1), "two");
    lua_settop(L, 0);
    /* fewer results than asked are padded with nil */
    luaL_loadstring(L, "return 1");
    CHECK(pl_vm_run(vm, 0, 3, 100, &err) == 0);
    CHECK(lua_gettop(L) == 3 && lua_tointeger(L, 1) == 1 && lua_isnil(L, 2) && lua_isnil(L, 3));
    lua_settop(L, 0);
    /* an error leaves nothing and names the chunk and line */
    luaL_loadbufferx(L, "local x = nil\nreturn x.field", strlen("local x = nil\nreturn x.field"), "@oops.lua", "t");
    CHECK(pl_vm_run(vm, 0, 1, 100, &err) != 0);
    CHECK(lua_gettop(L) == 0);
    CHECK(err && strncmp(err, "oops.lua:2:", 11) == 0);
    free(err);
    err = NULL;
    /* yielding is refused */
    luaL_loadstring(L, "coroutine.yield(1) return 2");
    CHECK(pl_vm_run(vm, 0, 1, 100, &err) != 0);
    CHECK(lua_gettop(L) == 0);
    CHECK(err != NULL);
    free(err);
    pl_vm_release(vm);
}

TEST(dangerous_globals_absent) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_true(vm, "return io == nil"));
    CHECK(run_true(vm, "return debug == nil"));
    CHECK(run_true(vm, "return dofile == nil"));
    CHECK(run_true(vm, "return loadfile == nil"));
    CHECK(run_true(vm, "return string.dump == nil and ('').dump == nil"));
    CHECK(run_true(vm, "return package.loadlib == nil"));
    CHECK(run_true(vm, "return package.cpath == nil and package.path == nil and package.searchpath == nil"));
    CHECK(run_true(vm, "return package.loaded.io == nil and package.loaded.debug == nil"));
    CHECK(run_true(vm, "return not pcall(require, 'io') and not pcall(require, 'debug')"));
    CHECK(run_true(vm, "return not pcall(require, 'os.execute')"));
    /* the allowed libraries are there */
    CHECK(run_true(vm, "return string.format('%d', 5) == '5' and table.concat({1, 2}, ',') == '1,2'"));
    CHECK(run_true(vm, "return math.floor(2.5) == 2 and utf8.len('ラテ') == 2 and coroutine.wrap ~= nil"));
    CHECK(run_true(vm, "return type(pcall) == 'function' and type(setmetatable) == 'function'"));
    pl_vm_release(vm);
}

TEST(os_is_restricted) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_true(vm, "local n = 0 for k in pairs(os) do n = n + 1 end return n == 3"));
    CHECK(run_true(vm, "return type(os.time) == 'function' and type(os.clock) == 'function' and type(os.date) == 'function'"));
    CHECK(run_true(vm, "return os.execute == nil and os.exit == nil and os.getenv == nil and os.remove == nil"));
    CHECK(run_true(vm, "return os.rename == nil and os.tmpname == nil and os.setlocale == nil"));
    CHECK(run_true(vm, "return type(os.time()) == 'number' and type(os.date('!%Y')) == 'string'"));
    pl_vm_release(vm);
}

TEST(load_is_text_only) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_true(vm, "return load('return 1 + 1')() == 2"));
    CHECK(run_true(vm, "local f, e = load('\\27Lua\\84\\0 junk') return f == nil and e:find('binary') ~= nil"));
    /* asking for binary mode explicitly does not help */
    CHECK(run_true(vm, "local f, e = load('\\27Lua\\84\\0 junk', 'x', 'b') return f == nil and e:find('binary') ~= nil"));
    CHECK(run_true(vm, "local f = load('return 7', 'x', 'b') return f ~= nil and f() == 7"));
    /* a reader function that produces a binary chunk is refused too */
    CHECK(run_true(vm, "local done = false\n"
                       "local f, e = load(function() if done then return nil end done = true return '\\27Lua' end)\n"
                       "return f == nil and e:find('binary') ~= nil"));
    /* the env argument still works */
    CHECK(run_true(vm, "local f = load('return x', 'x', 't', {x = 5}) return f() == 5"));
    pl_vm_release(vm);
}

TEST(collectgarbage_is_limited) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_fails(vm, "collectgarbage('stop') return 1", INSTRUCTIONS, "collectgarbage('stop')", NULL, NULL));
    CHECK(run_fails(vm, "collectgarbage('generational') return 1", INSTRUCTIONS, "not available", NULL, NULL));
    CHECK(run_fails(vm, "collectgarbage('setpause', 1000) return 1", INSTRUCTIONS, "not available", NULL, NULL));
    CHECK(run_fails(vm, "collectgarbage('incremental', 1000) return 1", INSTRUCTIONS, "not available", NULL, NULL));
    /* a pcall around it still leaves the collector running */
    CHECK(run_true(vm, "return not pcall(collectgarbage, 'stop') and not pcall(collectgarbage, 'isrunning')"));
    CHECK(run_true(vm, "return type(collectgarbage('count')) == 'number'"));
    CHECK(run_true(vm, "collectgarbage() collectgarbage('collect') collectgarbage('step') return true"));
    lua_State *L = pl_vm_lua(vm);
    CHECK(lua_gc(L, LUA_GCISRUNNING) == 1);
    pl_vm_release(vm);
}

TEST(require_inside_bot_folder) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_true(vm, "return require('util').double(21) == 42"));
    CHECK(run_true(vm, "return require('lib.money').cents(3) == 300"));
    /* modules are cached like any require */
    CHECK(run_true(vm, "return require('util') == require('util')"));
    /* the runtime's own modules come from package.preload */
    CHECK(run_true(vm, "local json = require 'json' return json.encode({1, 2}) == '[1,2]'"));
    CHECK(run_true(vm, "return require('json').null ~= nil"));
    pl_vm_release(vm);
}

TEST(require_outside_refused) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_fails(vm, "return require '../x'", INSTRUCTIONS, "not allowed", NULL, NULL));
    CHECK(run_fails(vm, "return require '/etc/passwd'", INSTRUCTIONS, "not allowed", NULL, NULL));
    CHECK(run_fails(vm, "return require 'lib/../../x'", INSTRUCTIONS, "not allowed", NULL, NULL));
    CHECK(run_fails(vm, "return require 'lib..util'", INSTRUCTIONS, "not allowed", NULL, NULL));
    CHECK(run_fails(vm, "return require '.util'", INSTRUCTIONS, "not allowed", NULL, NULL));
    CHECK(run_fails(vm, "return require 'no_such_module'", INSTRUCTIONS, "no_such_module", NULL, NULL));
    /* a module with a syntax error reports its file and line */
    CHECK(run_fails(vm, "return require 'broken_module'", INSTRUCTIONS, "broken_module.lua:", NULL, NULL));
    pl_vm_release(vm);
}

TEST(instruction_budget_aborts_loop) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    char *msg = NULL;
    CHECK(run_fails(vm, "local n = 0\nwhile true do\n  n = n + 1\nend", INSTRUCTIONS, "instruction budget",
                    "chunk.lua:", &msg));
    /* the position is one of the loop's lines */
    CHECK(msg && (strncmp(msg, "chunk.lua:2:", 12) == 0 || strncmp(msg, "chunk.lua:3:", 12) == 0 ||
                  strncmp(msg, "chunk.lua:4:", 12) == 0));
    free(msg);
    msg = NULL;
    /* a file of the bot, loaded with pl_vm_load_file */
    char *err = NULL;
    CHECK(pl_vm_load_file(vm, pl_vm_lua(vm), "loop.lua", &err) == 0);
    CHECK(pl_vm_run(vm, 0, 0, 100, &err) != 0);
    CHECK(err && strstr(err, "instruction budget") && strncmp(err, "loop.lua:", 9) == 0);
    free(err);
    /* the state is usable afterwards, with a fresh budget */
    CHECK(run_true(vm, "local s = 0 for i = 1, 1000 do s = s + i end return s == 500500"));
    pl_vm_release(vm);
}

TEST(instruction_budget_is_per_run) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    /* ~30k instructions: fits one budget of 200k, many times in a row */
    for (int i = 0; i < 20; i++)
        CHECK(run_true(vm, "local s = 0 for i = 1, 10000 do s = s + i end return s == 50005000"));
    /* the same code over a smaller budget is refused */
    CHECK(run_fails(vm, "local s = 0 for i = 1, 100000 do s = s + i end return s", 20000, "instruction budget",
                    NULL, NULL));
    pl_vm_release(vm);
}

TEST(pcall_cannot_swallow_abort) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    CHECK(run_fails(vm, "local ok, e = pcall(function() while true do end end)\nreturn 'swallowed'",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_fails(vm,
                    "for i = 1, 10 do pcall(function() while true do end end) end\n"
                    "return 'swallowed'",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_fails(vm,
                    "local ok = xpcall(function() while true do end end, function(m) return m end)\n"
                    "return 'swallowed'",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_fails(vm,
                    "while true do pcall(function() while true do end end) end",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_true(vm, "return true"));
    pl_vm_release(vm);
}

TEST(coroutine_cannot_swallow_abort) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    /* coroutine.resume catches errors like pcall does */
    CHECK(run_fails(vm,
                    "local ok = coroutine.resume(coroutine.create(function() while true do end end))\n"
                    "return 'swallowed'",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_fails(vm,
                    "local f = coroutine.wrap(function() while true do end end)\n"
                    "local ok = pcall(f)\n"
                    "return 'swallowed'",
                    INSTRUCTIONS, "instruction budget", NULL, NULL));
    CHECK(run_true(vm, "return true"));
    pl_vm_release(vm);
}

TEST(memory_budget) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    char *msg = NULL;
    CHECK(run_fails(vm, "local t = {} for i = 1, 1e8 do t[i] = i end return #t", 1000000000L, "memory budget",
                    NULL, &msg));
    if (msg) printf("#   message: %s\n", msg);
    free(msg);
    CHECK(pl_vm_memory_used(vm) < MEMORY_LIMIT);
    /* the state stays usable */
    CHECK(run_true(vm, "local t = {} for i = 1, 1000 do t[i] = i end return #t == 1000"));
    CHECK(run_true(vm, "return require('util').double(2) == 4"));
    /* strings count too */
    CHECK(run_fails(vm, "local s = string.rep(('x'):rep(1024), 64 * 1024) return #s", INSTRUCTIONS,
                    "memory budget", NULL, NULL));
    /* pcall cannot catch running out of memory, and the state stays usable */
    CHECK(run_fails(vm, "local ok = pcall(string.rep, ('x'):rep(1024), 64 * 1024) return 'swallowed'", INSTRUCTIONS,
                    "memory budget", NULL, NULL));
    CHECK(run_true(vm, "return #string.rep('x', 1024) == 1024"));
    CHECK(pl_vm_memory_used(vm) < MEMORY_LIMIT);
    pl_vm_release(vm);
}

TEST(load_file_errors) {
    pl_vm *vm = new_vm();
    if (!vm) return;
    lua_State *L = pl_vm_lua(vm);
    int top = lua_gettop(L);
    char *err = NULL;
    CHECK(pl_vm_load_file(vm, pl_vm_lua(vm), "bad.lua", &err) != 0);
    CHECK(lua_gettop(L) == top);
    CHECK(err && strncmp(err, "bad.lua:5:", 10) == 0);
    if (err) printf("#   message: %s\n", err);
    free(err);
    err = NULL;
    CHECK(pl_vm_load_file(vm, pl_vm_lua(vm), "missing.lua", &err) != 0);
    CHECK(lua_gettop(L) == top);
    CHECK(err && strstr(err, "missing.lua"));
    free(err);
    err = NULL;
    /* a good file is pushed as a function named after its path */
    CHECK(pl_vm_load_file(vm, pl_vm_lua(vm), "hello.lua", &err) == 0);
    CHECK(lua_gettop(L) == top + 1 && lua_isfunction(L, -1));
    lua_pushstring(L, "C");
    CHECK(pl_vm_run(vm, 1, 1, 100, &err) == 0);
    CHECK_STR(lua_tostring(L, -1), "hello from C");
    lua_settop(L, top);
    CHECK(pl_vm_load_file(vm, pl_vm_lua(vm), "lib/money.lua", &err) == 0);
    lua_Debug ar;
    lua_getinfo(L, ">S", &ar);
    CHECK_STR(ar.short_src, "lib/money.lua");
    lua_settop(L, top);
    pl_vm_release(vm);
}

int main(void) {
    make_bot_dir();
    RUN(new_and_accessors);
    RUN(run_returns_results);
    RUN(dangerous_globals_absent);
    RUN(os_is_restricted);
    RUN(load_is_text_only);
    RUN(collectgarbage_is_limited);
    RUN(require_inside_bot_folder);
    RUN(require_outside_refused);
    RUN(instruction_budget_aborts_loop);
    RUN(instruction_budget_is_per_run);
    RUN(pcall_cannot_swallow_abort);
    RUN(coroutine_cannot_swallow_abort);
    RUN(memory_budget);
    RUN(load_file_errors);
    remove_bot_dir();
    return check_done();
}
