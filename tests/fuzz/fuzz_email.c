/* fuzz_email: Mailgun's route posts (channel_email.c's inbound): the form
 * or multipart/form-data body, the signature fields, and, for a request
 * marked "signed", the mail past a correct signature; then the mail that
 * would answer it, rendered with what the post said about the thread
 * (subject, Message-Id, References, the sender's name), which must be one
 * SMTP call whose message has CRLF line ends only.
 *
 * Signing is done here from Mailgun's documentation, independently of the
 * adapter: timestamp, token and signature = hex HMAC-SHA256 of timestamp
 * and token keyed with the signing key, added as fields (appended to a
 * form, or as leading parts of a multipart body, with the boundary of its
 * Content-Type). The token is a digest of the input, so that inputs do not
 * look like replays of one another. */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "fuzz.h"

#define KEY "fuzz-mailgun-key"
#define NOW 1767225600LL

extern const pl_channel_adapter pl_channel_email;

static json_t *settings;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_quiet_log();
    /* sender_check off: the corpus's mails carry no Mailgun verdicts, and
     * what comes after the check (the message, its rendering) is the larger
     * part to fuzz; the check itself is tests/c/test_channel_email.c's */
    settings = json_pack("{s:s, s:s, s:s, s:i, s:s}", "signing_key", KEY, "from", "Fuzz Shop <shop@fuzz.test>",
                         "smtp_url", "smtps://smtp.fuzz.test:465", "loop_limit", 1000000, "sender_check", "off");
    return 0;
}

/* The value of a Content-Type parameter (new), or NULL; a plain reading,
 * enough to place the signature parts. */
static char *boundary_of(const char *type) {
    const char *b = type ? strcasestr(type, "boundary=") : NULL;
    if (!b) return NULL;
    b += 9;
    if (*b == '"') {
        const char *end = strchr(b + 1, '"');
        return end ? pl_strndup(b + 1, (size_t)(end - b - 1)) : NULL;
    }
    return pl_strndup(b, strcspn(b, "; \t"));
}

static void sign(fuzz_request *r, const uint8_t *data, size_t size) {
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(data, size, d, &n, EVP_sha256(), NULL);
    char token[51];
    for (int i = 0; i < 25; i++) snprintf(token + 2 * i, 3, "%02x", d[i]);
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", NOW);
    char *signed_text = pl_strdupf("%s%s", ts, token);
    char *sig = pl_channel_hmac_hex("sha256", KEY, signed_text, strlen(signed_text));
    const char *type = NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], "Content-Type") == 0) type = r->values[i];
    char *boundary = type && strncasecmp(type, "multipart/", 10) == 0 ? boundary_of(type) : NULL;
    char *fields;
    if (boundary)
        fields = pl_strdupf("--%s\r\nContent-Disposition: form-data; name=\"timestamp\"\r\n\r\n%s\r\n"
                            "--%s\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n%s\r\n"
                            "--%s\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\n%s\r\n",
                            boundary, ts, boundary, token, boundary, sig);
    else
        fields = pl_strdupf("timestamp=%s&token=%s&signature=%s&", ts, token, sig);
    size_t len = strlen(fields);
    char *body = malloc(len + r->body_len + 1);
    if (!body) abort();
    memcpy(body, fields, len);
    memcpy(body + len, r->body, r->body_len);
    body[len + r->body_len] = '\0';
    free(r->body);
    r->body = body;
    r->body_len += len;
    free(fields);
    free(boundary);
    free(sig);
    free(signed_text);
}

/* The answer to each message event: one mail, CRLF only. */
static void answer(const pl_webhook *req) {
    pl_channel_config cfg = {"fuzz", "email", settings};
    pl_inbound in = {.status = 200};
    char *err = NULL;
    if (pl_channel_email.inbound(&cfg, req, &in, &err) == PL_OK) {
        size_t i;
        json_t *ev;
        json_array_foreach(in.events, i, ev) {
            pl_outbound to = {.user = json_string_value(json_object_get(ev, "user")),
                              .info = json_object_get(ev, "info"), .locale = "en"};
            json_t *replies = json_pack("[{s:O, s:[{s:s, s:s}], s:{s:s, s:s}}]", "text", json_object_get(ev, "text"),
                                        "choices", "title", "One", "payload", "one", "link", "title", "Pay",
                                        "url", "https://pay.fuzz.test/o/1?token=a&b=c");
            json_t *calls = NULL;
            char *why = NULL;
            fuzz_expect(pl_channel_email.render(&cfg, &to, replies, &calls, &why) == PL_OK,
                        "the answer to an accepted mail renders");
            fuzz_expect(json_array_size(calls) == 1, "one mail per turn");
            const char *mail = json_string_value(json_object_get(json_array_get(calls, 0), "body"));
            fuzz_expect(mail != NULL, "the mail has a body");
            for (const char *p = mail; p && *p; p++)
                fuzz_expect(*p != '\n' || (p > mail && p[-1] == '\r'), "the mail's lines end in CRLF");
            json_decref(calls);
            json_decref(replies);
            free(why);
        }
    }
    free(err);
    pl_inbound_clear(&in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_request r;
    fuzz_request_read(&r, data, size);
    if (r.sign) sign(&r, data, size);
    pl_webhook req = fuzz_webhook(&r, NOW);
    fuzz_inbound("email", settings, &req);
    answer(&req); /* the same post again: a redelivery, the same events */
    fuzz_request_free(&r);
    return 0;
}
