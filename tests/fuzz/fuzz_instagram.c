/* fuzz_instagram: the Instagram Direct webhook (channel_instagram.c on
 * channel_meta.c's inbound): the GET handshake's query, the
 * X-Hub-Signature-256 header, and, for a request marked "signed", the body
 * past a correct signature. */
#include "fuzz.h"

#define SECRET "fuzz-instagram-secret"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s, s:s}", "verify_token", "fuzz-verify", "app_secret",
                         SECRET, "access_token", "IGQVfuzz");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign) fuzz_sign_meta(&r, SECRET);
    pl_webhook req = fuzz_webhook(&r, 1767225600);
    fuzz_inbound("instagram", settings, &req);
    fuzz_request_free(&r);
    return 0;
}
