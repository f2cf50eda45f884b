/* channel_x: the X (Twitter) direct-message adapter's one public helper
 * besides the adapter itself (pl_channel_x, found through registry.c): the
 * OAuth 1.0a signer its authorize hook uses, exposed so a C test can check
 * it against X's documented example with a fixed nonce and timestamp. */
#ifndef PL_CHANNEL_X_H
#define PL_CHANNEL_X_H

/* An account's OAuth 1.0a user-context credentials (borrowed strings). */
typedef struct {
    const char *consumer_key, *consumer_secret;
    const char *token, *token_secret;
} pl_x_credentials;

/* The Authorization header's value for a request (new string):
 *   OAuth oauth_consumer_key="...", oauth_nonce="...", oauth_signature="...",
 *   oauth_signature_method="HMAC-SHA1", oauth_timestamp="...",
 *   oauth_token="...", oauth_version="1.0"
 * signed over METHOD & the URL without its query & every parameter — the
 * URL's query and, for an application/x-www-form-urlencoded body, form
 * (NULL otherwise: a JSON body is not signed) — as
 * https://developer.x.com/en/docs/authentication/oauth-1-0a/creating-a-signature
 * says. The signature alone, when signature is not NULL (new). NULL when
 * the URL is not http(s)://host/... */
char *pl_x_oauth_header(const char *method, const char *url, const char *form,
                        const pl_x_credentials *creds, const char *nonce, long long timestamp,
                        char **signature);

#endif
