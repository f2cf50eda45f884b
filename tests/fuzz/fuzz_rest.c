/* fuzz_rest: the body of POST /v1/bots/{bot}/messages (rest.c), the text
 * server.c reads into a message or refuses with a 400 and its reason. The
 * input is the body. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *reason = NULL;
    pl_message *msg = pl_rest_parse_message("fuzz", (const char *)data, size, &reason);
    fuzz_expect(!msg != !reason, "a body is either a message or refused with a reason");
    if (msg) {
        fuzz_expect(msg->user && *msg->user && strlen(msg->user) <= 256, "the user is 1 to 256 bytes");
        fuzz_expect(msg->text || msg->payload, "a message has text or a payload");
        fuzz_expect(!msg->text || strlen(msg->text) <= 4096, "text is at most 4096 bytes");
    }
    if (reason) {
        json_t *answer = pl_rest_error(reason);
        fuzz_expect(answer != NULL, "the reason can be answered as JSON");
        json_decref(answer);
    }
    pl_message_free(msg);
    free(reason);
    return 0;
}
