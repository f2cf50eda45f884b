/* payments: taking money for orders through payment providers — the
 * provider interface, the registry, and the one path every confirmation
 * takes, whichever provider sent it.
 *
 * Card data never touches parley: a provider only makes a hosted payment
 * link and later confirms (or not) through its signed webhook. A
 * confirmation is applied exactly once: in one transaction the order moves
 * from its state to the new one only if it is still in that state, and the
 * shopper's session gets the event through the de-duplicating inbox. A
 * confirmation whose amount or currency differs from the order's, or that
 * names no known order, is rejected and logged; the order stays as it was. */
#ifndef PL_PAYMENTS_H
#define PL_PAYMENTS_H

#include <jansson.h>

#include "channels/channel.h"
#include "event/http_client.h"

/* What a provider works with: the bot's "payments" settings (borrowed),
 * the public base URL of this server (for links back to it) and the
 * outbound HTTP client. */
typedef struct {
    pl_channel_config cfg; /* cfg.channel is "payments"; settings from bot.json */
    const char *public_base;
    pl_http_client *http;
} pl_payment_ctx;

/* The link is ready (url and the provider's reference for the order), or
 * making it failed (url NULL, err says why). Strings are borrowed. */
typedef void (*pl_link_done_fn)(const char *url, const char *provider_ref, const char *err, void *ud);

typedef struct {
    const char *name;
    const char *default_api_base;
    /* Starts making a hosted payment link for order (an object from the
     * store: id, total, currency, lines, token ...). done runs once, maybe
     * before this returns. */
    int (*create_link)(const pl_payment_ctx *ctx, const json_t *order, pl_link_done_fn done,
                       void *ud, char **err);
    /* Verifies and parses a webhook into confirmations (a new array of
     * {"order_id"? or "ref"?, "status": "paid" | "failed" | "expired" |
     * "refunded", "amount"?, "currency"?, "payment_ref"?, "only_if_pending"?}).
     * A "paid" also applies to a failed or expired order (the shopper paid
     * on the provider's page after all) unless only_if_pending is true. A
     * confirmation found by "ref" alone that matches no order is someone
     * else's sale and is acknowledged. On PL_ERR *status is the 4xx to
     * answer, nothing is applied, and done callbacks are not called. */
    int (*webhook)(const pl_payment_ctx *ctx, const pl_webhook *req, json_t **confirmations,
                   int *status, char **err);
} pl_payment_provider;

const pl_payment_provider *pl_payments_find(const char *name);

/* What the test provider's page says under the order: the Pay and Decline
 * buttons (for a pending order; otherwise its state), or what a Pay or
 * Decline just did. */
typedef enum {
    PL_TEST_PAGE_FORM,
    PL_TEST_PAGE_PAID_NOW,
    PL_TEST_PAGE_ALREADY_PAID,
    PL_TEST_PAGE_DECLINED,
    PL_TEST_PAGE_NO_LONGER
} pl_test_page_note;

/* The built-in test provider's payment page for an order (from the store):
 * its lines with their options, in the language of locale (the shopper's;
 * English where payment_test.c has no words for it). problems, when not
 * NULL, is said instead of the note. Returns new HTML. */
char *pl_payments_test_page(const json_t *order, const char *bot, const char *locale, pl_test_page_note note,
                            const char *problems);

/* The state changes a confirmation status makes: from which states (a
 * comma-separated list) to which. Returns 0 for an unknown status. */
int pl_payments_transition(const char *status, const char **from, const char **to);

#endif
