/* http_policy: the allow-list match and the address classification of
 * scripts' outbound HTTP; see http_policy.h. URLs are parsed by libcurl's
 * URL API only (the parser that also fetches them), never by hand: this
 * file only compares the parts it returns. */
#define _GNU_SOURCE
#include "http_policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

void pl_url_clear(pl_url *url) {
    free(url->scheme);
    free(url->host);
    free(url->path);
    free(url->url);
    memset(url, 0, sizeof *url);
}

/* --- the path ------------------------------------------------------------------ */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int unreserved(int c) { return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

/* path with its escapes in RFC 3986's normal form (6.2.2.1-2): an escaped
 * unreserved character decoded, the others with upper-case hex digits, so
 * that "/v%31" and "/v1", "%c3%a9" and "%C3%A9" compare equal. New, or
 * NULL for a '%' that starts no escape. */
static char *normal_escapes(const char *path) {
    size_t n = strlen(path), o = 0;
    char *out = malloc(n + 1);
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        if (path[i] != '%') {
            out[o++] = path[i];
            continue;
        }
        /* path[i + 2] is read only when path[i + 1] is a digit, not the NUL */
        int hi = hex_value(path[i + 1]), lo = hi >= 0 ? hex_value(path[i + 2]) : -1;
        if (lo < 0) {
            free(out);
            return NULL;
        }
        int c = hi * 16 + lo;
        if (unreserved(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = "0123456789ABCDEF"[c >> 4];
            out[o++] = "0123456789ABCDEF"[c & 15];
        }
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* 1 when a segment of the decoded path, with any ";parameters" cut off,
 * is "." or "..": what a server that decodes before it resolves (or drops
 * parameters, as some Java servers do with "..;") reads as a step up. */
static int has_dot_segment(const char *decoded) {
    for (const char *seg = decoded; seg; seg = strchr(seg, '/')) {
        seg++;
        size_t len = strcspn(seg, "/;");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) return 1;
    }
    return 0;
}

/* Checks the path of a requested URL (raw: as libcurl keeps it, its literal
 * dot segments already resolved). */
static int check_target_path(CURLU *h, const char *raw, char **err) {
    if (strchr(raw, '\\')) return pl_fail(err, "a backslash in the path is refused");
    char *decoded = NULL;
    if (curl_url_get(h, CURLUPART_PATH, &decoded, CURLU_URLDECODE) != CURLUE_OK)
        return pl_fail(err, "the path has an escape that cannot be decoded");
    int bad = has_dot_segment(decoded) || strchr(decoded, '\\') != NULL;
    curl_free(decoded);
    if (bad) return pl_fail(err, "an encoded \".\", \"..\" or backslash in the path is refused");
    return PL_OK;
}

/* --- the host ------------------------------------------------------------------ */

/* host in the form compared (new): lower case; an IPv6 literal canonical
 * ("[::FFFF:7f00:1]" -> "[::ffff:127.0.0.1]"). libcurl already wrote IPv4
 * in dotted decimal ("http://2130706433/" -> 127.0.0.1). */
static char *normal_host(const char *host) {
    size_t n = strlen(host);
    char *out = pl_strdup(host);
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (n < 3 || host[0] != '[' || host[n - 1] != ']') return out;
    struct in6_addr a;
    char inner[INET6_ADDRSTRLEN + 2], text[INET6_ADDRSTRLEN];
    snprintf(inner, sizeof inner, "%.*s", (int)(n - 2), host + 1);
    if (inet_pton(AF_INET6, inner, &a) == 1 && inet_ntop(AF_INET6, &a, text, sizeof text)) {
        free(out);
        out = pl_strdupf("[%s]", text);
    }
    return out;
}

/* --- URLs ---------------------------------------------------------------------- */

/* International host names are compared, and must be written, in their
 * ASCII form: libcurl converts them only where the process's locale allows
 * (CURLU_PUNYCODE fails in the C locale), and a look-alike in another
 * script is then a different name. */
static int ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* A part of h (new, libcurl's memory), or NULL when absent. */
static char *part(CURLU *h, CURLUPart which, unsigned flags) {
    char *value = NULL;
    return curl_url_get(h, which, &value, flags) == CURLUE_OK ? value : NULL;
}

/* The parts every URL must have right: scheme, no user name, no zone. */
static int check_authority(CURLU *h, char **err) {
    char *scheme = part(h, CURLUPART_SCHEME, 0), *user = part(h, CURLUPART_USER, 0),
         *password = part(h, CURLUPART_PASSWORD, 0), *zone = part(h, CURLUPART_ZONEID, 0);
    int rc = PL_OK;
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        rc = pl_fail(err, "only http and https URLs can be called");
    else if (user || password)
        rc = pl_fail(err, "a user name or password in the URL is refused");
    else if (zone)
        rc = pl_fail(err, "an IPv6 zone in the URL is refused");
    curl_free(scheme);
    curl_free(user);
    curl_free(password);
    curl_free(zone);
    return rc;
}

/* Fills out from h, whose authority has been checked. */
static int fill(CURLU *h, pl_url *out, char **err) {
    char *scheme = part(h, CURLUPART_SCHEME, 0), *host = part(h, CURLUPART_HOST, 0),
         *port = part(h, CURLUPART_PORT, CURLU_DEFAULT_PORT), *path = part(h, CURLUPART_PATH, 0),
         *url = part(h, CURLUPART_URL, 0);
    int rc = PL_OK;
    char *normal = path ? normal_escapes(path) : NULL;
    if (!host || !*host || !port || !url)
        rc = pl_fail(err, "the URL has no host");
    else if (!ascii(host))
        rc = pl_fail(err, "write an international host name in its xn-- form (punycode)");
    else if (!normal)
        rc = pl_fail(err, "a '%%' in the path starts no escape");
    if (rc == PL_OK) {
        out->scheme = pl_strdup(scheme);
        out->host = normal_host(host);
        out->port = strtol(port, NULL, 10);
        out->path = normal;
        out->url = pl_strdup(url);
        normal = NULL;
    }
    free(normal);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(url);
    return rc;
}

/* Parses text into *out: what rules and targets share. h is left for the
 * caller's own checks (new; curl_url_cleanup it). */
static int parse(const char *text, pl_url *out, CURLU **h, char **err) {
    memset(out, 0, sizeof *out);
    *h = curl_url();
    if (!*h) abort();
    CURLUcode uc = curl_url_set(*h, CURLUPART_URL, text, 0);
    if (uc != CURLUE_OK) return pl_fail(err, "not a URL (%s)", curl_url_strerror(uc));
    if (check_authority(*h, err) != PL_OK) return PL_ERR;
    return fill(*h, out, err);
}

int pl_http_rule_parse(const char *text, pl_url *rule, char **err) {
    CURLU *h = NULL;
    int rc = parse(text, rule, &h, err);
    char *query = rc == PL_OK ? part(h, CURLUPART_QUERY, 0) : NULL;
    char *fragment = rc == PL_OK ? part(h, CURLUPART_FRAGMENT, 0) : NULL;
    if (query || fragment) rc = pl_fail(err, "an allowed URL is a prefix: it has no query or fragment");
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(h);
    if (rc != PL_OK) {
        pl_url_clear(rule);
        return PL_ERR;
    }
    size_t n = strlen(rule->path);
    if (n > 1 && rule->path[n - 1] == '/') rule->path[n - 1] = '\0';
    return PL_OK;
}

int pl_http_target_parse(const char *text, pl_url *target, char **err) {
    CURLU *h = NULL;
    int rc = parse(text, target, &h, err);
    if (rc == PL_OK) {
        char *raw = part(h, CURLUPART_PATH, 0);
        rc = check_target_path(h, raw ? raw : "/", err);
        curl_free(raw);
    }
    curl_url_cleanup(h);
    if (rc != PL_OK) pl_url_clear(target);
    return rc;
}

int pl_http_rule_covers(const pl_url *rule, const pl_url *target) {
    if (strcmp(rule->scheme, target->scheme) != 0 || strcmp(rule->host, target->host) != 0 ||
        rule->port != target->port)
        return 0;
    size_t n = strlen(rule->path);
    if (strcmp(rule->path, "/") == 0) return 1;
    return strncmp(target->path, rule->path, n) == 0 && (target->path[n] == '\0' || target->path[n] == '/');
}

/* --- addresses ----------------------------------------------------------------- */

/* What an IPv4 address (4 bytes, network order) is, or NULL when public. */
static const char *ipv4_refusal(const unsigned char *b) {
    static const struct {
        uint32_t net;
        int bits;
        const char *kind;
    } nets[] = {
        {0x00000000u, 8, "unspecified"}, /* "this network" */
        {0x0A000000u, 8, "private"},
        {0x64400000u, 10, "private"}, /* shared address space (carrier-grade NAT) */
        {0x7F000000u, 8, "loopback"},
        {0xA9FE0000u, 16, "link-local"},
        {0xAC100000u, 12, "private"},
        {0xC0000000u, 24, "reserved"}, /* IETF protocol assignments */
        {0xC0A80000u, 16, "private"},
        {0xC6120000u, 15, "private"}, /* benchmarking networks */
        {0xE0000000u, 4, "multicast"},
        {0xFFFFFFFFu, 32, "broadcast"},
        {0xF0000000u, 4, "reserved"},
    };
    uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
        uint32_t mask = nets[i].bits == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> nets[i].bits);
        if ((a & mask) == nets[i].net) return nets[i].kind;
    }
    return NULL;
}

/* 1 when b[from..to) are all zero. */
static int zeros(const unsigned char *b, int from, int to) {
    for (int i = from; i < to; i++)
        if (b[i]) return 0;
    return 1;
}

/* The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4),
 * or NULL. */
static const unsigned char *embedded_ipv4(const unsigned char *b) {
    if (zeros(b, 0, 10) && b[10] == 0xff && b[11] == 0xff) return b + 12; /* ::ffff:0:0/96 */
    if (zeros(b, 0, 12)) return b + 12;                                  /* ::/96, deprecated */
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zeros(b, 4, 12)) return b + 12;
    if (b[0] == 0x20 && b[1] == 0x02) return b + 2; /* 2002::/16 */
    return NULL;
}

static const char *ipv6_refusal(const unsigned char *b) {
    if (zeros(b, 0, 16)) return "unspecified";
    if (zeros(b, 0, 15) && b[15] == 1) return "loopback";
    const unsigned char *v4 = embedded_ipv4(b);
    if (v4) {
        const char *why = ipv4_refusal(v4);
        /* a compatible address (::a.b.c.d) is deprecated and goes nowhere public */
        return why ? why : zeros(b, 0, 12) ? "reserved" : NULL;
    }
    if (b[0] == 0xff) return "multicast";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "private"; /* site-local, deprecated */
    if ((b[0] & 0xfe) == 0xfc) return "unique-local";
    if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1)
        return "private"; /* 64:ff9b:1::/48, NAT64 for local use */
    if (b[0] == 0x01 && zeros(b, 1, 8)) return "reserved";                          /* 100::/64, discard */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return "reserved"; /* documentation */
    return NULL;
}

const char *pl_http_address_refusal(const struct sockaddr *addr) {
    if (addr->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, addr, sizeof in);
        return ipv4_refusal((const unsigned char *)&in.sin_addr);
    }
    if (addr->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, addr, sizeof in6);
        return ipv6_refusal(in6.sin6_addr.s6_addr);
    }
    return "not an IP address";
}
