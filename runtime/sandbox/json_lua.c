/* json_lua: jansson <-> Lua conversion and the `json` Lua module.
 * Reading JSON always goes through jansson; writing too, except for the
 * turn's hot path, where a writer walks Lua values straight to the text
 * jansson would write (pl_json_text_from_lua). Uses run.h for budgets and
 * json_alloc.h to count jansson's memory (and the writer's) in them. */
#include "json_lua.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/text.h"
#include "json_alloc.h"
#include "json_text.h"
#include "run.h"

#define MAX_DEPTH 64

/* Registry keys: their addresses are unique. */
static const char array_mt_key = 'a';
static const char null_key = 'n';

static void push_array_mt(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key) != LUA_TNIL) return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &array_mt_key);
}

void pl_json_mark_array(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    push_array_mt(L);
    lua_setmetatable(L, idx);
}

void pl_json_push_null(lua_State *L) { lua_pushlightuserdata(L, (void *)&null_key); }

int pl_json_is_null(lua_State *L, int idx) {
    return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == (void *)&null_key;
}

/* Values a walk makes are charged to the run in batches of this many, one
 * unit each (the bytes they copy the allocator charges). */
#define CHARGE_EVERY 1024

/* Counts one value of a walk. Returns 0 once the run is over a budget. */
static int charge_value(lua_State *L, long *values) {
    return ++*values % CHARGE_EVERY != 0 || pl_vm_charge(L, CHARGE_EVERY);
}

static void push_value(lua_State *L, const json_t *value, long *values) {
    luaL_checkstack(L, 4, "JSON value nested too deeply");
    if (!charge_value(L, values)) pl_vm_abort(L); /* does not return */
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(value));
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)value, key, member) {
            push_value(L, member, values);
            lua_setfield(L, -2, key);
        }
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(value);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_value(L, json_array_get(value, i), values);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        pl_json_mark_array(L, -1);
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(value)); break;
    case JSON_REAL: lua_pushnumber(L, json_real_value(value)); break;
    case JSON_TRUE: lua_pushboolean(L, 1); break;
    case JSON_FALSE: lua_pushboolean(L, 0); break;
    case JSON_NULL: pl_json_push_null(L); break;
    }
}

void pl_json_push(lua_State *L, const json_t *value) {
    long values = 0;
    push_value(L, value, &values);
}

/* The walk from Lua to JSON never raises, so that whoever calls it can hold
 * C resources across it, and a walk that fails frees its partial tree
 * itself. It calls only functions that the Lua manual marks as raising no
 * error ('-' in their [-o, +p, x] line: raw access, lua_checkstack rather
 * than luaL_checkstack, lua_tostring on strings only, no table made), and
 * lua_next, which raises only for a key it did not hand out. */
typedef struct {
    lua_State *L;
    char *err;   /* on failure: "<path below>: reason" (new) */
    long values; /* converted so far, for charging */
} walk;

/* Conversion errors name the key path ("session.stack[1].slots.f"). The
 * path is only built on failure: each level that sees a failure below it
 * puts its own key in front of the message, so success costs nothing. */
static char *prefix_key(lua_State *L, int key_idx, const char *rest) {
    if (lua_type(L, key_idx) == LUA_TSTRING) return pl_strdupf(".%s%s", lua_tostring(L, key_idx), rest);
    return pl_strdupf("[%lld]%s", (long long)lua_tointeger(L, key_idx), rest);
}

/* A failure found at this level: w->err = "<path below>: reason". The path
 * starts empty and grows as the failure travels up. */
static json_t *fail_here(walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *fail_here(walk *w, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *reason = pl_vstrdupf(fmt, ap);
    va_end(ap);
    free(w->err);
    w->err = pl_strdupf(": %s", reason);
    free(reason);
    return NULL;
}

/* jansson could not allocate (the script's memory budget refused, see
 * json_alloc.h, or malloc failed), or Lua could not grow its stack. */
static json_t *out_of_memory(walk *w) { return fail_here(w, "out of memory"); }

/* A value jansson made, or the failure to make it. */
static json_t *made(walk *w, json_t *value) { return value ? value : out_of_memory(w); }

/* Puts the key at key_idx in front of the path in w->err. */
static void add_key(walk *w, int key_idx) {
    char *longer = prefix_key(w->L, key_idx, w->err);
    free(w->err);
    w->err = longer;
}

static json_t *convert(walk *w, int idx, int depth);

/* Whether the table at idx carries json.array's marker. Allocates nothing:
 * while the marker was never made, no table carries it. */
static int has_array_mark(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key);
    int marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return marked;
}

/* The shape of an unmarked table: 1 for a list (keys 1..n), 0 for an
 * object, -1 for a list with holes; *count is the list length. */
static int table_shape(lua_State *L, int idx, size_t *count) {
    size_t n = 0;
    lua_Integer max = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        lua_Integer k = lua_tointeger(L, -1);
        if (k > max) max = k;
        n++;
    }
    *count = n;
    return n > 0 && (lua_Integer)n == max ? 1 : (n > 0 ? -1 : 0);
}

/* 1 for a list (marked, or keys 1..n), 0 for an object, -1 for a list with
 * holes; *count is the list length. (pl_json_list_length for others.) */
static int is_array_table(lua_State *L, int idx, size_t *count) {
    if (has_array_mark(L, idx)) {
        *count = (size_t)lua_rawlen(L, idx);
        return 1;
    }
    return table_shape(L, idx, count);
}

size_t pl_json_list_length(lua_State *L, int idx) {
    size_t n = 0;
    return lua_istable(L, idx) && is_array_table(L, lua_absindex(L, idx), &n) == 1 ? n : 0;
}

static json_t *convert_array(walk *w, int idx, size_t n, int depth) {
    lua_State *L = w->L;
    json_t *arr = json_array();
    if (!arr) return out_of_memory(w);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        json_t *item = convert(w, -1, depth + 1);
        lua_pop(L, 1);
        /* json_array_append_new takes item even when it fails */
        if (item && json_array_append_new(arr, item) != 0) item = out_of_memory(w);
        if (!item) {
            lua_pushinteger(L, (lua_Integer)i);
            add_key(w, -1);
            lua_pop(L, 1);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Converts the member whose key and value are on L's top into obj.
 * Returns 0 on failure, with w->err set. */
static int convert_member(walk *w, json_t *obj, int depth) {
    lua_State *L = w->L;
    if (lua_type(L, -2) != LUA_TSTRING) {
        fail_here(w, "a table with both list items and named keys cannot be stored");
        return 0;
    }
    size_t len;
    const char *key = lua_tolstring(L, -2, &len);
    if (!pl_text_is_utf8(key, len)) {
        fail_here(w, "the key is not valid UTF-8");
        return 0;
    }
    json_t *item = convert(w, -1, depth + 1);
    /* json_object_set_new_nocheck takes item even when it fails */
    if (item && json_object_set_new_nocheck(obj, key, item) != 0) item = out_of_memory(w);
    return item != NULL;
}

static json_t *convert_object(walk *w, int idx, int depth) {
    lua_State *L = w->L;
    json_t *obj = json_object();
    if (!obj) return out_of_memory(w);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!convert_member(w, obj, depth)) {
            if (lua_type(L, -2) == LUA_TSTRING || lua_isinteger(L, -2)) add_key(w, -2);
            lua_pop(L, 2);
            json_decref(obj);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return obj;
}

static json_t *convert_table(walk *w, int idx, int depth) {
    if (depth > MAX_DEPTH)
        return fail_here(w, "nested more than %d levels (a table that contains itself?)", MAX_DEPTH);
    if (!lua_checkstack(w->L, 6)) return out_of_memory(w);
    size_t n = 0;
    int kind = is_array_table(w->L, idx, &n);
    if (kind == 1) return convert_array(w, idx, n, depth);
    if (kind == -1) return fail_here(w, "a list with holes (or non-positive indexes) cannot be stored");
    return convert_object(w, idx, depth);
}

static json_t *convert(walk *w, int idx, int depth) {
    lua_State *L = w->L;
    idx = lua_absindex(L, idx);
    /* the caller sees the run is over (pl_vm_over) and ends it */
    if (!charge_value(L, &w->values)) return fail_here(w, "the run is over its budget");
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return json_null();
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) return made(w, json_integer((json_int_t)lua_tointeger(L, idx)));
        if (!isfinite(lua_tonumber(L, idx))) return fail_here(w, "NaN and infinity cannot be stored");
        return made(w, json_real(lua_tonumber(L, idx)));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (!pl_text_is_utf8(s, len)) return fail_here(w, "the string is not valid UTF-8");
        return made(w, json_stringn_nocheck(s, len));
    }
    case LUA_TTABLE: return convert_table(w, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (pl_json_is_null(L, idx)) return json_null();
        /* fallthrough */
    default:
        return fail_here(w, "a %s cannot be stored (only strings, numbers, booleans and tables of them)",
                         luaL_typename(L, idx));
    }
}

json_t *pl_json_from_lua(lua_State *L, int idx, const char *root, char **err) {
    walk w = {.L = L};
    json_t *value = convert(&w, idx, 0);
    if (!value) {
        char *message = pl_strdupf("%s%s", root ? root : "value", w.err ? w.err : ": cannot be stored");
        free(w.err);
        if (err) {
            free(*err);
            *err = message;
        } else {
            free(message);
        }
    }
    return value;
}

/* --- Lua values straight to JSON text ----------------------------------------
 * The same walk as above, writing compact text (json_text.h) where the walk
 * above builds jansson's tree that json_dumps then writes: the turn's
 * session and replies (turn.c) need only the text, and the tree would cost
 * more than the text. Checks, charges, error messages and the text are
 * those of json_dumps(pl_json_from_lua(...), JSON_COMPACT |
 * JSON_ENCODE_ANY), which tests/c/test_json_text.c compares on many values:
 * members in lua_next's order (the tree's insertion order), and the text
 * json_text.h writes as jansson does. A key with a NUL byte inside, which
 * jansson cuts at the NUL (and two such keys may then collide), makes the
 * writer start over on the tree path, so that such keys, which no sane
 * script makes, need no copy of jansson's rules for them. The text is
 * allocated like jansson's: counted in an open scope's budget, as the tree
 * and its text would be. */

typedef struct {
    walk w;           /* the error path and the charge, as for the tree */
    pl_json_text out;
    const void *array_mt; /* json.array's marker, NULL while it was never made */
    int nul_key;      /* a key held a NUL byte: the tree path decides */
    pl_json_shared *shared; /* objects noted (no text yet) or to copy, or NULL */
    long tables;      /* tables met so far (an object that met none holds none) */
} writer;

static int write_value(writer *wr, int idx, int depth);

/* The walk's failures, as int results: 0 with wr->w.err set. */
static int no_room(writer *wr) {
    out_of_memory(&wr->w);
    return 0;
}

static int refuse(writer *wr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(writer *wr, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *reason = pl_vstrdupf(fmt, ap);
    va_end(ap);
    fail_here(&wr->w, "%s", reason);
    free(reason);
    return 0;
}

/* The writer's walk takes absolute stack indexes: a table's items and
 * members sit just above the stack's top when the table's walk began. */
static int write_array(writer *wr, int idx, size_t n, int depth) {
    lua_State *L = wr->w.L;
    if (!pl_json_text_char(&wr->out, '[')) return no_room(wr);
    int item = lua_gettop(L) + 1;
    for (size_t i = 1; i <= n; i++) {
        if (i > 1 && !pl_json_text_char(&wr->out, ',')) {
            no_room(wr);
        } else {
            lua_rawgeti(L, idx, (lua_Integer)i);
            int ok = write_value(wr, item, depth + 1);
            lua_pop(L, 1);
            if (ok) continue;
        }
        lua_pushinteger(L, (lua_Integer)i);
        add_key(&wr->w, -1);
        lua_pop(L, 1);
        return 0;
    }
    return pl_json_text_char(&wr->out, ']') || no_room(wr);
}

/* Writes the member whose key and value are at value - 1 and value (L's
 * top), after a comma unless it is the first. 0 on failure, with wr->w.err
 * set. */
static int write_member(writer *wr, int first, int value, int depth) {
    lua_State *L = wr->w.L;
    if (lua_type(L, value - 1) != LUA_TSTRING) return refuse(wr, "a table with both list items and named keys cannot be stored");
    size_t len, nuls = wr->out.nuls;
    const char *key = lua_tolstring(L, value - 1, &len);
    int bad = 0;
    if ((!first && !pl_json_text_char(&wr->out, ',')) || !pl_json_text_string(&wr->out, key, len, &bad) || !pl_json_text_char(&wr->out, ':'))
        return bad ? refuse(wr, "the key is not valid UTF-8") : no_room(wr);
    if (wr->out.nuls != nuls) wr->nul_key = 1; /* written all the same; see above */
    return write_value(wr, value, depth + 1);
}

/* Notes the object at idx, written from at to here with `values` values
 * charged, for the texts that come after (pl_json_shared). */
static void note_shared(writer *wr, int idx, size_t at, long values) {
    pl_json_shared *shared = wr->shared;
    if (!shared || shared->text || shared->n == PL_JSON_SHARED_MAX) return;
    shared->objects[shared->n].table = lua_topointer(wr->w.L, idx);
    shared->objects[shared->n].at = at;
    shared->objects[shared->n].len = wr->out.len - at;
    shared->objects[shared->n].values = values;
    shared->n++;
}

/* Copies the text of the table at idx when an earlier text wrote it (as
 * an object holding no table, so its depth cannot fail here) and its
 * members' charges cross no charging point (so no charge can fail in it):
 * then what writing it again would do. Returns 1 when copied. */
static int copied_shared(writer *wr, int idx) {
    const pl_json_shared *shared = wr->shared;
    if (!shared || !shared->text) return 0;
    const void *table = lua_topointer(wr->w.L, idx);
    for (size_t i = 0; i < shared->n; i++) {
        if (shared->objects[i].table != table) continue;
        long values = shared->objects[i].values;
        if (wr->w.values % CHARGE_EVERY + values >= CHARGE_EVERY) return 0;
        if (!pl_json_text_put(&wr->out, shared->text + shared->objects[i].at, shared->objects[i].len)) return 0;
        wr->w.values += values;
        return 1;
    }
    return 0;
}

/* Writes the object at idx whose first member lua_next has pushed already
 * (its key and value on L's top), and the rest in lua_next's order. */
static int write_object(writer *wr, int idx, int depth) {
    lua_State *L = wr->w.L;
    int value = lua_gettop(L);
    size_t at = wr->out.len, nuls = wr->out.nuls;
    long tables = wr->tables, values = wr->w.values;
    if (!pl_json_text_char(&wr->out, '{')) {
        lua_pop(L, 2);
        return no_room(wr);
    }
    int first = 1;
    do {
        if (!write_member(wr, first, value, depth)) {
            if (lua_type(L, -2) == LUA_TSTRING || lua_isinteger(L, -2)) add_key(&wr->w, -2);
            lua_pop(L, 2);
            return 0;
        }
        first = 0;
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    if (!pl_json_text_char(&wr->out, '}')) return no_room(wr);
    if (wr->tables == tables && wr->out.nuls == nuls) note_shared(wr, idx, at, wr->w.values - values);
    return 1;
}

/* Whether the table at idx carries json.array's marker (has_array_mark,
 * with the marker looked up once a walk). */
static int marked_array(writer *wr, int idx) {
    lua_State *L = wr->w.L;
    if (!wr->array_mt || !lua_getmetatable(L, idx)) return 0;
    int marked = lua_topointer(L, -1) == wr->array_mt;
    lua_pop(L, 1);
    return marked;
}

/* A table as is_array_table sees it. An unmarked table whose first key
 * (lua_next's) is a string is an object, which is_array_table would say
 * at that key: it is written from there, without a walk of its own. */
static int write_table(writer *wr, int idx, int depth) {
    lua_State *L = wr->w.L;
    if (depth > MAX_DEPTH) return refuse(wr, "nested more than %d levels (a table that contains itself?)", MAX_DEPTH);
    if (!lua_checkstack(L, 6)) return no_room(wr);
    wr->tables++;
    if (copied_shared(wr, idx)) return 1;
    if (marked_array(wr, idx)) return write_array(wr, idx, (size_t)lua_rawlen(L, idx), depth);
    lua_pushnil(L);
    if (!lua_next(L, idx)) return pl_json_text_put(&wr->out, "{}", 2) || no_room(wr);
    if (lua_type(L, -2) == LUA_TSTRING) return write_object(wr, idx, depth);
    lua_pop(L, 2);
    size_t n = 0;
    int kind = table_shape(L, idx, &n);
    if (kind == -1) return refuse(wr, "a list with holes (or non-positive indexes) cannot be stored");
    if (kind == 1) return write_array(wr, idx, n, depth);
    lua_pushnil(L);
    lua_next(L, idx); /* (it has a member: the shape saw one) */
    return write_object(wr, idx, depth);
}

/* One value (at the absolute index idx), as convert() makes it; 1 when
 * written, 0 with wr->w.err set. */
static int write_value(writer *wr, int idx, int depth) {
    lua_State *L = wr->w.L;
    if (!charge_value(L, &wr->w.values)) return refuse(wr, "the run is over its budget");
    int ok;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: ok = pl_json_text_put(&wr->out, "null", 4); break;
    case LUA_TBOOLEAN: ok = lua_toboolean(L, idx) ? pl_json_text_put(&wr->out, "true", 4) : pl_json_text_put(&wr->out, "false", 5); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            ok = pl_json_text_integer(&wr->out, lua_tointeger(L, idx));
        } else {
            if (!isfinite(lua_tonumber(L, idx))) return refuse(wr, "NaN and infinity cannot be stored");
            ok = pl_json_text_real(&wr->out, lua_tonumber(L, idx));
        }
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        int bad = 0;
        ok = pl_json_text_string(&wr->out, s, len, &bad);
        if (bad) return refuse(wr, "the string is not valid UTF-8");
        break;
    }
    case LUA_TTABLE: return write_table(wr, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (pl_json_is_null(L, idx)) {
            ok = pl_json_text_put(&wr->out, "null", 4);
            break;
        }
        /* fallthrough */
    default:
        return refuse(wr, "a %s cannot be stored (only strings, numbers, booleans and tables of them)",
                      luaL_typename(L, idx));
    }
    return ok || no_room(wr);
}

/* The tree path's text, for the values the writer leaves to it. */
static char *text_by_tree(lua_State *L, int idx, const char *root, size_t *len, char **err) {
    json_t *value = pl_json_from_lua(L, idx, root, err);
    char *text = value ? json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(value);
    if (value && !text && err) {
        free(*err);
        *err = pl_strdupf("%s: out of memory", root ? root : "value");
    }
    if (text && len) *len = strlen(text);
    return text;
}

char *pl_json_text_from_lua(lua_State *L, int idx, const char *root, size_t *len, char **err) {
    return pl_json_text_from_lua_sharing(L, idx, root, len, err, NULL);
}

char *pl_json_text_from_lua_sharing(lua_State *L, int idx, const char *root, size_t *len, char **err,
                                    pl_json_shared *shared) {
    idx = lua_absindex(L, idx);
    writer wr = {.w = {.L = L}, .shared = shared};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &array_mt_key); /* kept in the registry: its address stays */
    wr.array_mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    char *text = NULL;
    if (write_value(&wr, idx, 0) && !(text = pl_json_text_finish(&wr.out, len))) no_room(&wr);
    if (shared && !shared->text) {
        /* the noted objects are in this text, unless there is none */
        shared->text = text && !wr.nul_key ? text : NULL;
        if (!shared->text) shared->n = 0;
    }
    if (text && wr.nul_key) {
        pl_json_scope_free(text);
        return text_by_tree(L, idx, root, len, err);
    }
    if (!text) {
        pl_json_text_discard(&wr.out);
        char *message = pl_strdupf("%s%s", root ? root : "value", wr.w.err ? wr.w.err : ": cannot be stored");
        free(wr.w.err);
        if (err) {
            free(*err);
            *err = message;
        } else {
            free(message);
        }
    }
    return text;
}

/* --- the json module ----------------------------------------------------------
 * What jansson allocates inside json.encode and json.decode counts in the
 * bot's memory budget: each jansson call runs in a scope of the bot's vm
 * (json_alloc.h), and the trees and texts made there are freed in one too
 * before the call returns. Whatever C memory a call holds is never held
 * across a Lua call that may raise (an error would skip the free): pushing
 * happens in a protected call, and the error is passed on once freed. */

/* Calls push(L) in protected mode with `what` as its only argument (a light
 * userdata). Returns lua_pcall's status with the one pushed value, or the
 * error, on top. Needs two free stack slots. */
static int push_protected(lua_State *L, lua_CFunction push, void *what) {
    lua_pushcfunction(L, push);
    lua_pushlightuserdata(L, what);
    return lua_pcall(L, 1, 1, 0);
}

static int push_tree(lua_State *L) {
    pl_json_push(L, lua_touserdata(L, 1));
    return 1;
}

typedef struct {
    const char *chars;
    size_t len;
} chars;

static int push_chars(lua_State *L) {
    const chars *c = lua_touserdata(L, 1);
    lua_pushlstring(L, c->chars, c->len);
    return 1;
}

/* After a protected push failed and the caller freed what it held: running
 * out of memory ends the run (a script cannot catch it, see guard.c), so
 * does a run over a budget; any other error goes on to the script. */
static int pass_error(lua_State *L, int status) {
    if (status == LUA_ERRMEM) return pl_vm_abort_over(L, PL_OVER_MEMORY);
    if (pl_vm_over(L)) return pl_vm_abort(L);
    return lua_error(L);
}

int pl_json_push_owned(lua_State *L, json_t *value) {
    luaL_checkstack(L, 2, "no room to push a JSON value");
    int status = push_protected(L, push_tree, value);
    json_decref(value);
    if (status != LUA_OK) return pass_error(L, status);
    return 1;
}

/* Frees a tree and a text (either may be NULL) that jansson made in a
 * scope of L's vm, in another, so that their bytes are released. */
static void free_counted(lua_State *L, json_t *tree, char *text) {
    pl_json_scope scope;
    pl_json_scope_open(&scope, pl_vm_from_lua(L));
    json_decref(tree);
    pl_json_scope_free(text);
    pl_json_scope_close(&scope);
}

/* jansson's flags for json.encode's options at idx ({pretty = true}:
 * indented, keys sorted). */
static size_t encode_flags(lua_State *L, int idx) {
    int pretty = 0;
    if (lua_istable(L, idx)) {
        lua_getfield(L, idx, "pretty");
        pretty = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) | JSON_SORT_KEYS : JSON_COMPACT);
}

/* A reservation refused for jansson may mean only that garbage fills the
 * budget, which Lua collects before it refuses one of its own allocations.
 * So a call that jansson could not finish for want of budget, having freed
 * what it held, collects garbage once (charged as collectgarbage() is) and
 * tries again. Returns 0 when the run is over a budget instead. */
static int collect_for_retry(lua_State *L) {
    size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024;
    if (!pl_vm_charge(L, (long)(heap >> (PL_BYTES_PER_UNIT_SHIFT + 1)))) return 0;
    lua_gc(L, LUA_GCCOLLECT);
    return 1;
}

/* The text of the value at idx, made in a scope of L's vm, its tree freed
 * already: the caller frees the text with free_counted. NULL when it could
 * not be made: *err is then set (new) unless jansson itself failed, and
 * *refused says whether the budget refused memory (nothing is held then).
 * Never raises. */
static char *encode_text(lua_State *L, int idx, size_t flags, char **err, int *refused) {
    pl_json_scope scope;
    pl_json_scope_open(&scope, pl_vm_from_lua(L));
    json_t *value = pl_json_from_lua(L, idx, "value", err);
    char *text = value ? json_dumps(value, flags) : NULL;
    json_decref(value);
    if (scope.refused) {
        pl_json_scope_free(text);
        text = NULL;
    }
    *refused = pl_json_scope_close(&scope);
    return text;
}

/* json.encode made no text (err: why, owned): running out of memory or
 * over a budget ends the run; a value JSON cannot hold is the script's
 * mistake and raises "json.encode: <path>: <reason>". */
static int encode_failed(lua_State *L, char *err, int refused) {
    if (refused || !err) {
        free(err);
        return pl_vm_abort_over(L, PL_OVER_MEMORY);
    }
    if (pl_vm_over(L)) {
        free(err);
        return pl_vm_abort(L);
    }
    char *message = pl_strdupf("json.encode: %s", err);
    free(err);
    chars c = {message, strlen(message)};
    int status = push_protected(L, push_chars, &c);
    free(message);
    if (status != LUA_OK) return pass_error(L, status);
    return lua_error(L);
}

/* json.encode(value [, {pretty = true}]) -> string; raises on values JSON
 * cannot hold (that is a mistake in the script, not a failure of the world).
 * Charged per value converted and for the text's size. */
static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    size_t flags = encode_flags(L, 2);
    char *err = NULL;
    int refused = 0;
    char *text = encode_text(L, 1, flags, &err, &refused);
    if (refused && collect_for_retry(L)) {
        free(err);
        err = NULL;
        text = encode_text(L, 1, flags, &err, &refused);
    }
    if (!text) return encode_failed(L, err, refused);
    chars c = {text, strlen(text)};
    int within = pl_vm_charge(L, (long)(c.len >> PL_BYTES_PER_UNIT_SHIFT));
    int status = within ? push_protected(L, push_chars, &c) : LUA_OK;
    free_counted(L, NULL, text);
    if (!within) return pl_vm_abort(L);
    if (status != LUA_OK) return pass_error(L, status);
    return 1;
}

/* jansson's tree of text, made in a scope of L's vm: the caller frees it
 * with free_counted. NULL for malformed text (*jerr says why), or when the
 * budget refused memory (*refused; nothing is held then). */
static json_t *decode_tree(lua_State *L, const char *text, size_t len, json_error_t *jerr, int *refused) {
    pl_json_scope scope;
    pl_json_scope_open(&scope, pl_vm_from_lua(L));
    json_t *value = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, jerr);
    if (scope.refused) {
        json_decref(value);
        value = NULL;
    }
    *refused = pl_json_scope_close(&scope);
    return value;
}

/* json.decode(text) -> value, or nil, "line N: reason" for malformed input.
 * Charged for the text's size and per value made. */
static int json_decode(lua_State *L) {
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (!pl_vm_charge(L, (long)(len >> PL_BYTES_PER_UNIT_SHIFT))) return pl_vm_abort(L);
    json_error_t jerr;
    int refused = 0;
    json_t *value = decode_tree(L, text, len, &jerr, &refused);
    if (refused && collect_for_retry(L)) value = decode_tree(L, text, len, &jerr, &refused);
    if (refused) return pl_vm_abort_over(L, PL_OVER_MEMORY);
    if (!value) {
        lua_pushnil(L);
        lua_pushfstring(L, "line %d: %s", jerr.line, jerr.text);
        return 2;
    }
    int status = push_protected(L, push_tree, value);
    free_counted(L, value, NULL);
    if (status != LUA_OK) return pass_error(L, status);
    return 1;
}

/* json.array(t) marks t as a list, so that it encodes as [] even when
 * empty. The marker is its upvalue (the registry's, looked up once). */
static int json_array_mark(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, 1);
    return 1;
}

int pl_json_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"encode", json_encode}, {"decode", json_decode}, {NULL, NULL}};
    luaL_newlib(L, fns);
    push_array_mt(L);
    lua_pushcclosure(L, json_array_mark, 1);
    lua_setfield(L, -2, "array");
    pl_json_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
