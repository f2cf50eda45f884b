/* http_policy: what a bot's script may reach over HTTP.
 *
 * Two checks, both plain C a test can drive without a loop or Lua:
 *  - the manifest's allow list, matched on parsed URLs (libcurl's curl_url):
 *    scheme, host (case-insensitive), port (the scheme's default when none
 *    is written) and a path prefix that ends on a segment boundary;
 *  - the address a request is about to connect to: loopback, private and
 *    the other addresses that lead inside the host's own network are not
 *    for scripts (http_client.c asks, with the address libcurl resolved).
 * http_lua.c applies them to scripts' requests; the operator's own requests
 * (platform APIs, payment providers) are not subject to them. */
#ifndef PL_HTTP_POLICY_H
#define PL_HTTP_POLICY_H

#include <sys/socket.h>

/* An http(s) URL as the policy compares it. */
typedef struct {
    char *scheme; /* "http" or "https" */
    char *host;   /* lower case ASCII (an international name in its xn-- form), an
                   * IPv6 literal canonical and in [] */
    long port;    /* the scheme's default when the URL names none */
    char *path;   /* at least "/": dot segments removed, escapes normalised
                   * (unreserved characters decoded, hex digits upper case) */
    char *url;    /* the URL as libcurl normalised it: what is fetched */
} pl_url;

/* An entry of "http": {"allow": [...]}: an http(s) URL with an ASCII host
 * and no user name, query or fragment. Its path is a prefix; a trailing slash does
 * not count ("https://api.example/v1/" and ".../v1" are the same rule).
 * Fills *rule (clear it with pl_url_clear) or fails with *err. */
int pl_http_rule_parse(const char *text, pl_url *rule, char **err);

/* A URL a script asks for. Refused (with *err) besides what is not an
 * http(s) URL with an ASCII host: a user name or password ("https://api.example@evil/"), an
 * IPv6 zone, a backslash, and a path that a server could read as leaving
 * its prefix: a "." or ".." segment in any encoding (%2e, and with ";..."
 * parameters, which some servers drop). */
int pl_http_target_parse(const char *text, pl_url *target, char **err);

void pl_url_clear(pl_url *url);

/* 1 when target is under rule: the same scheme, host and port, and the
 * target's path is the rule's path or below it ("/v1" covers "/v1" and
 * "/v1/x", not "/v10"). */
int pl_http_rule_covers(const pl_url *rule, const pl_url *target);

/* NULL when a script may connect to addr; else why not, a word for the log:
 * "loopback", "private", "link-local", "unique-local", "unspecified",
 * "multicast", "broadcast", "reserved", or "not an IP address". IPv6
 * addresses that carry an IPv4 one (mapped ::ffff:0:0/96, compatible ::/96,
 * NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the IPv4 address. */
const char *pl_http_address_refusal(const struct sockaddr *addr);

#endif
