/* payment_test: the built-in `test` provider (see payments.h). Its link is
 * parley's own payment page for the order, where Pay and Decline confirm
 * through the same path as a real provider's webhook; no money moves.
 * This file owns that page: the order's lines with their options, in the
 * shopper's language from a small table of its own (English for any other;
 * the prices always written the shopper's way),
 * everything the order says HTML-escaped. It uses money.h and text.h. */
#define _GNU_SOURCE
#include "payments.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/money.h"
#include "base/text.h"

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

const pl_payment_provider pl_payment_test = {
    .name = "test",
    .create_link = test_create_link,
};

/* --- the page's words ------------------------------------------------------------ */

/* One language of the page. "{}" marks where a value goes. */
typedef struct {
    const char *lang;
    const char *order, *test, *note, *total, *pay, *decline, *discount;
    const char *paid_now, *already_paid, *declined, *no_longer, *is_paid, *was_declined, *refunded;
} words;

static const words languages[] = {
    {"en", "Order #{}", "test payment", "Test payment for {}: no money moves.", "Total", "Pay {}", "Decline",
     "Discount {}", "Payment received. You can go back to the chat.", "This order is already paid.",
     "Payment declined. You can go back to the chat.", "This order can no longer be paid.", "This order is paid.",
     "The payment of this order was declined.", "This order was refunded."},
    {"es", "Pedido n.º {}", "pago de prueba", "Pago de prueba para {}: no se mueve dinero.", "Total", "Pagar {}",
     "Rechazar", "Descuento {}", "Pago recibido. Puedes volver al chat.", "Este pedido ya está pagado.",
     "Pago rechazado. Puedes volver al chat.", "Este pedido ya no se puede pagar.", "Este pedido está pagado.",
     "El pago de este pedido fue rechazado.", "Este pedido fue reembolsado."},
    {"fr", "Commande n° {}", "paiement de test", "Paiement de test pour {} : aucun argent ne circule.", "Total",
     "Payer {}", "Refuser", "Remise {}", "Paiement reçu. Vous pouvez revenir au chat.",
     "Cette commande est déjà payée.", "Paiement refusé. Vous pouvez revenir au chat.",
     "Cette commande ne peut plus être payée.", "Cette commande est payée.",
     "Le paiement de cette commande a été refusé.", "Cette commande a été remboursée."},
    {"de", "Bestellung Nr. {}", "Testzahlung", "Testzahlung für {}: Es fließt kein Geld.", "Summe", "{} bezahlen",
     "Ablehnen", "Rabatt {}", "Zahlung erhalten. Sie können zum Chat zurückkehren.",
     "Diese Bestellung ist bereits bezahlt.", "Zahlung abgelehnt. Sie können zum Chat zurückkehren.",
     "Diese Bestellung kann nicht mehr bezahlt werden.", "Diese Bestellung ist bezahlt.",
     "Die Zahlung dieser Bestellung wurde abgelehnt.", "Diese Bestellung wurde erstattet."},
    {"ja", "ご注文番号 {}", "テスト決済", "{} のテスト決済です。実際のお金は動きません。", "合計", "{} を支払う",
     "支払いを断る", "割引 {}", "お支払いを受け付けました。チャットにお戻りください。",
     "このご注文はお支払い済みです。", "お支払いが拒否されました。チャットにお戻りください。",
     "このご注文はもうお支払いいただけません。", "このご注文はお支払い済みです。",
     "このご注文のお支払いは拒否されました。", "このご注文は返金されました。"},
    {"zh", "订单号 {}", "测试付款", "{} 的测试付款：不会产生真实扣款。", "合计", "支付 {}", "拒绝", "折扣 {}",
     "已收到付款。您可以返回聊天。", "此订单已付款。", "付款被拒绝。您可以返回聊天。", "此订单已无法付款。",
     "此订单已付款。", "此订单的付款被拒绝。", "此订单已退款。"},
    {"ko", "주문 번호 {}", "테스트 결제", "{}의 테스트 결제입니다. 실제로 돈이 오가지 않습니다.", "합계", "{} 결제",
     "거절", "할인 {}", "결제가 완료되었습니다. 채팅으로 돌아가세요.", "이미 결제된 주문입니다.",
     "결제가 거절되었습니다. 채팅으로 돌아가세요.", "이 주문은 더 이상 결제할 수 없습니다.", "결제된 주문입니다.",
     "이 주문의 결제가 거절되었습니다.", "환불된 주문입니다."},
};

/* The words for a locale such as "es" or "es-MX" (its language), else English. */
static const words *words_for(const char *locale) {
    size_t n = locale ? strcspn(locale, "-_") : 0;
    for (size_t i = 0; i < sizeof languages / sizeof *languages; i++)
        if (n == strlen(languages[i].lang) && strncasecmp(locale, languages[i].lang, n) == 0) return &languages[i];
    return &languages[0];
}

/* tmpl with its "{}" replaced by value (new string). The value goes in as
 * it is: escape it first when it came from outside. */
static char *fill(const char *tmpl, const char *value) {
    const char *at = strstr(tmpl, "{}");
    if (!at) return pl_strdup(tmpl);
    return pl_strdupf("%.*s%s%s", (int)(at - tmpl), tmpl, value, at + 2);
}

static void append(char **html, const char *part) {
    char *joined = pl_strdupf("%s%s", *html, part);
    free(*html);
    *html = joined;
}

static void append_owned(char **html, char *part) {
    append(html, part);
    free(part);
}

/* --- the page -------------------------------------------------------------------- */

/* A line's options as the shopper chose them: the option titles the cart
 * wrote in the shopper's language, else the values themselves (escaped,
 * ", " between; new string, "" when there are none). */
static char *line_options(const json_t *line) {
    json_t *names = json_array();
    json_t *titles = json_object_get(line, "option_titles");
    size_t i;
    json_t *v;
    if (json_array_size(titles)) {
        json_array_foreach(titles, i, v) if (json_is_string(v)) json_array_append(names, v);
    } else {
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(line, "options"), key, value) {
            if (json_is_string(value)) json_array_append(names, value);
            json_array_foreach(value, i, v) if (json_is_string(v)) json_array_append(names, v);
        }
    }
    char *out = pl_strdup("");
    json_array_foreach(names, i, v) {
        char *name = pl_text_html_escape(json_string_value(v));
        append_owned(&out, pl_strdupf("%s%s", i ? ", " : "", name));
        free(name);
    }
    json_decref(names);
    return out;
}

/* The lines' prices are written for numbers_locale (the shopper's). */
static void append_lines(char **html, const json_t *order, const words *w, const char *numbers_locale) {
    const char *currency = json_string_value(json_object_get(order, "currency"));
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(order, "lines"), i, line) {
        char *title = pl_text_html_escape(json_string_value(json_object_get(line, "title")));
        char *options = line_options(line);
        char *price =
            pl_money_format((long long)json_integer_value(json_object_get(line, "total")), currency, numbers_locale);
        append_owned(html, pl_strdupf("<tr><td>%lld × %s%s%s%s</td><td>%s</td></tr>",
                                      (long long)json_integer_value(json_object_get(line, "qty")), title,
                                      *options ? "<div class=\"options\">" : "", options,
                                      *options ? "</div>" : "", price));
        free(title);
        free(options);
        free(price);
    }
    long long discount = (long long)json_integer_value(json_object_get(order, "discount"));
    if (discount > 0) {
        char *price = pl_money_format(-discount, currency, numbers_locale);
        char *code = pl_text_html_escape(json_string_value(json_object_get(order, "discount_code")));
        char *label = fill(w->discount, code);
        append_owned(html, pl_strdupf("<tr><td>%s</td><td>%s</td></tr>", label, price));
        free(label);
        free(code);
        free(price);
    }
}

/* What the page says of an order that is no longer pending. */
static const char *state_sentence(const words *w, const char *state) {
    if (state && strcmp(state, "paid") == 0) return w->is_paid;
    if (state && strcmp(state, "failed") == 0) return w->was_declined;
    if (state && strcmp(state, "refunded") == 0) return w->refunded;
    return w->no_longer;
}

static const char *note_sentence(const words *w, pl_test_page_note note) {
    switch (note) {
    case PL_TEST_PAGE_PAID_NOW: return w->paid_now;
    case PL_TEST_PAGE_ALREADY_PAID: return w->already_paid;
    case PL_TEST_PAGE_DECLINED: return w->declined;
    case PL_TEST_PAGE_NO_LONGER: return w->no_longer;
    case PL_TEST_PAGE_FORM: break;
    }
    return NULL;
}

/* Pay and Decline, for a pending order. */
static char *pay_form(const json_t *order, const words *w, const char *total) {
    char *token = pl_text_html_escape(json_string_value(json_object_get(order, "token")));
    char *pay = fill(w->pay, total);
    char *form = pl_strdupf("<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"%s\">"
                            "<button name=\"action\" value=\"pay\" id=\"pay\">%s</button>"
                            "<button name=\"action\" value=\"decline\" id=\"decline\">%s</button></form>",
                            token, pay, w->decline);
    free(pay);
    free(token);
    return form;
}

char *pl_payments_test_page(const json_t *order, const char *bot, const char *locale, pl_test_page_note note,
                            const char *problems) {
    const words *w = words_for(locale);
    /* the words may fall back to English; the numbers are the shopper's
     * still (an Italian shopper reads 1.299,00 €, not €1,299.00) */
    const char *numbers = locale && *locale ? locale : w->lang;
    const char *currency = json_string_value(json_object_get(order, "currency"));
    const char *state = json_string_value(json_object_get(order, "state"));
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(order, "id")));
    char *total = pl_money_format((long long)json_integer_value(json_object_get(order, "total")), currency, numbers);
    char *heading = fill(w->order, id);
    char *bot_name = pl_text_html_escape(bot);
    char *note_text = fill(w->note, bot_name);
    char *html = pl_strdupf(
        "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>%s — %s</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}"
        "table{width:100%%;border-collapse:collapse}td{padding:.3rem 0;vertical-align:top}td+td{text-align:right}"
        ".options{color:#555;font-size:.9rem}"
        ".total td{border-top:1px solid #999;font-weight:bold}"
        "button{font-size:1rem;padding:.6rem 1.2rem;margin:.3rem .3rem 0 0}"
        ".note{color:#666;font-size:.85rem}</style></head><body>"
        "<h1>%s</h1><p class=\"note\">%s</p><table>",
        w->lang, heading, w->test, heading, note_text);
    free(note_text);
    free(bot_name);
    free(heading);
    append_lines(&html, order, w, numbers);
    append_owned(&html, pl_strdupf("<tr class=\"total\"><td>%s</td><td>%s</td></tr></table>", w->total, total));
    const char *said = note_sentence(w, note);
    if (problems || said) {
        char *m = pl_text_html_escape(problems ? problems : said);
        append_owned(&html, pl_strdupf("<p id=\"result\"><strong>%s</strong></p>", m));
        free(m);
    } else if (state && strcmp(state, "pending") == 0) {
        append_owned(&html, pay_form(order, w, total));
    } else {
        append_owned(&html, pl_strdupf("<p id=\"result\">%s</p>", state_sentence(w, state)));
    }
    append(&html, "</body></html>\n");
    free(total);
    return html;
}
