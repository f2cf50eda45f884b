/* commerce: orders as parley runs them — created from a flow's checkout
 * (the provider's link awaited without blocking), confirmed exactly once
 * whatever the provider retries, updated by the merchant's systems, and the
 * live stock that paid orders draw from. Every change that a shopper should
 * hear about reaches their session as an event through the pipeline's
 * de-duplicating inbox, so it survives a crash and arrives once. */
#ifndef PL_COMMERCE_H
#define PL_COMMERCE_H

#include <jansson.h>
#include <lua.h>

#include "core/bot.h"
#include "core/pipeline.h"
#include "event/http_client.h"
#include "payments.h"
#include "store/store.h"

typedef struct pl_commerce pl_commerce;

pl_commerce *pl_commerce_new(pl_store *store, pl_pipeline *pipe, pl_http_client *http,
                             const char *public_base);
void pl_commerce_free(pl_commerce *commerce);
const char *pl_commerce_public_base(const pl_commerce *commerce);
pl_store *pl_commerce_store(pl_commerce *commerce);

/* The bot's provider (bot.json "payments": {"provider": ...}, "test" when
 * unset) with its context; NULL with *err when it is unknown. */
const pl_payment_provider *pl_commerce_provider(pl_commerce *commerce, pl_bot *bot,
                                                pl_payment_ctx *ctx, char **err);

/* The stock keys an order line draws from: its sku, and "sku/option=value"
 * for each chosen option value (new array). */
json_t *pl_commerce_line_keys(const json_t *line);

/* Called after the commit that applied confirmations or an update: status
 * 200 (all applied, duplicates included), 400 with the problems (rejected:
 * unknown order, amount mismatch ...) or 503 (nothing stored). */
typedef void (*pl_applied_fn)(int status, const char *problems, void *ud);

/* Applies a provider's confirmations (stolen); see payments.h. */
void pl_commerce_confirm(pl_commerce *commerce, pl_bot *bot, json_t *confirmations,
                         pl_applied_fn done, void *ud);

/* The merchant's fulfilment status ("shipped") for an order; the shopper
 * is told in the channel they ordered from. */
void pl_commerce_update(pl_commerce *commerce, pl_bot *bot, int64_t order_id, const char *status,
                        const char *tracking_url, pl_applied_fn done, void *ud);

/* The Lua binding: `parley.commerce` (create_order, orders, order,
 * discount_used, stock); the process's commerce object serves it. */
void pl_commerce_lua_use(pl_commerce *commerce);
int pl_commerce_lua_open(lua_State *L);

/* Removes the null members of an order object (flows see absent fields as
 * nil, never as json.null); returns it. */
json_t *pl_commerce_tidy_order(json_t *order);

#endif
