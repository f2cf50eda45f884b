/* pseudonym: what an erased shopper's orders keep in place of the user
 * (store.h, pl_store_pseudonym): "erased-" and the first 16 hex digits of
 * HMAC-SHA256(key, bot "\x1f" channel "\x1f" user), under a random 32-byte
 * key the database made once (migration 9's settings table), which the
 * backends keep as 64 hex digits. */
#ifndef PL_PSEUDONYM_H
#define PL_PSEUDONYM_H

#include "store_types.h"

/* The length of a pseudonym ("erased-" and 16 hex digits). */
#define PL_STORE_PSEUDONYM_LEN 23

/* A new random key (PL_STORE_KEY_BYTES: store_types.h), as the database
 * keeps it: 64 hex digits (and a NUL). */
void pl_pseudonym_new_key_hex(char out[2 * PL_STORE_KEY_BYTES + 1]);
/* The key back from that text; PL_ERR when it is not 64 hex digits. */
int pl_pseudonym_key_from_hex(const char *hex, unsigned char key[PL_STORE_KEY_BYTES]);
/* The shopper's pseudonym in store's database (its key read once, through
 * the backend, and kept in the handle). */
int pl_pseudonym_of(pl_store *store, const pl_session_key *key, char out[PL_STORE_PSEUDONYM_LEN + 1], char **err);

#endif
