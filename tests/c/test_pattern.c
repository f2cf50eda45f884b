/* test_pattern: the counted pattern matcher (pattern.h) and the string
 * functions a bot's state gets from it (pattern_lua.h).
 *
 * The differential test runs the same calls against Lua's own string
 * library (a plain state) and against a bot's state, and compares every
 * result and every error message; its cases are random patterns and
 * subjects over a small alphabet (fixed seed), so that matches, failures
 * and malformed patterns all happen often. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/pattern.h"
#include "bot_vm.h"
#include "check.h"
#include "sandbox/vm.h"

#define INSTRUCTIONS 1000000L
#define CORPUS_SIZE 40000
#define SHOW_DIFFERENCES 8

static pl_vm *new_vm(long instructions, long time_limit_ms) {
    return test_bot_vm("patternbot", "/nonexistent", 256u << 20, instructions, time_limit_ms);
}

static lua_State *new_stock(void) {
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    return L;
}

/* Runs code under vm's budget; PL_OK with one result on the stack, or
 * PL_ERR with *err set. */
static int run(pl_vm *vm, const char *code, char **err) {
    lua_State *L = pl_vm_lua(vm);
    if (luaL_loadbufferx(L, code, strlen(code), "@chunk.lua", "t") != LUA_OK) {
        *err = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return pl_vm_run(vm, 0, 1, 100, err);
}

/* Runs code that must return true. */
static int run_true(pl_vm *vm, const char *code) {
    char *err = NULL;
    lua_State *L = pl_vm_lua(vm);
    int top = lua_gettop(L);
    int ok = run(vm, code, &err) == 0;
    if (!ok) printf("#   %s\n#   -> error: %s\n", code, err);
    else if (!lua_toboolean(L, -1)) {
        printf("#   %s\n#   -> returned %s\n", code, luaL_tolstring(L, -1, NULL));
        ok = 0;
    }
    lua_settop(L, top);
    free(err);
    return ok;
}

/* Runs code that must fail with a message containing want. */
static int run_fails(pl_vm *vm, const char *code, const char *want) {
    char *err = NULL;
    lua_State *L = pl_vm_lua(vm);
    int top = lua_gettop(L);
    int rc = run(vm, code, &err);
    int ok = rc != 0 && err && strstr(err, want);
    if (!ok) printf("#   %s\n#   -> rc %d, \"%s\", want \"%s\"\n", code, rc, err ? err : "(none)", want);
    lua_settop(L, top);
    free(err);
    return ok;
}

/* --- the core, without Lua -------------------------------------------------- */

typedef struct {
    long charged;
    long allow; /* stop once more than this was charged */
    int calls;
} meter;

static int count_charge(void *ctx, long steps) {
    meter *t = ctx;
    t->charged += steps;
    t->calls++;
    return t->charged <= t->allow;
}

/* Matches pattern against subject from offset 0; returns the outcome. */
static int core_find(const char *subject, const char *pattern, meter *t, size_t *start, size_t *end) {
    static pl_pattern m;
    pl_pattern_init(&m, subject, strlen(subject), pattern, strlen(pattern), count_charge, t);
    int r = pl_pattern_find(&m, 0, 0, start, end);
    if (r >= 0 && !count_charge(t, pl_pattern_take_uncharged(&m))) r = PL_PATTERN_OVER;
    return r;
}

TEST(core_matches_and_counts) {
    meter t = {.allow = 1L << 40};
    size_t start = 0, end = 0;
    CHECK(core_find("hello world", "o w", &t, &start, &end) == PL_PATTERN_YES);
    CHECK(start == 4 && end == 7);
    CHECK(t.charged > 0 && t.calls == 1);
    CHECK(core_find("key = value", "(%w+)%s*=%s*(%w+)", &t, &start, &end) == PL_PATTERN_YES);
    CHECK(start == 0 && end == 11);
    CHECK(core_find("abc", "x", &t, &start, &end) == PL_PATTERN_NO);
    CHECK(core_find("abc", "[a", &t, &start, &end) == PL_PATTERN_ERROR);
    /* the pathological pattern is stopped by its charge, whatever it holds */
    char subject[301];
    memset(subject, 'a', 300);
    subject[300] = '\0';
    t = (meter){.allow = 100000};
    CHECK(core_find(subject, ".-.-.-.-b$", &t, &start, &end) == PL_PATTERN_OVER);
    CHECK(t.charged > 100000 && t.charged <= 100000 + PL_PATTERN_CHARGE_EVERY + 64);
    /* without a charge callback the work is not counted */
    pl_pattern m;
    pl_pattern_init(&m, "aaa", 3, "a-$", 3, NULL, NULL);
    CHECK(pl_pattern_find(&m, 0, 0, &start, &end) == PL_PATTERN_YES && start == 0 && end == 3);
    CHECK(pl_pattern_take_uncharged(&m) > 0 && pl_pattern_take_uncharged(&m) == 0);
}

TEST(core_depth_is_luas) {
    /* 199 nested levels are fine, the 200th is "pattern too complex" */
    char subject[256], pattern[512];
    memset(subject, 'a', 200);
    subject[200] = '\0';
    for (int n = 198; n <= 201; n++) {
        for (int i = 0; i < n; i++) memcpy(pattern + 2 * i, "a?", 2);
        pattern[2 * n] = '\0';
        meter t = {.allow = 1L << 40};
        size_t start, end;
        int r = core_find(subject, pattern, &t, &start, &end);
        CHECK(n < 200 ? r == PL_PATTERN_YES : r == PL_PATTERN_ERROR);
    }
    CHECK(pl_pattern_is_plain("hello, world", 12));
    CHECK(pl_pattern_is_plain("a\0b", 3));
    CHECK(!pl_pattern_is_plain("a\0.", 3));
    CHECK(!pl_pattern_is_plain("50%", 3));
}

/* --- the differential test --------------------------------------------------- */

/* The driver both states run: each case is a table {op, s, p, init, plain,
 * repl, max}; the result is one line describing what came back. */
static const char driver[] =
    "local cases = ...\n"
    "local function describe(ok, ...)\n"
    "  local parts = {ok and 'ok' or 'error'}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    local t = math.type(v) or type(v)\n"
    "    if t == 'string' then parts[#parts + 1] = string.format('%q', v)\n"
    "    elseif t == 'table' or t == 'function' then parts[#parts + 1] = t\n"
    "    else parts[#parts + 1] = t .. ':' .. tostring(v) end\n"
    "  end\n"
    "  return table.concat(parts, ' ')\n"
    "end\n"
    "local function by_function(...)\n"
    "  local parts = {}\n"
    "  for i = 1, select('#', ...) do parts[i] = tostring((select(i, ...))) end\n"
    "  local s = select('#', ...) .. ':' .. table.concat(parts, '|')\n"
    "  local k = #s % 6\n"
    "  if k == 0 then return nil elseif k == 1 then return false elseif k == 2 then return s\n"
    "  elseif k == 3 then return #s elseif k == 4 then return s:upper() end\n"
    "  return select('#', ...) > 1 and {} or s:rep(2)\n"
    "end\n"
    "local by_table = {a = 'A', b = false, ab = '<ab>', aa = 7, ['('] = {}, [1] = 'one', [2] = 2.5, [''] = 'E'}\n"
    "local repls = {fn = by_function, tbl = by_table, yes = true}\n"
    "local function gmatch_all(s, p, init)\n"
    "  local it = string.gmatch(s, p, init)\n"
    "  local parts = {}\n"
    "  for _ = 1, 64 do\n"
    "    local r = table.pack(it())\n"
    "    parts[#parts + 1] = describe(true, table.unpack(r, 1, r.n))\n"
    "    if r[1] == nil then break end\n"
    "  end\n"
    "  return table.concat(parts, ' / ')\n"
    "end\n"
    "local out = {}\n"
    "for i, c in ipairs(cases) do\n"
    "  if c.op == 'find' then out[i] = describe(pcall(string.find, c.s, c.p, c.init, c.plain))\n"
    "  elseif c.op == 'match' then out[i] = describe(pcall(string.match, c.s, c.p, c.init))\n"
    "  elseif c.op == 'gmatch' then out[i] = describe(pcall(gmatch_all, c.s, c.p, c.init))\n"
    "  elseif c.op == 'snippet' then out[i] = describe(pcall(load(c.s, '=snippet')))\n"
    "  else\n"
    "    local repl = c.repl\n"
    "    if repls[repl] ~= nil then repl = repls[repl] end\n"
    "    out[i] = describe(pcall(string.gsub, c.s, c.p, repl, c.max))\n"
    "  end\n"
    "end\n"
    "return out\n";

/* A small generator with a fixed seed (xorshift64*). */
static uint64_t seed = 0x2545f4914f6cdd1dULL;

static unsigned pick(unsigned n) {
    seed ^= seed >> 12;
    seed ^= seed << 25;
    seed ^= seed >> 27;
    return (unsigned)((seed * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

static const char *pick_of(const char *const *list, size_t n) { return list[pick((unsigned)n)]; }
#define PICK(list) pick_of(list, sizeof list / sizeof *list)

typedef struct {
    char text[256];
    size_t len;
} bytes;

static void add(bytes *b, const char *s, size_t n) {
    if (b->len + n >= sizeof b->text) return;
    memcpy(b->text + b->len, s, n);
    b->len += n;
}
static void add_str(bytes *b, const char *s) { add(b, s, strlen(s)); }

/* The subjects' alphabet: mostly a and b, so that patterns match. */
static const char alphabet[] = "aaaabbbbcA1 ()[]%.-^$_";

static void random_subject(bytes *b) {
    b->len = 0;
    unsigned n = pick(13);
    for (unsigned i = 0; i < n; i++) {
        if (pick(40) == 0) add(b, "\0", 1);
        else add(b, &alphabet[pick(sizeof alphabet - 1)], 1);
    }
}

/* Single-character classes, the items a quantifier may follow. */
static const char *const singles[] = {
    "a", "a", "b", "b", "c", "A", "1", " ", ".", ".", "_", "-", "^", "$", "]",
    "%a", "%A", "%c", "%C", "%d", "%D", "%g", "%G", "%l", "%L", "%p", "%P", "%s", "%S",
    "%u", "%U", "%w", "%W", "%x", "%X", "%z", "%Z", "%%", "%.", "%(", "%)", "%[", "%]", "%-", "%^", "%$",
    "[ab]", "[^a]", "[a-c]", "[%a_]", "[]a]", "[^]a]", "[a-]", "[-a]", "[%]]", "[.]", "[%d%s]", "[c-a]",
    "[a%-c]", "[%w%p]", "[^%s]", "[b-b]", "[%A]",
};
/* Everything else a pattern may hold, malformed pieces included. */
static const char *const others[] = {
    "(", "(", ")", ")", "()", "%1", "%1", "%2", "%3", "%0", "%9",
    "%b()", "%bab", "%baa", "%b[]", "%f[a]", "%f[^a]", "%f[%w]", "%f[%s]", "%f[]a]",
    "%", "[a", "[", "%fa", "%f", "%f[a", "%b", "%ba", "[%", "[^", "[a%", "(()", "\0", "$",
};
static const char *const quantifiers[] = {"*", "+", "-", "?"};

static void random_pattern(bytes *b) {
    b->len = 0;
    if (pick(5) == 0) add_str(b, "^");
    unsigned n = pick(7);
    for (unsigned i = 0; i < n; i++) {
        const char *piece = pick(4) == 0 ? PICK(others) : PICK(singles);
        add(b, piece, strcmp(piece, "\0") == 0 ? 1 : strlen(piece));
        if (piece[0] != '(' && piece[0] != ')' && pick(3) == 0) add_str(b, PICK(quantifiers));
    }
    if (pick(5) == 0) add_str(b, "$");
}

static const char *const replacements[] = {
    "x", "", "%0", "%1", "%2", "<%1|%2>", "%%", "%", "a%", "%x", "%10", "[%0%0]", "%3", "%9", "-%1-",
};

/* Pushes one random case (a table) onto both states. */
static void push_random_case(lua_State *const states[2]) {
    static const char *const ops[] = {"find", "find", "match", "match", "gmatch", "gsub", "gsub", "gsub"};
    bytes s, p;
    random_subject(&s);
    random_pattern(&p);
    const char *op = PICK(ops);
    int init = pick(4) == 0 ? (int)pick(31) - 15 : 0;
    int plain = pick(6) == 0;
    /* a function, a table, a number; rarely a wrong type */
    static const char *const other_repls[] = {"fn", "fn", "fn", "tbl", "tbl", "tbl", "num", "yes", "nil"};
    const char *repl = pick(3) == 0 ? PICK(other_repls) : PICK(replacements);
    int max = pick(4) == 0 ? (int)pick(5) - 1 : -99;
    int odd_subject = pick(50) == 0;
    for (int i = 0; i < 2; i++) {
        lua_State *L = states[i];
        lua_createtable(L, 0, 7);
        lua_pushstring(L, op);
        lua_setfield(L, -2, "op");
        if (odd_subject) lua_pushinteger(L, 1231);
        else lua_pushlstring(L, s.text, s.len);
        lua_setfield(L, -2, "s");
        lua_pushlstring(L, p.text, p.len);
        lua_setfield(L, -2, "p");
        if (init) {
            lua_pushinteger(L, init);
            lua_setfield(L, -2, "init");
        }
        lua_pushboolean(L, plain);
        lua_setfield(L, -2, "plain");
        if (strcmp(repl, "num") == 0) lua_pushinteger(L, 7);
        else if (strcmp(repl, "nil") != 0) lua_pushstring(L, repl);
        else lua_pushnil(L);
        lua_setfield(L, -2, "repl");
        if (max != -99) {
            lua_pushinteger(L, max);
            lua_setfield(L, -2, "max");
        }
    }
}

/* Cases written by hand: argument errors (the function's name in the
 * message), start positions, empty matches, deep and long patterns. */
static const char *const snippets[] = {
    "return ('x'):find({})",
    "return ('x'):find()",
    "return string.find()",
    "return string.find('x', 'x', 'y')",
    "return string.find('x', 'x', 1.5)",
    "return ('x'):match(nil)",
    "return ('x'):gmatch()",
    "return string.gmatch('x', 'x', {})",
    "return ('x'):gsub('x')",
    "return ('x'):gsub('x', true)",
    "return string.gsub('x', 'x', nil, 'y')",
    "return string.gsub('x', 'x', 'y', 1.5)",
    "return string.gsub()",
    "return ('abc'):find('b', -1), ('abc'):find('b', -2), ('abc'):find('b', -100), ('abc'):find('', 4), ('abc'):find('', 5)",
    "return ('abc'):find('', 0), ('abc'):match('', 3), ('abc'):match('()', 4), ('abc'):match('()', 5)",
    "return ('abc'):find('b', math.maxinteger), ('abc'):find('b', math.mininteger), ('abc'):find('.', math.mininteger)",
    "local t = {} for a, b in ('abc'):gmatch('()(.?)') do t[#t + 1] = a .. b end return table.concat(t, ',')",
    "local t = {} for k in ('one two  three'):gmatch('%a*') do t[#t + 1] = '[' .. k .. ']' end return table.concat(t)",
    "local t = {} for k in ('abc'):gmatch('', 2) do t[#t + 1] = k end return #t",
    "local t = {} for k in ('abc'):gmatch('.', 10) do t[#t + 1] = k end return #t",
    "local t = {} for k in ('abc'):gmatch('.', -2) do t[#t + 1] = k end return table.concat(t)",
    "return ('abc'):gsub('', '-'), ('abc'):gsub('b*', '-'), ('abc'):gsub('%w*', '<%0>')",
    "return ('hello world'):gsub('o', {o = 0}), ('hello world'):gsub('(o)', '%1%1', 1)",
    "return ('hello'):gsub('', 'x', 0), ('hello'):gsub('', 'x', -1), ('hello'):gsub('l', 'L', 1)",
    "return string.gsub(12345, 3, 'x'), string.gsub(12345, 9, 'x'), string.find(12345, 34)",
    "return ('abc'):gsub('%w', '%%%0')",
    "return ('abc'):gsub('(b)', '%2')",
    "return ('abc'):gsub('b', '%1'), ('abc'):gsub('()b', '%1')",
    "return ('abc'):gsub('(b', 'x')",
    "return ('abc'):gsub('(b', '%1')",
    "return ('abc'):gsub('(b', {})",
    "return ('abc'):gsub('.', {a = true})",
    "return ('abc'):gsub('.', function() return 1.5 end)",
    "return ('abc'):gsub('()', function(p) return p end)",
    "return ('a,b,,c'):gsub(',', ';', 2)",
    "return ('THE (quick) fox'):find('%((%a+)%)')",
    "return ('f(a(b)c)d'):match('%b()'), ('x'):match('%b()'), ('(('):match('%b()')",
    "return ('THE (quick) fox'):find('%f[%a]%a+%f[%A]', 5)",
    "return ('hello'):find('l+'), ('hello'):match('(h)(e)(l+)()')",
    "return (('a'):rep(199)):find(('a?'):rep(199))",
    "return (('a'):rep(200)):find(('a?'):rep(200))",
    "return (('a'):rep(300)):find(('(a)'):rep(32))",
    "return (('a'):rep(300)):find(('(a)'):rep(33))",
    "return (('a'):rep(300)):find(('()'):rep(32))",
    "return (('a'):rep(100)):find(('a-'):rep(100) .. '$')",
    "return (('a'):rep(100)):find(('a*'):rep(199))",
    "return (('ab'):rep(1000)):find('(ab)%1%1%1$')",
    "return (('x'):rep(5000)):find('x*y')",
    "return (('x'):rep(5000) .. 'y'):find('.-y')",
    "return ('a\\0b\\0c'):find('%z'), ('a\\0b'):find('\\0b'), ('a\\0b'):find('[\\0]b'), ('a\\0b'):gsub('%Z', '.')",
    "return ('\\200\\255abc'):find('[\\128-\\255]+'), ('\\255'):find('%a')",
    "return ('x^y'):find('^y'), ('x^y'):find('x^'), ('^'):find('^^'), ('$'):find('$$'), ('a$b'):find('$b')",
    "return ('[]'):find('[]]'), ('-'):find('[a-]'), ('-'):find('[-]'), ('^'):find('[^^]'), ('^'):find('[]^]')",
    "return ('abc'):find('b', 1, true), ('a.c'):find('.', 1, true), ('a.c'):find('.', 3, true), ('abc'):find('', 10, true)",
    "return ('abc'):find('b', 2, false), ('abc'):find('b', nil, 1)",
};

static void push_snippet(lua_State *const states[2], const char *code) {
    for (int i = 0; i < 2; i++) {
        lua_createtable(states[i], 0, 2);
        lua_pushstring(states[i], "snippet");
        lua_setfield(states[i], -2, "op");
        lua_pushstring(states[i], code);
        lua_setfield(states[i], -2, "s");
    }
}

/* Prints a Lua value of a case readably. */
static void show_field(lua_State *L, int table, const char *field) {
    lua_getfield(L, table, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    size_t len;
    const char *v = luaL_tolstring(L, -1, &len);
    printf(" %s=\"", field);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 32 && c < 127 && c != '"' && c != '\\') putchar(c);
        else printf("\\%u", c);
    }
    printf("\"");
    lua_pop(L, 2);
}

/* Runs the driver on the cases (table on top of L; popped) and leaves its
 * results; the bot state runs it as a handler run under its budget. */
static int run_driver(lua_State *L, pl_vm *vm) {
    if (luaL_loadbufferx(L, driver, strlen(driver), "=driver", "t") != LUA_OK) return 0;
    lua_insert(L, -2);
    if (vm) {
        char *err = NULL;
        int ok = pl_vm_run(vm, 1, 1, 100, &err) == 0;
        if (!ok) printf("#   driver (ours): %s\n", err);
        free(err);
        return ok;
    }
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
    printf("#   driver (stock): %s\n", lua_tostring(L, -1));
    return 0;
}

TEST(differential) {
    pl_vm *vm = new_vm(1L << 40, 0);
    if (!vm) return;
    lua_State *stock = new_stock();
    lua_State *const states[2] = {stock, pl_vm_lua(vm)};
    int total = (int)(sizeof snippets / sizeof *snippets) + CORPUS_SIZE;
    for (int i = 0; i < 2; i++) lua_createtable(states[i], total, 0);
    for (int n = 1; n <= total; n++) {
        if (n <= (int)(sizeof snippets / sizeof *snippets)) push_snippet(states, snippets[n - 1]);
        else push_random_case(states);
        for (int i = 0; i < 2; i++) lua_rawseti(states[i], -2, n);
    }
    /* keep the cases (for printing) below the driver's results */
    for (int i = 0; i < 2; i++) lua_pushvalue(states[i], -1);
    int ran = run_driver(stock, NULL) && run_driver(states[1], vm);
    CHECK(ran);
    int differences = 0, errors = 0;
    for (int n = 1; ran && n <= total; n++) {
        lua_rawgeti(stock, -1, n);
        lua_rawgeti(states[1], -1, n);
        const char *want = lua_tostring(stock, -1), *got = lua_tostring(states[1], -1);
        if (want && strncmp(want, "error", 5) == 0) errors++;
        if (!want || !got || strcmp(want, got) != 0) {
            if (++differences <= SHOW_DIFFERENCES) {
                lua_rawgeti(stock, -3, n);
                printf("#   case %d:", n);
                static const char *const fields[] = {"op", "s", "p", "init", "plain", "repl", "max"};
                for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) show_field(stock, -1, fields[f]);
                printf("\n#     stock: %s\n#     ours:  %s\n", want ? want : "(none)", got ? got : "(none)");
                lua_pop(stock, 1);
            }
        }
        lua_pop(stock, 1);
        lua_pop(states[1], 1);
    }
    printf("#   %d cases, %d raised an error, %d differences\n", total, errors, differences);
    CHECK(differences == 0);
    /* a fair share of the cases raise errors, a fair share do not */
    CHECK(errors > total / 20 && errors < total / 2);
    lua_close(stock);
    pl_vm_release(vm);
}

/* --- budgets ------------------------------------------------------------------------ */

#define PATHOLOGICAL "(('a'):rep(300)):find('.-.-.-.-b$')"

TEST(pathological_pattern_aborts) {
    pl_vm *vm = new_vm(INSTRUCTIONS, 0);
    if (!vm) return;
    CHECK(run_fails(vm, "return " PATHOLOGICAL, "instruction budget"));
    CHECK(run_fails(vm, "return (('a'):rep(300)):match('.-.-.-.-b$')", "instruction budget"));
    CHECK(run_fails(vm, "for x in (('a'):rep(300)):gmatch('.-.-.-.-b$') do end return 1", "instruction budget"));
    CHECK(run_fails(vm, "return (('a'):rep(300)):gsub('.-.-.-.-b$', 'x')", "instruction budget"));
    /* the message names the script's line */
    CHECK(run_fails(vm, "local s = ('a'):rep(300)\nreturn s:find('.-.-.-.-b$')", "chunk.lua:2:"));
    /* pcall, xpcall and coroutines cannot swallow it */
    CHECK(run_fails(vm, "local ok = pcall(string.find, ('a'):rep(300), '.-.-.-.-b$') return 'swallowed'",
                    "instruction budget"));
    CHECK(run_fails(vm, "local ok = pcall(function() return " PATHOLOGICAL " end) return 'swallowed'",
                    "instruction budget"));
    CHECK(run_fails(vm, "local ok = xpcall(function() return " PATHOLOGICAL " end, print) return 'swallowed'",
                    "instruction budget"));
    CHECK(run_fails(vm,
                    "local ok = coroutine.resume(coroutine.create(function() return " PATHOLOGICAL " end))\n"
                    "return 'swallowed'",
                    "instruction budget"));
    CHECK(run_fails(vm, "for i = 1, 10 do pcall(string.find, ('a'):rep(300), '.-.-.-.-b$') end return 1",
                    "instruction budget"));
    /* an innocent run afterwards works */
    CHECK(run_true(vm, "return ('hello world'):find('o w') == 5 and ('a=1'):match('(%w+)=(%w+)') == 'a'"));
    pl_vm_release(vm);
}

TEST(time_budget_stops_a_match) {
    /* an instruction budget no match reaches: the time budget stops it */
    pl_vm *vm = new_vm(1L << 40, 50);
    if (!vm) return;
    CHECK(run_fails(vm, "return " PATHOLOGICAL, "time budget"));
    CHECK(run_true(vm, "return ('abc'):find('b') == 2"));
    pl_vm_release(vm);
}

TEST(big_subjects_are_charged) {
    pl_vm *vm = new_vm(INSTRUCTIONS, 0);
    if (!vm) return;
    static const char big[] = "local s = ('x'):rep(1 << 16):rep(320)\n"; /* 20 MB */
    char code[512];
    snprintf(code, sizeof code, "%sfor _ = 1, 150000 do s:find('y', 1, true) end return 'done'", big);
    CHECK(run_fails(vm, code, "instruction budget"));
    snprintf(code, sizeof code, "%sfor _ = 1, 150000 do s:find('y') end return 'done'", big);
    CHECK(run_fails(vm, code, "instruction budget"));
    snprintf(code, sizeof code, "%sreturn s:find('y.')", big);
    CHECK(run_fails(vm, code, "instruction budget"));
    snprintf(code, sizeof code, "%sreturn s:match('.*y')", big);
    CHECK(run_fails(vm, code, "instruction budget"));
    snprintf(code, sizeof code, "%sreturn s:gsub('x', 'y')", big);
    CHECK(run_fails(vm, code, "instruction budget"));
    CHECK(run_fails(vm, "local s = '(' .. ('x'):rep(1 << 16):rep(320) return s:match('%b()')", "instruction budget"));
    /* a plain search whose first byte is everywhere costs a step a place */
    CHECK(run_fails(vm, "local s = ('a'):rep(1 << 16):rep(320) return s:find(('a'):rep(1000) .. 'b', 1, true)",
                    "instruction budget"));
    /* many short matches add up: a few thousand instructions, two million steps */
    CHECK(run_fails(vm, "local s = ('a'):rep(1000) for _ = 1, 1000 do s:find('[b]') end return 'done'",
                    "instruction budget"));
    /* building replacements is counted: 20,000 positions written per match */
    CHECK(run_fails(vm, "return ('a'):rep(1000):gsub('()', ('%1'):rep(20000))", "instruction budget"));
    /* so is finding the end of a long set, even of a malformed one */
    CHECK(run_fails(vm, "local p = '[' .. ('a'):rep(1 << 20)\n"
                        "for _ = 1, 1000 do pcall(string.find, 'x', p) end return 'done'",
                    "instruction budget"));
    /* the state goes on working */
    CHECK(run_true(vm, "return ('abc'):gsub('b', 'x') == 'axc'"));
    pl_vm_release(vm);
}

TEST(gsub_function_is_counted) {
    pl_vm *vm = new_vm(INSTRUCTIONS, 0);
    if (!vm) return;
    /* a thousand calls of a thousand iterations: over a million instructions */
    CHECK(run_fails(vm,
                    "local n = 0\n"
                    "local s = ('a'):rep(1000):gsub('a', function() for i = 1, 1000 do n = n + 1 end end)\n"
                    "return n",
                    "instruction budget"));
    CHECK(run_fails(vm,
                    "local ok = pcall(string.gsub, ('a'):rep(1000), 'a', function() while true do end end)\n"
                    "return 'swallowed'",
                    "instruction budget"));
    CHECK(run_true(vm,
                   "local n = 0\n"
                   "local s, k = ('a'):rep(100):gsub('a', function(c) n = n + 1 return c:upper() end)\n"
                   "return n == 100 and k == 100 and s == ('A'):rep(100)"));
    pl_vm_release(vm);
}

TEST(big_ordinary_matches_work) {
    pl_vm *vm = new_vm(INSTRUCTIONS, 0);
    if (!vm) return;
    CHECK(run_true(vm, "local s = ('hello world '):rep(5000)\n"
                       "local _, words = s:gsub('%a+', '%0')\n"
                       "return words == 10000 and #s == 60000"));
    CHECK(run_true(vm, "local s = ('hello world '):rep(5000) .. 'end'\n"
                       "return s:find('end', 1, true) == 60001 and s:find('e[n]d') == 60001"));
    CHECK(run_true(vm, "local s = ('k=v;'):rep(5000)\n"
                       "local n = 0 for k, v in s:gmatch('(%w+)=(%w+)') do n = n + 1 end\n"
                       "return n == 5000"));
    CHECK(run_true(vm, "local s = ('x'):rep(200000)\n"
                       "return #s:match('^x*$') == 200000 and s:find('.-$') == 1"));
    /* outside a handler run nothing is counted */
    lua_State *L = pl_vm_lua(vm);
    CHECK(luaL_dostring(L, "return (('a'):rep(30)):find('.-.-.-b$')") == LUA_OK && lua_isnil(L, -1));
    lua_settop(L, 0);
    pl_vm_release(vm);
}

int main(void) {
    RUN(core_matches_and_counts);
    RUN(core_depth_is_luas);
    RUN(differential);
    RUN(pathological_pattern_aborts);
    RUN(time_budget_stops_a_match);
    RUN(big_subjects_are_charged);
    RUN(gsub_function_is_counted);
    RUN(big_ordinary_matches_work);
    return check_done();
}
