/* payments: the provider registry, the confirmation state table and the
 * built-in `test` provider (a payment page served by parley itself, which
 * confirms through the same path as a real provider); see payments.h. */
#define _GNU_SOURCE
#include "payments.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/money.h"
#include "base/text.h"

extern const pl_payment_provider pl_payment_stripe;

/* --- the test provider ---------------------------------------------------------- */

/* The link is this server's own page for the order, guarded by the order's
 * random token: no money moves, but everything after the link is real. */
static int test_create_link(const pl_payment_ctx *ctx, const json_t *order, pl_link_done_fn done,
                            void *ud, char **err) {
    (void)err;
    long long id = (long long)json_integer_value(json_object_get(order, "id"));
    char *url = pl_strdupf("%s/v1/bots/%s/payments/test/%lld?token=%s", ctx->public_base, ctx->cfg.bot,
                           id, json_string_value(json_object_get(order, "token")));
    char *ref = pl_strdupf("test_%lld", id);
    done(url, ref, NULL, ud);
    free(url);
    free(ref);
    return PL_OK;
}

static const pl_payment_provider pl_payment_test = {
    .name = "test",
    .create_link = test_create_link,
};

static const pl_payment_provider *const providers[] = {&pl_payment_test, &pl_payment_stripe};

const pl_payment_provider *pl_payments_find(const char *name) {
    for (size_t i = 0; i < sizeof providers / sizeof *providers; i++)
        if (name && strcmp(providers[i]->name, name) == 0 && providers[i]->create_link) return providers[i];
    return NULL;
}

int pl_payments_transition(const char *status, const char **from, const char **to) {
    static const struct {
        const char *status, *from, *to;
    } table[] = {/* money received is the truth: a shopper who retried on the
                  * provider's page after a decline or past the expiry has paid */
                 {"paid", "pending,failed,expired", "paid"},
                 {"failed", "pending", "failed"},
                 {"expired", "pending", "expired"},
                 {"refunded", "paid", "refunded"}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        if (status && strcmp(status, table[i].status) == 0) {
            *from = table[i].from;
            *to = table[i].to;
            return 1;
        }
    }
    return 0;
}

static void append(char **html, const char *part) {
    char *joined = pl_strdupf("%s%s", *html, part);
    free(*html);
    *html = joined;
}

static void append_lines(char **html, const json_t *order) {
    const char *currency = json_string_value(json_object_get(order, "currency"));
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(order, "lines"), i, line) {
        char *title = pl_text_html_escape(json_string_value(json_object_get(line, "title")));
        char *price = pl_money_format((long long)json_integer_value(json_object_get(line, "total")), currency, "en");
        char *row = pl_strdupf("<tr><td>%lld × %s</td><td>%s</td></tr>",
                               (long long)json_integer_value(json_object_get(line, "qty")), title, price);
        append(html, row);
        free(row);
        free(title);
        free(price);
    }
    long long discount = (long long)json_integer_value(json_object_get(order, "discount"));
    if (discount > 0) {
        char *price = pl_money_format(-discount, currency, "en");
        char *code = pl_text_html_escape(json_string_value(json_object_get(order, "discount_code")));
        char *row = pl_strdupf("<tr><td>Discount %s</td><td>%s</td></tr>", code, price);
        append(html, row);
        free(row);
        free(code);
        free(price);
    }
}

char *pl_payments_test_page(const json_t *order, const char *bot, const char *message) {
    const char *currency = json_string_value(json_object_get(order, "currency"));
    const char *state = json_string_value(json_object_get(order, "state"));
    long long id = (long long)json_integer_value(json_object_get(order, "id"));
    char *total = pl_money_format((long long)json_integer_value(json_object_get(order, "total")), currency, "en");
    char *html = pl_strdupf(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Order #%lld — test payment</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
        "table{width:100%%;border-collapse:collapse}td{padding:.3rem 0}td+td{text-align:right}"
        ".total td{border-top:1px solid #999;font-weight:bold}"
        "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0}"
        ".note{color:#666;font-size:.85rem}</style></head><body>"
        "<h1>Order #%lld</h1><p class=\"note\">Test payment for %s: no money moves.</p><table>",
        id, id, bot);
    append_lines(&html, order);
    char *tail = pl_strdupf("<tr class=\"total\"><td>Total</td><td>%s</td></tr></table>", total);
    append(&html, tail);
    free(tail);
    if (message) {
        char *m = pl_text_html_escape(message);
        char *p = pl_strdupf("<p id=\"result\"><strong>%s</strong></p>", m);
        append(&html, p);
        free(p);
        free(m);
    } else if (state && strcmp(state, "pending") == 0) {
        char *token = pl_text_html_escape(json_string_value(json_object_get(order, "token")));
        char *form = pl_strdupf("<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"%s\">"
                                "<button name=\"action\" value=\"pay\" id=\"pay\">Pay %s</button>"
                                "<button name=\"action\" value=\"decline\" id=\"decline\">Decline</button></form>",
                                token, total);
        append(&html, form);
        free(form);
        free(token);
    } else {
        char *p = pl_strdupf("<p id=\"result\">This order is %s.</p>", state ? state : "closed");
        append(&html, p);
        free(p);
    }
    append(&html, "</body></html>\n");
    free(total);
    return html;
}
