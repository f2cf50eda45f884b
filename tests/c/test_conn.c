/* test_conn: the connections of an evhttp server in conn.c's charge (conn.h),
 * in process: libevent's own refusals come back as JSON (the replacement of
 * evhttp_send_error must hold in this binary and in its sanitizer build
 * too), a request that is never finished and an idle connection are closed
 * at their deadlines, a kept-alive connection serves several requests, the
 * client's leaving reaches the callback a handler set, and a close that
 * conn.c was not told of still frees its place under the cap. Each exchange
 * runs the loop until the client socket sees the server's answer or close;
 * a watchdog bounds every wait. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "check.h"
#include "http/conn.h"

typedef struct {
    struct event_base *base;
    struct evhttp *http;
    pl_conns *conns;
    int port;
    int hold;  /* requests are held (not answered), their client's leaving watched */
    int rogue; /* handlers set evhttp's close callback themselves */
    int gone;  /* gone callbacks seen */
    int asked; /* requests seen */
} server;

typedef struct {
    server *srv;
    char got[65536];
    size_t len;
    int closed;   /* the server closed (EOF or reset) */
    int timedout; /* the watchdog fired */
    size_t until; /* stop once this many bytes arrived (0: at the close) */
} client;

static void on_gone(void *arg) {
    server *s = arg;
    s->gone++;
    event_base_loopbreak(s->base);
}

static void rogue_closecb(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    (void)arg;
}

static void on_request(struct evhttp_request *req, void *arg) {
    server *s = arg;
    pl_conn_request_started(req);
    s->asked++;
    if (s->rogue) evhttp_connection_set_closecb(evhttp_request_get_connection(req), rogue_closecb, NULL);
    if (s->hold) { /* a stream: its head goes out, the rest never */
        pl_conn_on_gone(req, on_gone, s);
        evhttp_send_reply_start(req, 200, "OK");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "{\"ok\":true}");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void start_capped(server *s, int cap, int header_s, int idle_s) {
    memset(s, 0, sizeof *s);
    pl_conn_limits limits = {.max_connections = cap, .header_timeout_s = header_s, .idle_timeout_s = idle_s};
    pl_conn_set_limits(&limits);
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    s->conns = pl_conns_new(s->base, s->http, 2048, 4096);
    struct evhttp_bound_socket *bound = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    pl_conns_watch(s->conns, bound);
    evhttp_set_gencb(s->http, on_request, s);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sin, &len);
    s->port = ntohs(sin.sin_port);
}

static void start(server *s, int header_s, int idle_s) { start_capped(s, 8, header_s, idle_s); }

static void stop(server *s) {
    pl_conns_unwatch(s->conns);
    evhttp_free(s->http);
    pl_conns_free(s->conns);
    event_base_free(s->base);
}

static int dial(server *s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    client *c = arg;
    ssize_t n = recv(fd, c->got + c->len, sizeof c->got - 1 - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    c->got[c->len] = '\0';
    if (n <= 0) c->closed = 1;
    if (n <= 0 || (c->until && c->len >= c->until)) event_base_loopbreak(c->srv->base);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    client *c = arg;
    c->timedout = 1;
    event_base_loopbreak(c->srv->base);
}

/* Runs the loop until fd (when >= 0) is closed by the server or `until`
 * bytes came, or the loop is broken otherwise (a gone callback); at most
 * `seconds`. */
static void wait_on(server *s, int fd, client *c, size_t until, int seconds) {
    c->srv = s;
    c->until = until;
    struct event *rd = fd >= 0 ? event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, c) : NULL;
    struct event *dog = evtimer_new(s->base, on_watchdog, c);
    struct timeval tv = {seconds, 0};
    if (rd) event_add(rd, NULL);
    event_add(dog, &tv);
    event_base_dispatch(s->base);
    if (rd) event_free(rd);
    event_free(dog);
}

/* Sends raw bytes on a new connection and reads until the server closes. */
static void exchange(server *s, const char *raw, size_t len, client *c) {
    memset(c, 0, sizeof *c);
    int fd = dial(s);
    CHECK(fd >= 0);
    if (fd < 0) return;
    CHECK(send(fd, raw, len, 0) == (ssize_t)len);
    wait_on(s, fd, c, 0, 5);
    close(fd);
}

/* The answer is status, in JSON {"error": ...}, and closes the connection. */
static void check_refusal(const client *c, const char *status_line) {
    CHECK(!c->timedout);
    CHECK(c->closed);
    CHECK(strncmp(c->got, status_line, strlen(status_line)) == 0);
    CHECK(strstr(c->got, "Content-Type: application/json") != NULL);
    CHECK(strstr(c->got, "Connection: close") != NULL);
    CHECK(strstr(c->got, "\r\n\r\n{\"error\":\"") != NULL);
    if (strncmp(c->got, status_line, strlen(status_line)) != 0) printf("#   got: %.200s\n", c->got);
}

TEST(refusals_are_json) {
    server s;
    client c;
    start(&s, 10, 30);
    const char garbage[] = "GARBAGE\r\n\r\n";
    exchange(&s, garbage, sizeof garbage - 1, &c);
    check_refusal(&c, "HTTP/1.1 400 ");
    const char method[] = "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n";
    exchange(&s, method, sizeof method - 1, &c);
    check_refusal(&c, "HTTP/1.1 501 ");
    const char body[] = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n";
    exchange(&s, body, sizeof body - 1, &c);
    check_refusal(&c, "HTTP/1.1 413 ");
    CHECK(strstr(c.got, "larger than 2 KiB") != NULL); /* the limit parley documents, not evhttp's hard cap */
    size_t big = PL_CONN_MAX_HEAD + 1000;
    char *head = malloc(big + 64);
    int n = snprintf(head, 64, "GET /x HTTP/1.1\r\nX-Big: ");
    memset(head + n, 'a', big);
    memcpy(head + n + big, "\r\n\r\n", 4);
    exchange(&s, head, (size_t)n + big + 4, &c);
    check_refusal(&c, "HTTP/1.1 431 ");
    free(head);
    CHECK(s.asked == 0);
    stop(&s);
}

TEST(kept_alive_then_closed_when_idle) {
    server s;
    client c;
    start(&s, 10, 1);
    memset(&c, 0, sizeof c);
    int fd = dial(&s);
    const char req[] = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        size_t before = c.len;
        CHECK(send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1));
        wait_on(&s, fd, &c, before + 1, 5);
        while (!c.timedout && !c.closed && !strstr(c.got + before, "{\"ok\":true}")) wait_on(&s, fd, &c, c.len + 1, 5);
        CHECK(strstr(c.got + before, "HTTP/1.1 200 ") == c.got + before);
        CHECK(!c.closed);
    }
    CHECK(s.asked == 3);
    wait_on(&s, fd, &c, 0, 5); /* nothing more is sent: the idle timeout closes it */
    CHECK(c.closed);
    CHECK(!c.timedout);
    close(fd);
    stop(&s);
}

TEST(unfinished_request_closed_at_deadline) {
    server s;
    client c;
    start(&s, 1, 30);
    memset(&c, 0, sizeof c);
    int fd = dial(&s);
    const char part[] = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"half\":";
    CHECK(send(fd, part, sizeof part - 1, 0) == (ssize_t)(sizeof part - 1));
    wait_on(&s, fd, &c, 0, 5);
    CHECK(c.closed);
    CHECK(!c.timedout);
    CHECK(c.len == 0); /* closed without an answer */
    CHECK(s.asked == 0);
    close(fd);
    stop(&s);
}

TEST(client_leaving_reaches_the_handler) {
    server s;
    client c;
    start(&s, 1, 1);
    s.hold = 1;
    memset(&c, 0, sizeof c);
    int fd = dial(&s);
    const char req[] = "GET /held HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK(send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1));
    while (!s.asked && !c.timedout) wait_on(&s, fd, &c, 1, 5);
    CHECK(s.asked == 1);
    close(fd);
    /* a held request has no deadline (1 s here): only the client's leaving ends it */
    wait_on(&s, -1, &c, 0, 5);
    CHECK(s.gone == 1);
    CHECK(!c.timedout);
    stop(&s);
}

static int warnings;

static void count_warnings(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    if (level == PL_LOG_WARN && strstr(line, "close callback")) warnings++;
}

/* A handler that sets evhttp's close callback itself steals conn.c's: the
 * connection's timer still notices the close, so the cap frees its place. */
TEST(closed_behind_our_back_is_still_counted) {
    server s;
    client c;
    start_capped(&s, 1, 1, 1);
    s.rogue = 1;
    pl_log_set_sink(count_warnings, NULL, 1);
    const char req[] = "GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    exchange(&s, req, sizeof req - 1, &c); /* answered, closed: not counted by conn.c */
    CHECK(strncmp(c.got, "HTTP/1.1 200 ", 13) == 0);
    exchange(&s, req, sizeof req - 1, &c); /* waits for the place the first one held */
    CHECK(!c.timedout);
    CHECK(strncmp(c.got, "HTTP/1.1 200 ", 13) == 0);
    CHECK(s.asked == 2);
    CHECK(warnings == 1);
    pl_log_set_sink(NULL, NULL, 0);
    stop(&s);
}

int main(void) {
    pl_log_set_level(PL_LOG_WARN);
    RUN(refusals_are_json);
    RUN(kept_alive_then_closed_when_idle);
    RUN(unfinished_request_closed_at_deadline);
    RUN(client_leaving_reaches_the_handler);
    RUN(closed_behind_our_back_is_still_counted);
    return check_done();
}
