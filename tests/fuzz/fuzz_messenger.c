/* fuzz_messenger: the Messenger Platform webhook (channel_messenger.c's
 * inbound): the GET handshake's query, the X-Hub-Signature-256 header, and,
 * for a request marked "signed", the body past a correct signature. */
#include "fuzz.h"

#define SECRET "fuzz-messenger-secret"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s, s:s}", "verify_token", "fuzz-verify", "app_secret",
                         SECRET, "page_access_token", "EAAfuzz");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_channel("messenger", settings, fuzz_sign_meta, SECRET, data, size);
    return 0;
}
