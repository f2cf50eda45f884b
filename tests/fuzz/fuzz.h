/* fuzz.h: what the fuzz targets of tests/fuzz/ share (fuzz.c).
 *
 * Every target is one file, fuzz_NAME.c, defining LLVMFuzzerTestOneInput
 * (and, when it needs one-time setup, LLVMFuzzerInitialize). The same file
 * is linked two ways: with clang's libFuzzer for `make fuzz`, and with
 * replay.c's main under gcc's ASan/UBSan for `make test`, which feeds it
 * every file of tests/fuzz/corpus/NAME/. A target says it found a bug by
 * crashing (fuzz_expect aborts), as libFuzzer expects.
 *
 * Channel targets read their input as a small text request:
 *
 *     POST /hook?hub.mode=subscribe signed
 *     X-Hub-Signature-256: sha256=00
 *
 *     {"object": "whatsapp_business_account", ...}
 *
 * The first line is the method, the path with its query string, and the
 * word "signed" when the target should sign the request correctly (so the
 * fuzzer reaches the parsing behind the signature check) instead of using
 * the headers as they are; header lines follow up to a blank line, then
 * the body (any bytes). */
#ifndef PL_FUZZ_H
#define PL_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "channels/channel.h"

/* Each target defines this; one that needs setup also defines
 * int LLVMFuzzerInitialize(int *argc, char ***argv), which both drivers call
 * once first. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_HEADERS 16

/* A request read from a fuzz input; every string is owned by it. */
typedef struct {
    char *method;
    char *url;   /* "https://parley.test" + the path and query */
    char *query; /* after '?', or NULL */
    int sign;    /* the first line ended with "signed" */
    char *names[FUZZ_MAX_HEADERS];
    char *values[FUZZ_MAX_HEADERS];
    size_t nheaders;
    char *body; /* NUL-terminated copy; may hold NULs before body_len */
    size_t body_len;
} fuzz_request;

void fuzz_request_read(fuzz_request *r, const uint8_t *data, size_t size);
void fuzz_request_free(fuzz_request *r);
/* Sets a header (replacing one of the same name, case-insensitive). */
void fuzz_request_set_header(fuzz_request *r, const char *name, const char *value);

/* Meta's X-Hub-Signature-256 (WhatsApp, Messenger): "sha256=" and the hex
 * HMAC-SHA256 of the body keyed with the app secret. */
void fuzz_sign_meta(fuzz_request *r, const char *app_secret);

/* The webhook the adapter sees for r (borrows r's strings). Its header
 * lookup is case-insensitive like evhttp's; its long_payload knows one
 * short key, FUZZ_SHORT_KEY. */
#define FUZZ_SHORT_KEY "~AAAAAAAAAAAA"
pl_webhook fuzz_webhook(const fuzz_request *r, long long now);

/* Runs an adapter's inbound on req and checks what channel.h promises:
 * PL_OK with a 2xx/3xx and an array of events (each an object with a
 * "kind" and a non-empty "user"), or PL_ERR with a 4xx/5xx and a reason.
 * Each event also goes through what the server does with it next. With
 * FUZZ_VERBOSE set, the answer's status and reason (or events) go to
 * stderr: a way to see what a seed reaches. */
void fuzz_inbound(const char *channel, const json_t *settings, const pl_webhook *req);

/* A channel target's whole run: reads data as a request, has sign (NULL:
 * none) sign it with secret when it is marked "signed", and checks the
 * channel's inbound on it (fuzz_inbound) at FUZZ_NOW. */
#define FUZZ_NOW 1767225600LL
void fuzz_channel(const char *channel, const json_t *settings, void (*sign)(fuzz_request *r, const char *secret),
                  const char *secret, const uint8_t *data, size_t size);

/* Aborts with a message when cond is false: a broken promise is a finding. */
#define fuzz_expect(cond, what) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, what))
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* Log lines are formatted as usual but not printed (the fuzzer's output
 * stays readable at thousands of runs a second). */
void fuzz_quiet_log(void);

#endif
