/* fuzz_alexa: the Alexa skill's webhook (channel_alexa.c's inbound).
 *
 * Alexa's signature is an RSA signature checked against a certificate
 * chain downloaded from Amazon, which a fuzz target must never reach (it
 * would be network traffic, and the download code is not a parser). So:
 *  - a request marked "signed" goes to a skill configured with
 *    verify_signature false, the adapter's own seam for local runs: the
 *    body is read past the skill id and timestamp checks (now is fixed, so
 *    a seed's timestamp stays fresh) into request parsing and events;
 *  - any other request goes to a skill that verifies, with the legacy SHA-1
 *    header allowed: the headers (SignatureCertChainUrl rules, Signature-256)
 *    and the body's skill id and timestamp are checked, but "now" is a date
 *    no four-digit-year timestamp is within 150 s of, so every request stops
 *    before the chain would be fetched. Should that ever change, libcurl
 *    is pointed at a proxy on a closed loopback port. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "fuzz.h"

#define NOW 1767225600LL       /* 2026-01-01T00:00:00Z */
#define NEVER 1000000000000LL  /* year 33658: no request.timestamp is fresh */

static json_t *unverified, *verified;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    setenv("https_proxy", "http://127.0.0.1:9", 1);
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    unsetenv("PARLEY_ALEXA_CERT_URL_PREFIX");
    unverified = json_pack("{s:s, s:b}", "skill_id", "amzn1.ask.skill.fuzz", "verify_signature", 0);
    verified = json_pack("{s:s, s:b}", "skill_id", "amzn1.ask.skill.fuzz", "legacy_sha1_signature", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    pl_webhook req = fuzz_webhook(&r, r.sign ? NOW : NEVER);
    fuzz_inbound("alexa", r.sign ? unverified : verified, &req);
    fuzz_request_free(&r);
    return 0;
}
