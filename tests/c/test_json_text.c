/* test_json_text: pl_json_text_from_lua (json_lua.h, on json_text.h), the writer of JSON
 * text straight from Lua values, against the tree path it stands in for:
 * json_dumps(pl_json_from_lua(...), JSON_COMPACT | JSON_ENCODE_ANY) must
 * give the same text, or the same error message, for every value — chosen
 * ones, every short byte sequence as a string and as a key, and many
 * random values. Then the budgets: the same charge per value, a text
 * counted in a scope like jansson's, the run over its budget. */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/text.h"
#include "bot_vm.h"
#include "check.h"
#include "sandbox/json_alloc.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"

static int mismatches;

/* Both paths on the value at L's top; 1 when they agree (text and length,
 * or error message), else prints both. The stack is left as it was. */
static int same_as_tree(lua_State *L, const char *what) {
    int top = lua_gettop(L);
    char *tree_err = NULL, *text_err = NULL;
    json_t *tree = pl_json_from_lua(L, -1, "v", &tree_err);
    char *want = tree ? json_dumps(tree, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(tree);
    size_t len = 0;
    char *got = pl_json_text_from_lua(L, -1, "v", &len, &text_err);
    int ok = lua_gettop(L) == top;
    if (tree && !want) ok = 0; /* jansson refused what the walk accepted */
    if (want || got) ok = ok && want && got && strcmp(want, got) == 0 && len == strlen(want);
    else ok = ok && tree_err && text_err && strcmp(tree_err, text_err) == 0;
    if (!ok && mismatches++ < 10)
        printf("#   %s:\n#     tree %s / %s\n#     text %s / %s\n", what, want ? want : "(null)",
               tree_err ? tree_err : "-", got ? got : "(null)", text_err ? text_err : "-");
    free(want);
    free(got);
    free(tree_err);
    free(text_err);
    return ok;
}

/* Evaluates `return <expr>` and compares both paths on its value. */
static int same_for(lua_State *L, const char *expr) {
    char code[4096];
    snprintf(code, sizeof code, "local json = require 'json'\nreturn %s", expr);
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        printf("#   lua error: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    int ok = same_as_tree(L, expr);
    lua_pop(L, 1);
    return ok;
}

/* The text of expr (new), or NULL with *err. */
static char *text_of(lua_State *L, const char *expr, char **err) {
    char code[1024];
    snprintf(code, sizeof code, "local json = require 'json'\nreturn %s", expr);
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) return NULL;
    char *text = pl_json_text_from_lua(L, -1, "session", NULL, err);
    lua_pop(L, 1);
    return text;
}

TEST(chosen_values) {
    lua_State *L = test_json_state();
    static const char *const values[] = {
        /* scalars */
        "nil", "true", "false", "json.null", "0", "-1", "42", "math.maxinteger", "math.mininteger",
        "0.1", "-0.0", "1.0", "2.5", "1e300", "-1e-300", "1e-7", "2^53", "2^63", "1.5e16", "123.456",
        "1/3", "-1/3", "5e-324", "1.7976931348623157e308", "100.0", "1e16", "1e17",
        /* strings: escapes, control characters, what is not escaped */
        "''", "'plain'", "'say \"hi\"'", "'back\\\\slash'", "'a/b'", "'\\b\\f\\n\\r\\t'",
        "'\\0 nul'", "'\\1\\2\\3\\31\\127'", "'caf\\xc3\\xa9'", "'\\xe2\\x82\\xac 7.20'",
        "'\\xf0\\x9f\\x98\\x80 emoji'", "'\\u{10FFFF}'", "'\\u{FFFF}'", "'\\u{7FF}\\u{800}'",
        "'\\xe2\\x98\\x95\"\\n\\xe2\\x98\\x95'", "('x'):rep(5000)", "('\\n'):rep(300)",
        "('\\xe2\\x82\\xac\"'):rep(200)",
        /* strings that are not UTF-8 */
        "'caf\\xc3'", "'\\xc0\\x80'", "'\\xed\\xa0\\x80'", "'\\xf4\\x90\\x80\\x80'", "'\\xff'",
        "'ok \\x80'", "'\\xe2\\x82'", "'\\xf0\\x9f\\x98'",
        /* tables */
        "{}", "json.array()", "json.array{}", "{1, 2, 3}", "{'a', {b = 1}, json.array()}",
        "{a = 1}", "{a = {b = {c = {d = 'deep'}}}}", "{[1] = 'x', [2] = 'y'}",
        "json.array{1, nil, 3}", "setmetatable({n = 1}, getmetatable(json.array()))",
        "{list = json.array(), obj = {}, null = json.null, t = true, f = false}",
        "{['k\"q'] = 1, ['k\\\\b'] = 2, ['\\n'] = 3, [''] = 4}",
        "(function() local t = {} for i = 1, 200 do t['k' .. i] = i end return t end)()",
        "(function() local t = {} for i = 1, 200 do t[i] = {i, tostring(i), i / 7} end return t end)()",
        "{stack = {{flow = 'main', step = 'start', slots = {sku = 'latte', qty = 2, price = 3.8}}}, "
        "locale = 'en', cart = {items = json.array(), id = 'c1'}, turn = 3}",
        /* refusals, with the key path */
        "print", "{f = print}", "{a = {1, 2, {f = print}}}", "coroutine.create(print)", "io and io.stdout or print",
        "0/0", "1/0", "-1/0", "{n = 0/0}", "{1, 2, 1/0}", "{[1] = 'a', [3] = 'c'}", "{[0] = 'z'}",
        "{[-1] = 'z'}", "{1, 2, x = 3}", "{x = 3, 1, 2}", "{[1.5] = 'f'}", "{[true] = 1}",
        "{[{}] = 1}", "{s = 'caf\\xc3'}", "{['caf\\xc3'] = 1}", "{a = {['\\xff'] = {}}}",
        "{list = {1, 2, {3, 'bad\\xc3'}}}", "{stack = {{slots = {cb = function() end}}}}",
        "(function() local t = {} t.self = t return t end)()",
        "(function() local t = {} for i = 1, 64 do t = {t} end return t end)()",
        "(function() local t = {} for i = 1, 65 do t = {t} end return t end)()",
        "(function() local t = {} for i = 1, 100 do t = {x = t} end return t end)()",
        /* keys with a NUL byte: jansson cuts them (and they may collide) */
        "{['a\\0b'] = 1}", "{['a\\0b'] = 1, ['a\\0c'] = 2}", "{x = {['\\0'] = 1, [''] = 2}}",
    };
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) CHECK(same_for(L, values[i]));
    lua_close(L);
}

/* Every string of one and two bytes, and three- and four-byte strings
 * around each boundary of UTF-8, as a value and as a key: accepted exactly
 * when pl_text_is_utf8 accepts it, and then written as jansson writes it. */
static const unsigned char edges[] = {0x00, 0x0A, 0x1F, 0x22, 0x41, 0x5C, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0,
                                      0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
static const unsigned char last_edges[] = {0x41, 0x7F, 0x80, 0xBF, 0xC0};

static long sequences, not_utf8, sequence_failures;

static void check_sequence(lua_State *L, const unsigned char *s, size_t len) {
    int valid = pl_text_is_utf8((const char *)s, len);
    lua_pushlstring(L, (const char *)s, len); /* as a value */
    char *err = NULL;
    char *text = pl_json_text_from_lua(L, -1, "v", NULL, &err);
    int ok = (text != NULL) == valid;
    free(text);
    free(err);
    /* the comparison with jansson for every valid one, some of the rest */
    int compare = valid || (sequences & 15) == 0;
    if (ok && compare) ok = same_as_tree(L, "a short string");
    lua_pop(L, 1);
    lua_createtable(L, 0, 1); /* as a key */
    lua_pushlstring(L, (const char *)s, len);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    if (ok && compare) ok = same_as_tree(L, "a short key");
    lua_pop(L, 1);
    sequences++;
    not_utf8 += !valid;
    if (!ok && sequence_failures++ < 5) {
        printf("#   bytes");
        for (size_t i = 0; i < len; i++) printf(" %02x", s[i]);
        printf("\n");
    }
}

TEST(every_short_byte_sequence) {
    lua_State *L = test_json_state();
    unsigned char s[4];
    for (int a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        check_sequence(L, s, 1);
        for (int b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            check_sequence(L, s, 2);
            if (a < 0xC0) continue; /* longer ones start with a lead byte */
            for (size_t c = 0; c < sizeof edges; c++) {
                s[2] = edges[c];
                check_sequence(L, s, 3);
                if (a < 0xF0 || a > 0xF7) continue;
                for (size_t d = 0; d < sizeof last_edges; d++) {
                    s[3] = last_edges[d];
                    check_sequence(L, s, 4);
                }
            }
        }
    }
    printf("#   %ld sequences, %ld not UTF-8\n", sequences, not_utf8);
    CHECK(sequence_failures == 0);
    lua_close(L);
}

/* Strings of up to 40 bytes, plain but for one edge byte (and the byte
 * after it) at each place: the writer skips plain text 8 bytes at a time,
 * and must stop at any byte of any word. As values and as keys. */
TEST(long_strings_with_an_edge_byte_anywhere) {
    lua_State *L = test_json_state();
    unsigned char s[41];
    long before = sequence_failures;
    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t e = 0; e < sizeof edges; e++) {
                memset(s, 'a', len);
                s[at] = edges[e];
                check_sequence(L, s, len);
                if (at + 1 < len) {
                    s[at + 1] = 0xA9; /* a lead byte's continuation (é is C3 A9) */
                    check_sequence(L, s, len);
                }
            }
        }
    }
    CHECK(sequence_failures == before);
    lua_close(L);
}

/* --- random values ------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static int one_in(int n) { return rng() % (uint64_t)n == 0; }

/* A random string: mostly words, some escapes and UTF-8, rarely a byte
 * that breaks it (when broken is set). */
static void push_random_string(lua_State *L, int broken) {
    static const char *const pieces[] = {"latte", "size", " ", "\"", "\\", "/", "\n", "\t", "\x01",
                                         "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xe2\x98\x95",
                                         "\xf0\x9f\x98\x80", "{", "}", "[", "]", ":", ",", "0", "\0"};
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = (int)(rng() % 8);
    for (int i = 0; i < n; i++) {
        const char *p = pieces[rng() % (sizeof pieces / sizeof *pieces)];
        luaL_addlstring(&b, p, *p ? strlen(p) : 1);
    }
    if (broken && one_in(40)) luaL_addchar(&b, (char)(0x80 | (rng() & 0x7f)));
    luaL_pushresult(&b);
}

static void push_random_number(lua_State *L) {
    switch (rng() % 6) {
    case 0: lua_pushinteger(L, (lua_Integer)(rng() % 1000) - 500); break;
    case 1: lua_pushinteger(L, (lua_Integer)rng()); break;
    case 2: lua_pushnumber(L, (double)(int64_t)(rng() % 100000) / 100.0); break;
    case 3: {
        uint64_t bits = rng();
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, isfinite(d) || one_in(20) ? d : 0.5); /* rarely NaN or infinity */
        break;
    }
    case 4: lua_pushnumber(L, ldexp((double)(rng() % 1000), (int)(rng() % 200) - 100)); break;
    default: lua_pushnumber(L, (double)(rng() % 10)); break;
    }
}

static void push_random(lua_State *L, int depth, int broken);

/* A table: an object, a list, a marked list (maybe with holes), rarely a
 * mix of both or a sparse list. */
static void push_random_table(lua_State *L, int depth, int broken) {
    int n = (int)(rng() % 6);
    int kind = (int)(rng() % 3);
    lua_createtable(L, 0, n);
    if (kind == 0) {
        for (int i = 0; i < n; i++) {
            push_random_string(L, broken);
            push_random(L, depth + 1, broken);
            lua_rawset(L, -3);
        }
    } else {
        for (int i = 1; i <= n; i++) {
            if (kind == 2 && one_in(4)) continue; /* a hole, in a marked list: null */
            push_random(L, depth + 1, broken);
            lua_rawseti(L, -2, i);
        }
        if (kind == 2) pl_json_mark_array(L, -1);
    }
    if (broken && one_in(30)) { /* a mixed table, or a sparse one */
        lua_pushinteger(L, n + 2);
        lua_setfield(L, -2, one_in(2) ? "named" : "x");
        lua_pushinteger(L, 1);
        lua_rawseti(L, -2, n + 3);
    }
}

static void push_random(lua_State *L, int depth, int broken) {
    luaL_checkstack(L, 8, "random value");
    int pick = (int)(rng() % (depth > 6 ? 6 : 9));
    switch (pick) {
    case 0: push_random_string(L, broken); break;
    case 1: push_random_number(L); break;
    case 2: lua_pushboolean(L, one_in(2)); break;
    case 3: pl_json_push_null(L); break;
    case 4: push_random_string(L, broken); break;
    case 5:
        if (broken && one_in(60)) lua_pushcfunction(L, luaopen_base);
        else push_random_number(L);
        break;
    default: push_random_table(L, depth, broken); break;
    }
}

TEST(random_values) {
    lua_State *L = test_json_state();
    int agreed = 0, texts = 0;
    for (int i = 0; i < 20000; i++) {
        lua_createtable(L, 0, 4); /* a root object, like a session */
        for (int k = 0, n = (int)(rng() % 6) + 1; k < n; k++) {
            push_random_string(L, i % 3 == 0);
            push_random(L, 1, i % 3 == 0);
            lua_rawset(L, -3);
        }
        agreed += same_as_tree(L, "a random value");
        char *text = pl_json_text_from_lua(L, -1, "v", NULL, NULL);
        texts += text != NULL;
        free(text);
        lua_pop(L, 1);
    }
    printf("#   20000 random values, %d written, the rest refused\n", texts);
    CHECK(agreed == 20000);
    CHECK(texts > 10000 && texts < 20000); /* both paths were taken */
    lua_close(L);
}

TEST(error_messages_name_the_key) {
    lua_State *L = test_json_state();
    char *err = NULL;
    char *text = text_of(L, "{stack = {{flow = 'main', slots = {cb = print}}}}", &err);
    CHECK(text == NULL);
    CHECK_STR(err, "session.stack[1].slots.cb: a function cannot be stored (only strings, numbers, booleans and "
                   "tables of them)");
    free(err);
    err = NULL;
    text = text_of(L, "{cart = {items = {[1] = 'a', [3] = 'c'}}}", &err);
    CHECK(text == NULL);
    CHECK_STR(err, "session.cart.items: a list with holes (or non-positive indexes) cannot be stored");
    free(err);
    err = NULL;
    text = text_of(L, "{name = 'caf\\xc3'}", &err);
    CHECK_STR(err, "session.name: the string is not valid UTF-8");
    free(err);
    err = NULL;
    text = text_of(L, "{total = 0/0}", &err);
    CHECK_STR(err, "session.total: NaN and infinity cannot be stored");
    free(err);
    /* an earlier message in *err is replaced; none is needed */
    err = pl_strdup("old");
    text = text_of(L, "{ok = true}", &err);
    CHECK_STR(text, "{\"ok\":true}");
    CHECK_STR(err, "old");
    free(text);
    free(err);
    CHECK(text_of(L, "print", NULL) == NULL);
    lua_close(L);
}

/* --- under a bot's budgets ------------------------------------------------------ */

/* check_charges(value): in a handler run, each path's charge for the value. */
static int check_charges(lua_State *L) {
    pl_budget *budget = pl_vm_current_budget(pl_vm_from_lua(L));
    long before = budget->used;
    json_t *tree = pl_json_from_lua(L, 1, "v", NULL);
    long tree_units = budget->used - before;
    json_decref(tree);
    before = budget->used;
    char *text = pl_json_text_from_lua(L, 1, "v", NULL, NULL);
    long text_units = budget->used - before;
    free(text);
    lua_pushinteger(L, tree_units);
    lua_pushinteger(L, text_units);
    return 2;
}

/* write_counted(value): the text made in a scope of the bot's vm; returns
 * its length (or nil, the error), whether the scope refused memory, and the
 * bytes still reserved after the text was freed in the scope. */
static int write_counted(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    size_t base = pl_vm_memory_used(vm);
    pl_json_scope scope;
    pl_json_scope_open(&scope, vm);
    char *err = NULL;
    size_t len = 0;
    char *text = pl_json_text_from_lua(L, 1, "v", &len, &err);
    size_t held = pl_vm_memory_used(vm) - base;
    pl_json_scope_free(text);
    int refused = pl_json_scope_close(&scope);
    size_t left = pl_vm_memory_used(vm) - base;
    if (text) lua_pushinteger(L, (lua_Integer)len);
    else lua_pushstring(L, err);
    free(err);
    lua_pushboolean(L, refused);
    lua_pushinteger(L, (lua_Integer)left);
    lua_pushinteger(L, (lua_Integer)held);
    return 4;
}

/* check_shared(first, second): second written after first, sharing the
 * objects first noted, and on its own: whether the texts (or errors) and
 * the charges are the same, and how many objects first noted. */
static int check_shared(lua_State *L) {
    pl_budget *budget = pl_vm_current_budget(pl_vm_from_lua(L));
    pl_json_shared shared = {0};
    char *first = pl_json_text_from_lua_sharing(L, 1, "a", NULL, NULL, &shared);
    char *shared_err = NULL, *alone_err = NULL;
    long before = budget->used;
    char *with_shared = pl_json_text_from_lua_sharing(L, 2, "b", NULL, &shared_err, &shared);
    long shared_units = budget->used - before;
    before = budget->used;
    char *alone = pl_json_text_from_lua(L, 2, "b", NULL, &alone_err);
    long alone_units = budget->used - before;
    int same = with_shared && alone ? strcmp(with_shared, alone) == 0
                                    : !with_shared && !alone && strcmp(shared_err, alone_err) == 0;
    if (!same) printf("#   shared %s / %s\n#   alone  %s / %s\n", with_shared ? with_shared : "-", shared_err ? shared_err : "-",
                      alone ? alone : "-", alone_err ? alone_err : "-");
    lua_pushboolean(L, same && shared_units == alone_units);
    lua_pushinteger(L, (lua_Integer)shared.n);
    free(first);
    free(with_shared);
    free(alone);
    free(shared_err);
    free(alone_err);
    return 2;
}

static pl_vm *new_bot(size_t memory, long instructions) {
    pl_vm *vm = test_bot_vm("textbot", "/nonexistent", memory, instructions, 0);
    if (!vm) return NULL;
    lua_register(pl_vm_lua(vm), "check_shared", check_shared);
    lua_register(pl_vm_lua(vm), "check_charges", check_charges);
    lua_register(pl_vm_lua(vm), "write_counted", write_counted);
    return vm;
}

static int bot_true(pl_vm *vm, const char *code) {
    char *err = NULL;
    int ok = test_bot_run(vm, "@bot.lua", code, 100, &err) == 0;
    if (ok) {
        ok = lua_toboolean(pl_vm_lua(vm), -1);
        lua_pop(pl_vm_lua(vm), 1);
    }
    if (!ok) printf("#   %.70s...\n#   -> %s\n", code, err ? err : "not true");
    free(err);
    return ok;
}

TEST(charges_like_the_tree) {
    pl_vm *vm = new_bot(64u << 20, 100000000L);
    if (!vm) return;
    CHECK(bot_true(vm, "local t = {} for i = 1, 5000 do t[i] = {i, 'x', {y = i}} end\n"
                       "local a, b = check_charges(t)\n"
                       "return a == b and a > 0"));
    CHECK(bot_true(vm, "local a, b = check_charges({a = 1}) return a == b"));
    pl_vm_release(vm);
}

/* A turn's session keeps the choices its replies offer: the replies copy
 * their text, with the charges and errors of writing them again. */
TEST(shared_objects_as_if_written_again) {
    pl_vm *vm = new_bot(64u << 20, 100000000L);
    if (!vm) return;
    /* the choices, in the session's offered and the reply's choices */
    CHECK(bot_true(vm, "local a, b = {title = 'Latte · €3.30', payload = 'latte'}, {title = 'Tea', payload = 'tea'}\n"
                       "local ok, n = check_shared({offered = {a, b}, turn = 2, stack = {{slots = {}}}},\n"
                       "                           {{text = 'Which?', choices = {a, b}}, {text = 'or', choices = {b}}})\n"
                       "return ok and n == 2"));
    /* objects holding tables are not noted; a failed first text notes none */
    CHECK(bot_true(vm, "local a = {title = 'x', more = {y = 1}}\n"
                       "local ok, n = check_shared({a}, {a, a.more})\n"
                       "local ok2, n2 = check_shared({{x = 1}, bad = '\\255'}, {})\n"
                       "return ok and n == 1 and ok2 and n2 == 0"));
    /* an error after a copy names the same place */
    CHECK(bot_true(vm, "local a = {title = 'x'}\n"
                       "return (check_shared({a}, {a, {title = '\\255'}}))"));
    /* members whose charges cross a charging point (every 1024 values) */
    CHECK(bot_true(vm, "local a = {title = 'x', payload = 'y', more = 'z'}\n"
                       "for filler = 1015, 1025 do\n"
                       "  local second = {}\n"
                       "  for i = 1, filler do second[i] = i end\n"
                       "  second[filler + 1] = a\n"
                       "  second[filler + 2] = a\n"
                       "  if not check_shared({a}, second) then return false end\n"
                       "end\n"
                       "return true"));
    pl_vm_release(vm);
}

TEST(text_counts_in_a_scope) {
    pl_vm *vm = new_bot(16u << 20, 100000000L);
    if (!vm) return;
    /* a text that fits: reserved while held, released when freed */
    CHECK(bot_true(vm, "local t = {} for i = 1, 1000 do t[i] = ('x'):rep(100) end\n"
                       "local len, refused, left, held = write_counted(t)\n"
                       "return len == 1000 * 103 + 1 and not refused and left == 0 and held >= len"));
    /* one that does not: 12 MB of text from a 100 KB string, in 16 MB
     * with the table (memory refused, nothing left reserved) */
    CHECK(bot_true(vm, "local s, t = ('x'):rep(100000), {} for i = 1, 120 do t[i] = s end\n"
                       "local err, refused, left = write_counted(t)\n"
                       "return err:find('^v%[%d+%]: out of memory$') ~= nil and refused and left == 0"));
    pl_vm_release(vm);
}

/* Past the instruction budget the writer stops with the tree's message
 * (the caller then ends the run). */
static int stopped_over;

static int write_over(lua_State *L) {
    char *err = NULL;
    char *text = pl_json_text_from_lua(L, 1, "v", NULL, &err);
    stopped_over = text == NULL && err && strncmp(err, "v[1][1][", 8) == 0 &&
                   strstr(err, "]: the run is over its budget") && pl_vm_over(L);
    if (!stopped_over) printf("#   got %s\n", err ? err : "a text");
    free(text);
    free(err);
    return 0;
}

TEST(stops_over_the_instruction_budget) {
    /* below the watchdog's threshold (vm.h): counted from the first
     * instruction, so the decode fits and the write does not */
    pl_vm *vm = new_bot(64u << 20, 300000L);
    if (!vm) return;
    lua_register(pl_vm_lua(vm), "write_over", write_over);
    char *err = NULL;
    /* decoding 2e5 values is charged 2e5 units, writing them as many */
    int rc = test_bot_run(vm, "@bot.lua",
                          "local json = require 'json'\n"
                          "local t = json.decode('[' .. ('1,'):rep(199999) .. '1]')\n"
                          "write_over({{t}})\n"
                          "return true",
                          100, &err);
    /* the run ends over its budget (at the next charge or hook) */
    CHECK(stopped_over);
    CHECK(rc != 0 && err && strstr(err, "instruction budget"));
    free(err);
    pl_vm_release(vm);
}

int main(void) {
    RUN(chosen_values);
    RUN(every_short_byte_sequence);
    RUN(long_strings_with_an_edge_byte_anywhere);
    RUN(random_values);
    RUN(error_messages_name_the_key);
    RUN(charges_like_the_tree);
    RUN(shared_objects_as_if_written_again);
    RUN(text_counts_in_a_scope);
    RUN(stops_over_the_instruction_budget);
    return check_done();
}
