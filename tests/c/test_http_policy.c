/* test_http_policy: what a bot's script may reach (http_policy.c), from
 * tables — allow entries against requested URLs (look-alike hosts and
 * ports, user names, paths on and off a segment boundary, dot segments and
 * their encodings, IPv6 literals, international names), entries that are
 * not valid, and the addresses a request may connect to. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "check.h"
#include "event/http_policy.h"

/* 1 when rule allows url, 0 when not, -1 when url itself is refused. */
static int verdict(const char *rule_text, const char *url) {
    pl_url rule, target;
    char *err = NULL;
    if (pl_http_rule_parse(rule_text, &rule, &err) != PL_OK) {
        printf("#   rule %s: %s\n", rule_text, err);
        free(err);
        return -2;
    }
    int v = -1;
    if (pl_http_target_parse(url, &target, &err) == PL_OK) {
        v = pl_http_rule_covers(&rule, &target);
        pl_url_clear(&target);
    }
    free(err);
    pl_url_clear(&rule);
    return v;
}

TEST(allow_list_matches_parsed_urls) {
    enum { REFUSED = -1, NO = 0, YES = 1 };
    static const struct {
        const char *rule, *url;
        int want;
    } cases[] = {
        /* the prefix on a segment boundary */
        {"https://api.example/v1", "https://api.example/v1", YES},
        {"https://api.example/v1", "https://api.example/v1/", YES},
        {"https://api.example/v1", "https://api.example/v1/orders?id=4", YES},
        {"https://api.example/v1", "https://api.example/v10", NO},
        {"https://api.example/v1", "https://api.example/v1.json", NO},
        {"https://api.example/v1", "https://api.example/v", NO},
        {"https://api.example/v1", "https://api.example/", NO},
        {"https://api.example/v1/", "https://api.example/v1", YES},
        {"https://api.example/v1/", "https://api.example/v1/x", YES},
        {"https://api.example/v1/", "https://api.example/v10", NO},
        {"https://api.example", "https://api.example/anything/at/all", YES},
        {"https://api.example/", "https://api.example", YES},
        /* look-alike hosts */
        {"https://api.example", "https://api.example.evil.com/", NO},
        {"https://api.example", "https://api.exampleevil.com/", NO},
        {"https://api.example", "https://evil.com/api.example/", NO},
        {"https://api.example", "https://xapi.example/", NO},
        {"https://api.example", "https://api.example./", NO},
        {"https://api.example", "https://sub.api.example/", NO},
        /* user names and passwords */
        {"https://api.example", "https://api.example@evil.com/", REFUSED},
        {"https://api.example", "https://api.example:443@evil.com/", REFUSED},
        {"https://api.example", "https://user:pw@api.example/", REFUSED},
        {"https://api.example", "https://:@api.example/", REFUSED},
        {"https://api.example", "https://evil.com@api.example/", REFUSED},
        /* case */
        {"https://api.example", "HTTPS://API.Example/x", YES},
        {"https://API.EXAMPLE/V1", "https://api.example/V1/x", YES},
        {"https://api.example/v1", "https://api.example/V1/x", NO},
        /* ports: the scheme's default when none is written */
        {"https://api.example", "https://api.example:443/x", YES},
        {"https://api.example:443", "https://api.example/x", YES},
        {"http://api.example", "http://api.example:80/", YES},
        {"https://api.example", "https://api.example:8443/", NO},
        {"https://api.example:80", "https://api.example:8080/", NO},
        {"https://api.example:8080", "https://api.example:80/", NO},
        {"https://api.example:8080", "https://api.example:08080/", YES},
        {"http://127.0.0.1:4123", "http://127.0.0.1:41234/", NO},
        /* schemes */
        {"https://api.example", "http://api.example/", NO},
        {"http://api.example", "https://api.example/", NO},
        {"https://api.example", "ftp://api.example/", REFUSED},
        {"https://api.example", "file:///etc/passwd", REFUSED},
        {"https://api.example", "gopher://api.example/", REFUSED},
        {"https://api.example", "api.example/x", REFUSED},
        {"https://api.example", "//api.example/x", REFUSED},
        {"https://api.example", "", REFUSED},
        /* dot segments: resolved (and then judged), or refused when encoded */
        {"https://api.example/v1", "https://api.example/v1/../admin", NO},
        {"https://api.example/v1", "https://api.example/v1/x/../y", YES},
        {"https://api.example/v1", "https://api.example/v1/./x", YES},
        {"https://api.example/v1", "https://api.example/v2/../v1/x", YES},
        {"https://api.example/v1", "https://api.example/v1/%2e%2e/admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/%2E%2E/admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/.%2e/admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/%2e/x", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/..%2fadmin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/x%2f..%2f..%2fadmin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/..;/admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/..%3b/admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/.;x/y", REFUSED},
        {"https://api.example/v1", "https://api.example/v1\\..\\admin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/%5c..%5cadmin", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/%00", REFUSED},
        {"https://api.example/v1", "https://api.example/v1/x%zz", REFUSED},
        /* percent-encoding that is not a step up: compared in normal form */
        {"https://api.example/v1", "https://api.example/%76%31/x", YES},
        {"https://api.example/v1", "https://api.example/v1/file%2ejson", YES},
        {"https://api.example/v1", "https://api.example/v1%2fx", NO},
        {"https://api.example/caf%C3%A9", "https://api.example/caf%c3%a9/menu", YES},
        {"https://api.example/a%2Fb", "https://api.example/a%2fb/c", YES},
        {"https://api.example/a%2Fb", "https://api.example/a/b/c", NO},
        {"https://api.example/v1", "https://api.example/v1/a;b=c", YES},
        /* query and fragment do not count */
        {"https://api.example/v1", "https://api.example/v1?next=/../../admin", YES},
        {"https://api.example/v1", "https://api.example/v10?/v1", NO},
        {"https://api.example/v1", "https://api.example/v1#/../admin", YES},
        /* IP literals */
        {"http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api/x", YES},
        {"http://127.0.0.1:8080/api", "http://2130706433:8080/api/x", YES},
        {"http://127.0.0.1:8080/api", "http://0x7f.1:8080/api/x", YES},
        {"http://127.0.0.1:8080/api", "http://127.0.0.10:8080/api/x", NO},
        {"http://127.0.0", "http://127.0.0.1/", NO},
        {"http://[::1]:8080", "http://[::1]:8080/x", YES},
        {"http://[::1]:8080", "http://[0:0::1]:8080/x", YES},
        {"http://[::1]:8080", "http://[::1]:80800/x", REFUSED},
        {"http://[::1]:8080", "http://[::2]:8080/x", NO},
        {"http://[::ffff:7f00:1]", "http://[::FFFF:127.0.0.1]/", YES},
        {"http://[fe80::1]", "http://[fe80::1%25eth0]/", REFUSED},
        /* international names: in their xn-- form only (a look-alike in
         * another script is another name) */
        {"https://xn--mnchen-3ya.example", "https://XN--MNCHEN-3YA.example/x", YES},
        {"https://xn--mnchen-3ya.example", "https://m\xc3\xbcnchen.example/", REFUSED},
        {"https://munchen.example", "https://m\xc3\xbcnchen.example/", REFUSED},
        {"https://apple.example", "https://\xd0\xb0pple.example/", REFUSED}, /* Cyrillic a */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int v = verdict(cases[i].rule, cases[i].url);
        if (v != cases[i].want) printf("#   %s vs %s: %d, want %d\n", cases[i].rule, cases[i].url, v, cases[i].want);
        CHECK(v == cases[i].want);
    }
}

TEST(fetched_url_is_the_checked_one) {
    pl_url t;
    char *err = NULL;
    CHECK(pl_http_target_parse("HTTPS://API.example:0443/v1/x/../y?q=1#frag", &t, &err) == PL_OK);
    CHECK_STR(t.scheme, "https");
    CHECK_STR(t.host, "api.example");
    CHECK(t.port == 443);
    CHECK_STR(t.path, "/v1/y");
    CHECK(t.url && strstr(t.url, "/v1/y?q=1") && !strstr(t.url, ".."));
    pl_url_clear(&t);
    CHECK(pl_http_target_parse("http://2130706433/", &t, &err) == PL_OK);
    CHECK_STR(t.host, "127.0.0.1");
    CHECK(t.port == 80);
    CHECK_STR(t.url, "http://127.0.0.1/");
    pl_url_clear(&t);
    CHECK(pl_http_target_parse("https://api.example@evil.com/", &t, &err) == PL_ERR);
    CHECK(err && strstr(err, "user name"));
    free(err);
}

TEST(invalid_allow_entries) {
    static const char *const bad[] = {
        "api.example",                     /* no scheme */
        "ftp://api.example/",              /* not http(s) */
        "https://user@api.example/",       /* a user name */
        "https://user:pw@api.example/",    /* and a password */
        "https://api.example/v1?key=1",    /* a query */
        "https://api.example/v1#x",        /* a fragment */
        "https://",                        /* no host */
        "https://:8080/v1",                /* no host either */
        "https://m\xc3\xbcnchen.example/",  /* not in its xn-- form */
        "https://api.example:99999/",      /* no port */
        "https://api example/",            /* not a host */
        "https://[fe80::1%25eth0]/",       /* a zone */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pl_url rule;
        char *err = NULL;
        int rc = pl_http_rule_parse(bad[i], &rule, &err);
        if (rc != PL_ERR || !err) printf("#   %s was accepted\n", bad[i]);
        CHECK(rc == PL_ERR && err && *err);
        free(err);
    }
}

/* The refusal for an address written as text (IPv4 or IPv6). */
static const char *refusal(const char *text) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) in6->sin6_family = AF_INET6;
    else return "(not an address)";
    return pl_http_address_refusal((struct sockaddr *)&ss);
}

TEST(addresses_are_classified) {
    static const struct {
        const char *address, *want; /* want NULL: public */
    } cases[] = {
        {"127.0.0.1", "loopback"},
        {"127.255.255.254", "loopback"},
        {"10.0.0.1", "private"},
        {"10.255.255.255", "private"},
        {"172.16.0.1", "private"},
        {"172.31.255.255", "private"},
        {"172.15.255.255", NULL},
        {"172.32.0.0", NULL},
        {"192.168.1.1", "private"},
        {"192.169.0.1", NULL},
        {"100.64.0.1", "private"},
        {"100.127.255.255", "private"},
        {"100.128.0.0", NULL},
        {"198.18.0.1", "private"},
        {"198.19.255.255", "private"},
        {"198.20.0.0", NULL},
        {"169.254.169.254", "link-local"},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "unspecified"},
        {"224.0.0.1", "multicast"},
        {"239.255.255.250", "multicast"},
        {"255.255.255.255", "broadcast"},
        {"240.0.0.1", "reserved"},
        {"192.0.0.8", "reserved"},
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"93.184.216.34", NULL},
        {"126.255.255.255", NULL},
        {"128.0.0.1", NULL},
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"0:0:0:0:0:0:0:1", "loopback"},
        {"::2", "unspecified"}, /* ::0.0.0.2 */
        {"fe80::1", "link-local"},
        {"febf::1", "link-local"},
        {"fec0::1", "private"},
        {"fc00::1", "unique-local"},
        {"fd12:3456:789a::1", "unique-local"},
        {"ff02::1", "multicast"},
        {"ff0e::1", "multicast"},
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:7f00:1", "loopback"},
        {"::ffff:10.1.2.3", "private"},
        {"::ffff:169.254.169.254", "link-local"},
        {"::ffff:8.8.8.8", NULL},
        {"::127.0.0.1", "loopback"},
        {"::8.8.8.8", "reserved"},
        {"64:ff9b::127.0.0.1", "loopback"},
        {"64:ff9b::8.8.8.8", NULL},
        {"64:ff9b:1::1", "private"},
        {"2002:7f00:1::", "loopback"},
        {"2002:c0a8:101::1", "private"},
        {"2002:808:808::1", NULL},
        {"2001:db8::1", "reserved"},
        {"100::1", "reserved"},
        {"2001:4860:4860::8888", NULL},
        {"2606:4700:4700::1111", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = refusal(cases[i].address);
        int ok = cases[i].want ? got && strcmp(got, cases[i].want) == 0 : got == NULL;
        if (!ok) printf("#   %s: %s, want %s\n", cases[i].address, got ? got : "public", cases[i].want ? cases[i].want : "public");
        CHECK(ok);
    }
    struct sockaddr unix_like = {.sa_family = AF_UNIX};
    CHECK_STR(pl_http_address_refusal(&unix_like), "not an IP address");
}

int main(void) {
    RUN(allow_list_matches_parsed_urls);
    RUN(fetched_url_is_the_checked_one);
    RUN(invalid_allow_entries);
    RUN(addresses_are_classified);
    return check_done();
}
