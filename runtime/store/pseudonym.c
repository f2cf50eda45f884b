/* pseudonym: the pseudonyms of erased shoppers and their key; see
 * pseudonym.h. */
#include "pseudonym.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "store_backend.h"

void pl_pseudonym_new_key_hex(char out[2 * PL_STORE_KEY_BYTES + 1]) {
    unsigned char key[PL_STORE_KEY_BYTES];
    if (RAND_bytes(key, sizeof key) != 1) abort(); /* no randomness: nothing safe to go on with */
    for (size_t i = 0; i < sizeof key; i++) snprintf(out + 2 * i, 3, "%02x", key[i]);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pl_pseudonym_key_from_hex(const char *hex, unsigned char key[PL_STORE_KEY_BYTES]) {
    if (!hex || strlen(hex) != 2 * PL_STORE_KEY_BYTES) return PL_ERR;
    for (int i = 0; i < PL_STORE_KEY_BYTES; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return PL_ERR;
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return PL_OK;
}

int pl_pseudonym_of(pl_store *store, const pl_session_key *key, char out[PL_STORE_PSEUDONYM_LEN + 1], char **err) {
    if (!store->has_pseudonym_key) {
        if (store->backend->pseudonym_key(store, store->pseudonym_key, err) != PL_OK) return PL_ERR;
        store->has_pseudonym_key = 1;
    }
    /* the unit separator cannot be in a bot's or a channel's name, so no two
     * keys give one text */
    char *text = pl_strdupf("%s\x1f%s\x1f%s", key->bot, key->channel, key->user);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int ok = HMAC(EVP_sha256(), store->pseudonym_key, PL_STORE_KEY_BYTES, (const unsigned char *)text,
                  strlen(text), mac, &n) != NULL;
    free(text);
    if (!ok || n < 8) return pl_fail(err, "store: the pseudonym could not be computed");
    memcpy(out, "erased-", 7);
    for (int i = 0; i < 8; i++) snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
    return PL_OK;
}
