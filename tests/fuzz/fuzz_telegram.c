/* fuzz_telegram: the Telegram Bot API webhook (channel_telegram.c's
 * inbound): the X-Telegram-Bot-Api-Secret-Token header, and, for a request
 * marked "signed", the Update body past the right secret. */
#include "fuzz.h"

#define SECRET "fuzz-secret-token"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s}", "bot_token", "123456:fuzz", "secret_token", SECRET);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign) fuzz_request_set_header(&r, "X-Telegram-Bot-Api-Secret-Token", SECRET);
    pl_webhook req = fuzz_webhook(&r, 1767225600);
    fuzz_inbound("telegram", settings, &req);
    fuzz_request_free(&r);
    return 0;
}
