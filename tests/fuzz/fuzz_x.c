/* fuzz_x: the X Account Activity webhook (channel_x.c's inbound): the
 * CRC's query, the x-twitter-webhooks-signature header, and, for a request
 * marked "signed", the body past a correct signature. The account's user_id
 * is set, so both "own message" paths are reached. */
#include "fuzz.h"

#define SECRET "fuzz-x-consumer-secret"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s, s:s, s:s, s:s}", "consumer_key", "fuzz-ck", "consumer_secret", SECRET,
                         "access_token", "1-fuzz", "access_token_secret", "fuzz-ts", "user_id", "3805104374");
    return 0;
}

/* X's signature: "sha256=" and the base64 HMAC-SHA256 of the body. */
static void sign_x(fuzz_request *r, const char *secret) {
    char *b64 = pl_channel_hmac_base64("sha256", secret, r->body, r->body_len);
    char *value = pl_strdupf("sha256=%s", b64);
    fuzz_request_set_header(r, "x-twitter-webhooks-signature", value);
    free(value);
    free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_channel("x", settings, sign_x, SECRET, data, size);
    return 0;
}
