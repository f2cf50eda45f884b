/* fuzz_slack: the Slack webhook (channel_slack.c's inbound): the
 * X-Slack-Request-Timestamp and X-Slack-Signature headers, and, for a
 * request marked "signed", the body past a correct signature made now —
 * Events API JSON, or an interactivity form when the Content-Type header
 * says application/x-www-form-urlencoded. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-slack-signing-secret"

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    settings = json_pack("{s:s, s:s}", "signing_secret", SECRET, "bot_token", "xoxb-fuzz");
    return 0;
}

/* Slack's signature: "v0=" and the hex HMAC-SHA256 of "v0:<ts>:<body>",
 * made now. */
static void sign_slack(fuzz_request *r, const char *secret) {
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", FUZZ_NOW);
    size_t prefix = strlen(ts) + 4;
    char *base = malloc(prefix + r->body_len + 1);
    if (!base) abort();
    snprintf(base, prefix + 1, "v0:%s:", ts);
    if (r->body_len) memcpy(base + prefix, r->body, r->body_len);
    char *hex = pl_channel_hmac_hex("sha256", secret, base, prefix + r->body_len);
    char *value = pl_strdupf("v0=%s", hex);
    fuzz_request_set_header(r, "X-Slack-Request-Timestamp", ts);
    fuzz_request_set_header(r, "X-Slack-Signature", value);
    free(value);
    free(hex);
    free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_channel("slack", settings, sign_slack, SECRET, data, size);
    return 0;
}
