/* fuzz_wechat: WeChat Official Accounts pushes (channel_wechat.c's inbound):
 * the query (signature, timestamp, nonce, echostr, encrypt_type,
 * msg_signature), the XML body, and safe mode. A request marked "signed"
 * gets a correct signature, timestamp and nonce ahead of its own query; one
 * whose query also says encrypt_type=aes goes to a bot in safe mode, with
 * its body encrypted as WeChat would (the body is then the message inside)
 * and a correct msg_signature, so the fuzzer reaches the parse behind the
 * cipher. Unsigned requests fuzz the signature checks themselves. */
#define _GNU_SOURCE
#include <string.h>

#include "channels/channel_wechat.h"
#include "fuzz.h"

#define TOKEN "fuzz-token"
#define AES_KEY "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define APP_ID "wxfuzz"
#define NOW 1767225600

static json_t *plain, *safe;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    plain = json_pack("{s:s, s:s, s:s}", "token", TOKEN, "app_id", APP_ID, "app_secret", "fuzz-secret");
    safe = json_pack("{s:s, s:s, s:s, s:s}", "token", TOKEN, "app_id", APP_ID, "app_secret", "fuzz-secret",
                     "encoding_aes_key", AES_KEY);
    return 0;
}

/* Puts a correct signature (and, in safe mode, msg_signature over the
 * encrypted body) ahead of the request's own query. */
static void sign(fuzz_request *r, int encrypted) {
    const char *ts = "1767225600", *nonce = "42";
    const char *parts[] = {TOKEN, ts, nonce, NULL};
    char *sig = pl_wechat_signature(parts, 3), *msg_sig = NULL;
    if (encrypted) {
        char *err = NULL;
        char *enc = pl_wechat_encrypt(AES_KEY, APP_ID, r->body, r->body_len, NULL, &err);
        free(err);
        char *body = pl_strdupf("<xml><ToUserName><![CDATA[gh_fuzz]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt></xml>",
                                enc ? enc : "");
        parts[3] = enc;
        msg_sig = pl_wechat_signature(parts, 4);
        free(enc);
        free(r->body);
        r->body = body;
        r->body_len = strlen(body);
    }
    char *query = pl_strdupf("signature=%s&timestamp=%s&nonce=%s%s%s%s%s", sig, ts, nonce,
                             msg_sig ? "&msg_signature=" : "", msg_sig ? msg_sig : "", r->query ? "&" : "",
                             r->query ? r->query : "");
    free(r->query);
    r->query = query;
    free(sig);
    free(msg_sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    pl_wechat_forget_pushes(); /* every input signs the same timestamp and nonce */
    int encrypted = r.query && strstr(r.query, "encrypt_type=aes") != NULL;
    if (r.sign) sign(&r, encrypted);
    pl_webhook req = fuzz_webhook(&r, NOW);
    fuzz_inbound("wechat", encrypted ? safe : plain, &req);
    fuzz_request_free(&r);
    return 0;
}
