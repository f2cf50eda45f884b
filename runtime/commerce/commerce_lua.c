/* commerce_lua: the thin Lua binding of commerce.c, `parley.commerce`,
 * used by runtime/lua/parley/conversation.lua (c:checkout, c:orders ...).
 * create_order waits for the provider's link inside the turn; every store
 * call goes through pl_store_offload, and the turn waits for it where the
 * store answers later (a database server). */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/log.h"
#include "commerce.h"
#include "core/turn.h"
#include "sandbox/json_lua.h"
#include "sandbox/vm.h"

static pl_commerce *commerce;

void pl_commerce_lua_use(pl_commerce *c) { commerce = c; }

static pl_turn *need_turn(lua_State *L, const char *what) {
    pl_turn *t = pl_turn_current(L);
    if (!t) luaL_error(L, "%s can only be used while handling a message", what);
    if (!commerce) luaL_error(L, "%s: commerce is not available in this process", what);
    return t;
}

static char *new_token(void) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) abort();
    char *hex = malloc(33);
    if (!hex) abort();
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    return hex;
}

/* --- create_order ------------------------------------------------------------------ */

/* An order on its way: its row is created and its payment link recorded
 * on the store's thread (pl_store_offload), the link made by the provider
 * in between; the turn waits for it all where the store answers later. */
typedef struct {
    pl_turn *turn;  /* NULL until the turn waits */
    pl_store *store;
    pl_bot *bot;
    json_t *order;  /* to create; once the link is recorded, the stored order */
    int64_t id;
    int done;       /* the link came (or failed) and is recorded */
    char *error;
    char *url, *ref; /* the link the provider made */
} link_wait;

/* Pushes the stored order (with its payment link) or nil, "provider_unavailable". */
static int push_order(lua_State *L, void *ud) {
    link_wait *w = ud;
    int n = 2;
    if (w->error || !w->order) {
        lua_pushnil(L);
        lua_pushliteral(L, "provider_unavailable");
    } else {
        pl_json_push(L, pl_commerce_tidy_order(w->order));
        n = 1;
    }
    json_decref(w->order);
    free(w->error);
    free(w->url);
    free(w->ref);
    free(w);
    return n;
}

static void order_settled(link_wait *w) {
    w->done = 1;
    if (w->turn) pl_turn_wake(w->turn, push_order, w);
}

/* On the store's thread: the link on the order, or the order failed; then
 * the stored order. */
static void record_link(pl_store *store, void *ud) {
    link_wait *w = ud;
    char *err = NULL;
    int64_t now = pl_now_ms();
    if (w->url && pl_store_order_set_link(store, w->id, w->ref, w->url, now, &err) != PL_OK) {
        free(w->error);
        w->error = err;
    }
    json_decref(w->order);
    w->order = NULL;
    if (w->error) {
        int changed = 0;
        char *ignored = NULL;
        pl_store_order_transition(store, w->id, "pending", "failed", NULL, now, &changed, &ignored);
        free(ignored);
    } else if (pl_store_order_get(store, pl_bot_name(w->bot), w->id, &w->order, &err) != PL_OK) {
        free(err);
    }
}

static void link_recorded(void *ud) {
    link_wait *w = ud;
    if (w->error) pl_error("[%s] order %lld: no payment link: %s", pl_bot_name(w->bot), (long long)w->id, w->error);
    order_settled(w);
}

static void on_link(const char *url, const char *ref, const char *why, void *ud) {
    link_wait *w = ud;
    w->url = url ? pl_strdup(url) : NULL;
    w->ref = ref ? pl_strdup(ref) : NULL;
    if (!url || why) w->error = pl_strdup(why ? why : "no link");
    pl_store_offload(w->store, record_link, link_recorded, w);
}

/* On the store's thread: the order's row. */
static void create_row(pl_store *store, void *ud) {
    link_wait *w = ud;
    if (pl_store_order_create(store, w->order, pl_now_ms(), &w->id, &w->error) != PL_OK && !w->error)
        w->error = pl_strdup("store: cannot create the order");
}

/* The row is there: the provider makes the link. */
static void row_created(void *ud) {
    link_wait *w = ud;
    if (w->error) {
        pl_error("[%s] %s", pl_bot_name(w->bot), w->error);
        order_settled(w);
        return;
    }
    json_object_set_new(w->order, "id", json_integer(w->id));
    char *err = NULL;
    pl_payment_ctx pctx;
    const pl_payment_provider *provider = pl_commerce_provider(commerce, w->bot, &pctx, &err);
    if (!provider || provider->create_link(&pctx, w->order, on_link, w, &err) != PL_OK) on_link(NULL, NULL, err, w);
    free(err);
}

/* What an order wants of a stock key that has fewer units left. */
typedef struct {
    char *key;   /* "sku" or "sku/option=value" (owned) */
    size_t line; /* the first line that draws on it, from 1 */
    json_int_t wanted, left;
} stock_short;

/* What the lines want of each stock key, all lines together (new object). */
static json_t *wanted_of(const json_t *lines) {
    json_t *wanted = json_object();
    size_t i, k;
    json_t *line, *key;
    json_array_foreach(lines, i, line) {
        json_t *keys = pl_commerce_line_keys(line);
        json_array_foreach(keys, k, key) {
            const char *name = json_string_value(key);
            json_int_t total = json_integer_value(json_object_get(wanted, name)) +
                               json_integer_value(json_object_get(line, "qty"));
            json_object_set_new(wanted, name, json_integer(total));
        }
        json_decref(keys);
    }
    return wanted;
}

/* Checks the lines against the live stock: fills *s with the first key (in
 * the lines' order) of a product or option choice that has fewer units
 * left than all lines together want, and returns whether there is one
 * (then the caller frees s->key). */
static int short_in_stock(pl_bot *bot, const json_t *lines, stock_short *s) {
    json_t *stock = pl_bot_stock(bot), *wanted = wanted_of(lines);
    size_t i, k;
    json_t *line, *key;
    s->key = NULL;
    json_array_foreach(lines, i, line) {
        json_t *keys = pl_commerce_line_keys(line);
        json_array_foreach(keys, k, key) {
            const char *name = json_string_value(key);
            json_t *left = json_object_get(stock, name);
            json_int_t want = json_integer_value(json_object_get(wanted, name));
            if (left && json_integer_value(left) < want) {
                *s = (stock_short){pl_strdup(name), i + 1, want, json_integer_value(left)};
                break;
            }
        }
        json_decref(keys);
        if (s->key) break;
    }
    json_decref(wanted);
    return s->key != NULL;
}

/* Pushes what short_in_stock found as {key =, line =, wanted =, left =}. */
static void push_short(lua_State *L, const stock_short *s) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, s->key);
    lua_setfield(L, -2, "key");
    lua_pushinteger(L, (lua_Integer)s->line);
    lua_setfield(L, -2, "line");
    lua_pushinteger(L, (lua_Integer)s->wanted);
    lua_setfield(L, -2, "wanted");
    lua_pushinteger(L, (lua_Integer)s->left);
    lua_setfield(L, -2, "left");
}

static const char *invalid_order(const json_t *o) {
    json_t *lines = json_object_get(o, "lines");
    if (!json_is_array(lines) || json_array_size(lines) == 0) return "empty_cart";
    if (!json_is_string(json_object_get(o, "currency"))) return "no_currency";
    json_int_t subtotal = json_integer_value(json_object_get(o, "subtotal"));
    json_int_t discount = json_integer_value(json_object_get(o, "discount"));
    json_int_t total = json_integer_value(json_object_get(o, "total"));
    if (!json_is_integer(json_object_get(o, "total")) || total < 0 || subtotal - discount != total)
        return "bad_total";
    return NULL;
}

/* create_order{currency, subtotal, discount, total, discount_code?, lines}
 *   -> order (with payment_url) | nil, reason
 *   | nil, "out_of_stock", {key =, line =, wanted =, left =} (see push_short) */
static int lua_create_order_on_loop(lua_State *L) {
    pl_turn *turn = need_turn(L, "c:checkout");
    luaL_checktype(L, 1, LUA_TTABLE);
    /* the payment link's answer must find a turn that waits for it */
    pl_turn_check_wait(L, turn);
    char *err = NULL;
    json_t *order = pl_json_from_lua(L, 1, "order", &err);
    if (!order) {
        lua_pushstring(L, err);
        free(err);
        return lua_error(L);
    }
    pl_bot *bot = pl_turn_bot(turn);
    const pl_message *msg = pl_turn_message(turn);
    const char *bad = invalid_order(order);
    stock_short shortage = {0};
    int is_short = !bad && short_in_stock(bot, json_object_get(order, "lines"), &shortage);
    pl_payment_ctx pctx;
    const pl_payment_provider *provider = bad || is_short ? NULL : pl_commerce_provider(commerce, bot, &pctx, &err);
    if (bad || is_short || !provider) {
        if (!bad && !is_short) pl_error("[%s] %s", pl_bot_name(bot), err);
        free(err);
        json_decref(order);
        lua_pushnil(L);
        lua_pushstring(L, bad ? bad : is_short ? "out_of_stock" : "provider_unavailable");
        if (!is_short) return 2;
        push_short(L, &shortage);
        free(shortage.key);
        return 3;
    }
    char *token = new_token();
    json_object_set_new(order, "bot", json_string(pl_bot_name(bot)));
    json_object_set_new(order, "channel", json_string(msg->channel));
    json_object_set_new(order, "user", json_string(msg->user));
    json_object_set_new(order, "provider", json_string(provider->name));
    json_object_set_new(order, "token", json_string(token));
    free(token);
    pl_store *store = pl_commerce_store(commerce);
    link_wait *w = calloc(1, sizeof *w);
    if (!w) abort();
    *w = (link_wait){.store = store, .bot = bot, .order = order};
    pl_store_offload(store, create_row, row_created, w);
    if (w->done) return push_order(L, w);
    w->turn = turn;
    return pl_turn_wait(L, turn);
}

/* --- reading ------------------------------------------------------------------------ */

/* A read for the running turn, on the store's thread (pl_store_offload):
 * the turn waits for it where the store answers later, and wakes with what
 * push pushes. The shopper's key is copied: the message may go first. */
typedef struct store_read {
    pl_turn *turn; /* set once the turn waits */
    int done;
    char *bot, *channel, *user, *code;
    int64_t id;
    int limit;
    json_t *found; /* orders' list, order's order */
    int used;      /* discount_used's */
    int failed;
    int (*push)(lua_State *L, struct store_read *r);
} store_read;

static int push_read(lua_State *L, void *ud) {
    store_read *r = ud;
    int n = r->push(L, r);
    json_decref(r->found);
    free(r->bot);
    free(r->channel);
    free(r->user);
    free(r->code);
    free(r);
    return n;
}

static void read_done(void *ud) {
    store_read *r = ud;
    r->done = 1;
    if (r->turn) pl_turn_wake(r->turn, push_read, r);
}

/* Hands work to the store and returns its results, or waits for them. */
static int read_for_turn(lua_State *L, pl_turn *turn, store_read *r, pl_store_work_fn work) {
    pl_store *store = pl_commerce_store(commerce);
    if (pl_store_offload_later(store)) pl_turn_check_wait(L, turn);
    const pl_message *msg = pl_turn_message(turn);
    r->bot = pl_strdup(msg->bot);
    r->channel = pl_strdup(msg->channel);
    r->user = pl_strdup(msg->user);
    pl_store_offload(store, work, read_done, r);
    if (r->done) return push_read(L, r);
    r->turn = turn;
    return pl_turn_wait(L, turn);
}

static store_read *new_read(int (*push)(lua_State *L, store_read *r)) {
    store_read *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->push = push;
    return r;
}

/* orders([limit]) -> this shopper's orders on this channel, newest first */
static void read_orders(pl_store *store, void *ud) {
    store_read *r = ud;
    char *err = NULL;
    r->failed = pl_store_orders_of(store, r->bot, r->channel, r->user, r->limit, &r->found, &err) != PL_OK;
    free(err);
}

static int push_orders(lua_State *L, store_read *r) {
    if (r->failed) {
        lua_pushnil(L);
        lua_pushliteral(L, "store_unavailable");
        return 2;
    }
    size_t i;
    json_t *o;
    json_array_foreach(r->found, i, o) pl_commerce_tidy_order(o);
    pl_json_push(L, r->found);
    return 1;
}

static int lua_orders_on_loop(lua_State *L) {
    pl_turn *turn = need_turn(L, "c:orders");
    int limit = (int)luaL_optinteger(L, 1, 10);
    store_read *r = new_read(push_orders);
    r->limit = limit;
    return read_for_turn(L, turn, r, read_orders);
}

/* order(id) -> the order when it is this shopper's, else nil */
static void read_order(pl_store *store, void *ud) {
    store_read *r = ud;
    char *err = NULL;
    if (pl_store_order_get(store, r->bot, r->id, &r->found, &err) != PL_OK) r->found = NULL;
    free(err);
}

static int push_order_if_mine(lua_State *L, store_read *r) {
    json_t *order = r->found;
    int mine = order && strcmp(json_string_value(json_object_get(order, "user")), r->user) == 0 &&
               strcmp(json_string_value(json_object_get(order, "channel")), r->channel) == 0;
    if (!mine) return 0;
    pl_json_push(L, pl_commerce_tidy_order(order));
    return 1;
}

static int lua_order_on_loop(lua_State *L) {
    pl_turn *turn = need_turn(L, "c:order");
    lua_Integer id = luaL_checkinteger(L, 1);
    store_read *r = new_read(push_order_if_mine);
    r->id = id;
    return read_for_turn(L, turn, r, read_order);
}

/* discount_used(code) -> whether this shopper has used the code (before
 * an erasure too: their uses are kept under their pseudonym) */
static void read_discount_use(pl_store *store, void *ud) {
    store_read *r = ud;
    char *err = NULL, pseudonym[PL_STORE_PSEUDONYM_LEN + 1];
    pl_session_key key = {r->bot, r->channel, r->user};
    if (pl_store_discount_used(store, r->bot, r->code, r->user, &r->used, &err) != PL_OK) r->used = 0;
    if (!r->used && !err && pl_store_pseudonym(store, &key, pseudonym, &err) == PL_OK &&
        pl_store_discount_used(store, r->bot, r->code, pseudonym, &r->used, &err) != PL_OK)
        r->used = 0;
    free(err);
}

static int push_used(lua_State *L, store_read *r) {
    lua_pushboolean(L, r->used);
    return 1;
}

static int lua_discount_used_on_loop(lua_State *L) {
    pl_turn *turn = need_turn(L, "cart:apply_code");
    const char *code = luaL_checkstring(L, 1);
    store_read *r = new_read(push_used);
    r->code = pl_strdup(code);
    return read_for_turn(L, turn, r, read_discount_use);
}

/* stock(key) -> units left, or nil when the key is unlimited */
static int lua_stock(lua_State *L) {
    pl_vm *vm = pl_vm_from_lua(L);
    pl_bot *bot = vm ? pl_vm_userdata(vm) : NULL;
    int64_t left = 0;
    if (!bot || !pl_bot_stock_left(bot, luaL_checkstring(L, 1), &left)) return 0;
    lua_pushinteger(L, (lua_Integer)left);
    return 1;
}

/* The store and the commerce state are the loop's: on a turn thread these
 * run there (turn.h, pl_turn_on_loop). */
static int lua_create_order(lua_State *L) { return pl_turn_on_loop(L, lua_create_order_on_loop); }
static int lua_orders(lua_State *L) { return pl_turn_on_loop(L, lua_orders_on_loop); }
static int lua_order(lua_State *L) { return pl_turn_on_loop(L, lua_order_on_loop); }
static int lua_discount_used(lua_State *L) { return pl_turn_on_loop(L, lua_discount_used_on_loop); }

int pl_commerce_lua_open(lua_State *L) {
    static const luaL_Reg fns[] = {{"create_order", lua_create_order},
                                   {"orders", lua_orders},
                                   {"order", lua_order},
                                   {"discount_used", lua_discount_used},
                                   {"stock", lua_stock},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
