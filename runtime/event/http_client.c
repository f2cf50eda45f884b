/* http_client: libcurl multi on libevent; see http_client.h.
 * Owns the multi handle, one libevent event per socket libcurl watches, the
 * timer libcurl asks for, and the transfers in flight. Which addresses an
 * untrusted request may connect to is http_policy.c's to say. */
#define _GNU_SOURCE
#include "http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/common.h"
#include "base/log.h"
#include "http_policy.h"

struct pl_http_client {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    size_t in_flight;
    struct transfer *transfers; /* in flight, for freeing */
};

typedef struct transfer {
    struct transfer *next, *prev;
    pl_http_client *client;
    CURL *easy;
    struct curl_slist *headers;
    char *body_copy;
    size_t body_len, body_sent; /* SMTP: the message, and how much of it libcurl has read */
    struct curl_slist *rcpt;    /* SMTP: the envelope's recipients */
    int smtp;
    char *response;
    size_t response_len;
    size_t max_response; /* 0: no cap */
    int too_large;
    char refused[96]; /* the first address a public_only request was refused, and why */
    char error[CURL_ERROR_SIZE];
    pl_http_done_fn done;
    void *ud;
} transfer;

static void unlink_transfer(pl_http_client *c, transfer *t) {
    if (t->prev) t->prev->next = t->next;
    else c->transfers = t->next;
    if (t->next) t->next->prev = t->prev;
}

static void free_transfer(transfer *t) {
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    curl_slist_free_all(t->rcpt);
    free(t->body_copy);
    free(t->response);
    free(t);
}

/* One per socket libcurl asks us to watch. */
typedef struct {
    struct event *ev;
} watched_socket;

static int curl_ready;

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    transfer *t = arg;
    size_t len = size * n;
    if (t->max_response && t->response_len + len > t->max_response) {
        t->too_large = 1;
        return 0; /* libcurl stops the transfer */
    }
    char *grown = realloc(t->response, t->response_len + len + 1);
    if (!grown) return 0;
    t->response = grown;
    memcpy(t->response + t->response_len, data, len);
    t->response_len += len;
    t->response[t->response_len] = '\0';
    return len;
}

/* A wait an answer asks for, in seconds: a day at most (the outbox counts
 * in ms). */
static long wait_of(long long secs) { return secs < 0 ? 0 : secs > 86400 ? 86400 : (long)secs; }

/* Seconds the answer asks to wait: its Retry-After; else, on a 429, X's
 * x-rate-limit-reset (the epoch second its rate-limit window reopens,
 * https://docs.x.com/fundamentals/rate-limits), which X sends instead. */
static long retry_after_of(CURL *easy, long status) {
    struct curl_header *h = NULL;
    char *end = NULL;
    if (curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK) {
        long long secs = strtoll(h->value, &end, 10);
        return end == h->value || secs < 0 ? -1 : wait_of(secs); /* an HTTP date is treated as absent */
    }
    if (status != 429 ||
        curl_easy_header(easy, "x-rate-limit-reset", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return -1;
    long long reset = strtoll(h->value, &end, 10);
    if (end == h->value || reset <= 0) return -1;
    return wait_of(reset - (long long)time(NULL));
}

/* How t ended, when libcurl says result, with what went wrong. */
static pl_http_outcome outcome_of(transfer *t, CURLcode result, const char **error) {
    *error = t->error[0] ? t->error : curl_easy_strerror(result);
    if (t->too_large || result == CURLE_FILESIZE_EXCEEDED) {
        *error = "the answer is larger than the cap";
        return PL_HTTP_TOO_LARGE;
    }
    if (result == CURLE_OK) {
        *error = NULL;
        return PL_HTTP_ANSWERED;
    }
    if (t->refused[0] && result == CURLE_COULDNT_CONNECT) {
        *error = t->refused;
        return PL_HTTP_REFUSED;
    }
    return result == CURLE_OPERATION_TIMEDOUT ? PL_HTTP_TIMEOUT : PL_HTTP_UNREACHABLE;
}

/* An SMTP transfer that failed on a reply of the server (a 4xx or 5xx
 * code, which libcurl keeps as the response code): an answer, whose code
 * says whether to try again, with libcurl's account of it as the body. */
static int smtp_refusal(transfer *t, CURLcode result, pl_http_response *res) {
    long code = 0;
    if (!t->smtp || result == CURLE_OK || t->refused[0]) return 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code < 400 || code > 599) return 0;
    res->outcome = PL_HTTP_ANSWERED;
    res->status = code;
    res->error = NULL;
    res->body = t->error[0] ? t->error : curl_easy_strerror(result);
    res->body_len = strlen(res->body);
    return 1;
}

static void finish_transfer(pl_http_client *c, CURLMsg *msg) {
    transfer *t = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    pl_http_response res = {.retry_after = -1};
    res.outcome = outcome_of(t, msg->data.result, &res.error);
    res.body = t->response ? t->response : "";
    res.body_len = t->response_len;
    if (res.outcome == PL_HTTP_ANSWERED) {
        curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
        if (!t->smtp) res.retry_after = retry_after_of(t->easy, res.status);
    } else {
        smtp_refusal(t, msg->data.result, &res);
    }
    curl_multi_remove_handle(c->multi, t->easy);
    unlink_transfer(c, t);
    c->in_flight--;
    t->done(&res, t->ud);
    free_transfer(t);
}

static void check_done(pl_http_client *c) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)))
        if (msg->msg == CURLMSG_DONE) finish_transfer(c, msg);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg) {
    pl_http_client *c = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, action, &running);
    check_done(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_http_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch (or stop watching) a socket. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp) {
    (void)easy;
    pl_http_client *c = arg;
    watched_socket *w = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    short events = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w) abort();
        curl_multi_assign(c->multi, fd, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(c->base, fd, events, on_socket_event, c);
    event_add(w->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: libcurl wants to be called after timeout_ms. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg) {
    (void)multi;
    pl_http_client *c = arg;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

pl_http_client *pl_http_client_new(struct event_base *base, char **err) {
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            pl_fail(err, "libcurl could not be initialised");
            return NULL;
        }
        curl_ready = 1;
    }
    pl_http_client *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

void pl_http_client_free(pl_http_client *c) {
    if (!c) return;
    /* Transfers still in flight are abandoned without their callbacks. */
    while (c->transfers) {
        transfer *t = c->transfers;
        curl_multi_remove_handle(c->multi, t->easy);
        unlink_transfer(c, t);
        free_transfer(t);
    }
    curl_multi_cleanup(c->multi);
    event_free(c->timer);
    free(c);
}

size_t pl_http_in_flight(const pl_http_client *c) { return c->in_flight; }

/* Keeps the first refusal of t for its error: "127.0.0.1 is a loopback address". */
static void note_refusal(transfer *t, const struct sockaddr_storage *ss, const char *why) {
    if (t->refused[0]) return;
    char text[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, text, sizeof text);
    else if (ss->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, text, sizeof text);
    if (strncmp(why, "not ", 4) == 0) snprintf(t->refused, sizeof t->refused, "%s: %s", text, why);
    else snprintf(t->refused, sizeof t->refused, "%s is a %s address", text, why);
}

/* CURLOPT_OPENSOCKETFUNCTION of a public_only transfer: libcurl has
 * resolved the name and asks for a socket to connect to this address;
 * refusing (CURL_SOCKET_BAD) makes it try the next one, and the transfer
 * fails with CURLE_COULDNT_CONNECT when none is left. Checking here, not
 * the name before, is what stops a public name that resolves to 127.0.0.1. */
static curl_socket_t open_public_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a) {
    struct sockaddr_storage ss = {0};
    memcpy(&ss, &a->addr, a->addrlen < sizeof ss ? a->addrlen : sizeof ss);
    const char *why = purpose == CURLSOCKTYPE_IPCXN ? pl_http_address_refusal((struct sockaddr *)&ss)
                                                    : "not an outgoing connection";
    if (!why) return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    note_refusal(arg, &ss, why);
    return CURL_SOCKET_BAD;
}

/* The limits of pl_http_request on the transfer. */
static void set_limits(transfer *t, const pl_http_request *r) {
    CURL *e = t->easy;
    const char *fallback = r->mail_from ? "smtp,smtps" : "http,https";
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, r->protocols ? r->protocols : fallback);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* libcurl's default, said out loud */
    if (r->max_response) {
        t->max_response = r->max_response;
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response);
    }
    if (!r->public_only) return;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    /* a proxy from the environment would connect for us, unchecked */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    /* a pooled connection may have been opened for the operator's own
     * request to a local address; this one's is used by no one else */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
}

static struct curl_slist *header_list(const json_t *headers) {
    struct curl_slist *list = NULL;
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)headers, name, value) {
        if (!json_is_string(value)) continue;
        char *line = pl_strdupf("%s: %s", name, json_string_value(value));
        list = curl_slist_append(list, line);
        free(line);
    }
    /* no "Expect: 100-continue" round trip before bodies */
    return curl_slist_append(list, "Expect:");
}

/* CURLOPT_READFUNCTION of an SMTP transfer: the message, in pieces. */
static size_t read_message(char *buffer, size_t size, size_t n, void *arg) {
    transfer *t = arg;
    size_t room = size * n, left = t->body_len - t->body_sent;
    size_t len = left < room ? left : room;
    memcpy(buffer, t->body_copy + t->body_sent, len);
    t->body_sent += len;
    return len;
}

/* An SMTP transfer: the envelope, and the message uploaded after DATA
 * (libcurl escapes a line that starts with a dot). */
static int set_mail(transfer *t, const pl_http_request *r, char **err) {
    CURL *e = t->easy;
    size_t i;
    json_t *to;
    json_array_foreach(r->mail_rcpt, i, to) {
        if (!json_is_string(to)) continue;
        char *line = pl_strdupf("<%s>", json_string_value(to));
        t->rcpt = curl_slist_append(t->rcpt, line);
        free(line);
    }
    if (!t->rcpt) return pl_fail(err, "a mail with no recipient");
    char *from = pl_strdupf("<%s>", r->mail_from);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from); /* libcurl copies it */
    free(from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpt);
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)(r->mail_require_tls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    t->smtp = 1;
    t->body_copy = pl_strndup(r->body ? r->body : "", r->body ? r->body_len : 0);
    t->body_len = r->body ? r->body_len : 0;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(e, CURLOPT_READDATA, t);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->body_len);
    return PL_OK;
}

int pl_http_fetch(pl_http_client *c, const pl_http_request *r, pl_http_done_fn done, void *ud,
                  char **err) {
    transfer *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->client = c;
    t->done = done;
    t->ud = ud;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return pl_fail(err, "libcurl: cannot create a transfer");
    }
    t->headers = header_list(r->headers);
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    /* for SMTP a custom request would replace the mail by another command */
    if (!r->mail_from) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->timeout_ms > 0 ? r->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    set_limits(t, r);
    if (r->user_pwd) curl_easy_setopt(e, CURLOPT_USERPWD, r->user_pwd);
    if (r->mail_from) {
        if (set_mail(t, r, err) != PL_OK) {
            free_transfer(t);
            return PL_ERR;
        }
    } else if (r->body) {
        t->body_copy = pl_strndup(r->body, r->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body_copy);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body_len);
    } else if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        free_transfer(t);
        return pl_fail(err, "libcurl: cannot start the transfer");
    }
    c->in_flight++;
    t->next = c->transfers;
    if (c->transfers) c->transfers->prev = t;
    c->transfers = t;
    return PL_OK;
}
