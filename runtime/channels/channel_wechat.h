/* channel_wechat: what the WeChat Official Accounts adapter (channel_wechat.c)
 * offers besides its pl_channel_adapter: the signature and the safe-mode
 * cipher WeChat's message encryption guide defines, in both directions, so
 * tests and fuzz targets can make requests as WeChat makes them and check
 * an encryption round trip. */
#ifndef PL_CHANNEL_WECHAT_H
#define PL_CHANNEL_WECHAT_H

#include <stddef.h>

/* The lower-case hex SHA-1 of parts sorted in byte order and concatenated:
 * `signature` (token, timestamp, nonce) and `msg_signature` (the same and
 * the Encrypt value). New string. */
char *pl_wechat_signature(const char *const *parts, size_t n);

/* Safe mode's Encrypt value for a message xml (len bytes) of the account
 * app_id: base64 of AES-256-CBC (key: the 43-character EncodingAESKey
 * base64-decoded; IV: its first 16 bytes) over 16 random bytes, the xml's
 * length as 4 bytes in network order, the xml and the app id, padded with
 * PKCS#7 to 32-byte blocks. random16 gives the 16 bytes (tests); NULL draws
 * them from libcrypto. New string, or NULL with *err when the key is not a
 * valid EncodingAESKey. */
char *pl_wechat_encrypt(const char *encoding_aes_key, const char *app_id, const char *xml, size_t len,
                        const unsigned char *random16, char **err);

/* The other way: the message *xml (new, NUL-terminated, *len bytes) and the
 * app id it was encrypted for (*app_id, new). PL_ERR with *err when the key
 * or the value is not valid or the plaintext is not of that layout. */
int pl_wechat_decrypt(const char *encoding_aes_key, const char *encrypted, char **xml, size_t *len,
                      char **app_id, char **err);

/* Forgets every cached access token (tests: a fresh start; a fetch still
 * in flight is abandoned). */
void pl_wechat_forget_tokens(void);
/* Forgets the plaintext pushes remembered against replays (tests and the
 * fuzz target: a fresh start). */
void pl_wechat_forget_pushes(void);

#endif
