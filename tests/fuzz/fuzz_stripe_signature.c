/* fuzz_stripe_signature: Stripe's webhook (payment_stripe.c): the
 * Stripe-Signature header ("t=...,v1=...") checked against the body, and,
 * for a request marked "signed", the event body past a correct signature
 * made here as Stripe documents it (hex HMAC-SHA256 of "<t>.<body>" keyed
 * with the endpoint's secret). The input is a request (fuzz.h). No HTTP
 * client is given, so a failed payment's page is never closed over the
 * network. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "commerce/payments.h"
#include "fuzz.h"

#define SECRET "whsec_fuzz"
#define NOW 1767225600LL

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s, s:s}", "provider", "stripe", "secret_key", "sk_test_fuzz", "webhook_secret",
                         SECRET);
    return 0;
}

static void sign(fuzz_request *r) {
    char *text = pl_strdupf("%lld.", NOW);
    size_t n = strlen(text);
    char *signed_payload = malloc(n + r->body_len + 1);
    if (!signed_payload) abort();
    memcpy(signed_payload, text, n);
    memcpy(signed_payload + n, r->body, r->body_len + 1);
    char *hex = pl_channel_hmac_hex("sha256", SECRET, signed_payload, n + r->body_len);
    char *header = pl_strdupf("t=%lld,v1=%s", NOW, hex);
    fuzz_request_set_header(r, "Stripe-Signature", header);
    free(header);
    free(hex);
    free(signed_payload);
    free(text);
}

static void check(const json_t *confirmations) {
    size_t i;
    json_t *c;
    fuzz_expect(json_is_array(confirmations), "confirmations are an array");
    json_array_foreach(confirmations, i, c) {
        const char *status = json_string_value(json_object_get(c, "status"));
        const char *from = NULL, *to = NULL;
        fuzz_expect(status && pl_payments_transition(status, &from, &to), "a confirmation has a known status");
        fuzz_expect(json_object_get(c, "order_id") || json_object_get(c, "ref"), "a confirmation names its order");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign) sign(&r);
    pl_webhook req = fuzz_webhook(&r, NOW);
    pl_payment_ctx ctx = {{"fuzz", "payments", settings}, "https://parley.test", NULL};
    json_t *confirmations = NULL;
    int status = 0;
    char *err = NULL;
    if (pl_payments_find("stripe")->webhook(&ctx, &req, &confirmations, &status, &err) == PL_OK) {
        fuzz_expect(status == 200, "an accepted event is answered 200");
        check(confirmations);
    } else {
        fuzz_expect(status >= 400 && status < 600 && err, "a refused event is a 4xx/5xx with a reason");
        fuzz_expect(!confirmations, "a refused event confirms nothing");
    }
    json_decref(confirmations);
    free(err);
    fuzz_request_free(&r);
    return 0;
}
