/* sse_idle: the client of the idle-streams run (tests/bench/sse.sh).
 * Plain POSIX sockets and epoll, no other dependency; one thread.
 *
 * Build (the line sse.sh uses):
 *   cc -std=c11 -Wall -Wextra -Werror -O2 -g -o build/sse_idle tests/bench/sse_idle.c
 *
 * sse_idle streams PORT COUNT NOTIFY IDS_FILE
 *   Opens COUNT event streams, GET /v1/bots/barista/webchat/events?user=ID,
 *   each for its own shopper (ID: 32 random hex digits), at most INFLIGHT
 *   connections waiting for their head at a time. When every stream has its
 *   "200" head (or failed, or OPEN_LIMIT_S passed) it prints
 *     ready open=N failed=F seconds=S
 *   and writes the ids of the first NOTIFY open streams to IDS_FILE, one a
 *   line. It then holds every stream open, idle, counting the "event: line"
 *   events each receives. On SIGUSR1 it waits (at most WAIT_LINES_S) until
 *   each of those NOTIFY streams has received LINES_EACH events (the
 *   shopper's "in" line and the bot's "out" line), then prints
 *     done open=N dropped=D notified_got=G/NOTIFY lines_notified=L others_with_lines=O
 *   closes everything and exits (status 0; 1 when a stream dropped or a
 *   notified stream missed its lines). SIGTERM/SIGINT: the same report at once.
 *
 * sse_idle latency PORT COUNT CONC PREFIX
 *   COUNT POST /v1/bots/barista/messages {"user": "PREFIX-C-I", "text": "hi"}
 *   (each from a new shopper) over CONC keep-alive connections, one request
 *   at a time each; prints
 *     latency n=N errors=E p50_ms=.. p99_ms=.. max_ms=.. seconds=.. per_s=..
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define INFLIGHT 128
#define OPEN_LIMIT_S 60.0
#define WAIT_LINES_S 15.0
#define LINES_EACH 2
#define HEAD_MAX 4096

static const char PATTERN[] = "event: line\n";
#define PAT_LEN ((int)sizeof PATTERN - 1)
static int kmp_fail[PAT_LEN];

static volatile sig_atomic_t got_usr1, got_term;
static void on_signal(int sig) {
    if (sig == SIGUSR1) got_usr1 = 1;
    else got_term = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* --- streams ------------------------------------------------------------------- */

enum { S_IDLE, S_CONNECTING, S_HEAD, S_OPEN, S_FAILED, S_DROPPED };

typedef struct {
    int fd, state;
    char id[33];
    char req[256];
    int req_len, req_sent;
    char head[HEAD_MAX];
    int head_len;
    int match; /* KMP state in PATTERN */
    long lines;
} conn;

static void random_ids(conn *c, int n) {
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0) die("/dev/urandom");
    for (int i = 0; i < n; i++) {
        unsigned char raw[16];
        if (read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) die("/dev/urandom");
        for (int k = 0; k < 16; k++) snprintf(c[i].id + 2 * k, 3, "%02x", raw[k]);
    }
    close(fd);
}

static void count_lines(conn *c, const char *p, ssize_t n) {
    for (ssize_t i = 0; i < n; i++) {
        while (c->match > 0 && p[i] != PATTERN[c->match]) c->match = kmp_fail[c->match - 1];
        if (p[i] == PATTERN[c->match]) c->match++;
        if (c->match == PAT_LEN) {
            c->lines++;
            c->match = kmp_fail[PAT_LEN - 1];
        }
    }
}

/* Reads what there is; returns the new state. */
static int stream_read(conn *c) {
    char buf[16384];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0) return c->state == S_OPEN ? S_DROPPED : S_FAILED;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return c->state;
            if (errno == EINTR) continue;
            return c->state == S_OPEN ? S_DROPPED : S_FAILED;
        }
        const char *body = buf;
        ssize_t body_n = n;
        if (c->state == S_HEAD) {
            ssize_t take = n;
            if (c->head_len + take > HEAD_MAX - 1) take = HEAD_MAX - 1 - c->head_len;
            memcpy(c->head + c->head_len, buf, (size_t)take);
            c->head_len += (int)take;
            c->head[c->head_len] = 0;
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) {
                if (c->head_len >= HEAD_MAX - 1) return S_FAILED;
                continue;
            }
            if (strncmp(c->head, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "sse_idle: stream %s: %.*s\n", c->id, (int)strcspn(c->head, "\r"), c->head);
                return S_FAILED;
            }
            c->state = S_OPEN;
            ssize_t used = (end + 4 - c->head) - (c->head_len - take);
            body = buf + used;
            body_n = n - used;
        }
        count_lines(c, body, body_n);
    }
}

static int run_streams(int port, int count, int notify, const char *ids_file) {
    for (int i = 1, k = 0; i < PAT_LEN; i++) {
        while (k > 0 && PATTERN[i] != PATTERN[k]) k = kmp_fail[k - 1];
        if (PATTERN[i] == PATTERN[k]) k++;
        kmp_fail[i] = k;
    }
    conn *cs = calloc((size_t)count, sizeof *cs);
    if (!cs) die("calloc");
    random_ids(cs, count);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event *evs = calloc(1024, sizeof *evs);
    if (!evs) die("calloc");

    int next = 0, inflight = 0, open = 0, failed = 0, dropped = 0;
    double t0 = now_s(), ready_at = 0, usr1_at = 0;
    int ready = 0;
    for (;;) {
        /* start connections up to INFLIGHT waiting for their head */
        while (next < count && inflight < INFLIGHT) {
            conn *c = &cs[next++];
            c->state = S_CONNECTING;
            c->req_len = snprintf(c->req, sizeof c->req,
                                  "GET /v1/bots/barista/webchat/events?user=%s HTTP/1.1\r\n"
                                  "Host: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n",
                                  c->id, port);
            c->fd = connect_to(port);
            if (c->fd < 0) {
                fprintf(stderr, "sse_idle: connect: %s\n", strerror(errno));
                c->state = S_FAILED;
                failed++;
                continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
            inflight++;
        }
        if (!ready && (open + failed + dropped == count || now_s() - t0 > OPEN_LIMIT_S)) {
            ready = 1;
            ready_at = now_s();
            FILE *f = fopen(ids_file, "w");
            if (!f) die(ids_file);
            for (int i = 0, n = 0; i < count && n < notify; i++)
                if (cs[i].state == S_OPEN) {
                    fprintf(f, "%s\n", cs[i].id);
                    n++;
                }
            fclose(f);
            printf("ready open=%d failed=%d seconds=%.2f\n", open, failed + (count - open - failed - dropped),
                   ready_at - t0);
            fflush(stdout);
        }
        if (ready && got_usr1 && usr1_at == 0) usr1_at = now_s();
        if (ready && (got_term || usr1_at > 0)) {
            int got = 0, n = 0;
            long lines_notified = 0;
            for (int i = 0; i < count && n < notify; i++)
                if (cs[i].state == S_OPEN || cs[i].state == S_DROPPED) {
                    n++;
                    if (cs[i].lines >= LINES_EACH) got++;
                    lines_notified += cs[i].lines;
                }
            if (got_term || got == n || now_s() - usr1_at > WAIT_LINES_S) {
                int others = 0;
                for (int i = 0, k = 0; i < count; i++)
                    if (cs[i].state == S_OPEN || cs[i].state == S_DROPPED) {
                        if (k++ >= notify && cs[i].lines > 0) others++;
                    }
                printf("done open=%d dropped=%d notified_got=%d/%d lines_notified=%ld others_with_lines=%d "
                       "held_seconds=%.1f\n",
                       open, dropped, got, n, lines_notified, others, now_s() - ready_at);
                fflush(stdout);
                for (int i = 0; i < count; i++)
                    if (cs[i].fd > 0) close(cs[i].fd);
                return dropped == 0 && got == n && failed == 0 ? 0 : 1;
            }
        }
        int n = epoll_wait(ep, evs, 1024, 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            int before = c->state;
            if (c->state == S_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    fprintf(stderr, "sse_idle: connect: %s\n", strerror(err));
                    c->state = S_FAILED;
                } else if (evs[i].events & EPOLLOUT) {
                    ssize_t w = write(c->fd, c->req + c->req_sent, (size_t)(c->req_len - c->req_sent));
                    if (w > 0) c->req_sent += (int)w;
                    if (c->req_sent == c->req_len) {
                        c->state = S_HEAD;
                        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                }
            }
            if ((c->state == S_HEAD || c->state == S_OPEN) && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                c->state = stream_read(c);
            if (c->state == before) continue;
            if (before == S_CONNECTING || before == S_HEAD) {
                if (c->state == S_OPEN || c->state == S_FAILED || c->state == S_DROPPED) inflight--;
            }
            if (c->state == S_OPEN) open++;
            if (c->state == S_FAILED) failed++;
            if (c->state == S_DROPPED) {
                if (before == S_OPEN) open--;
                dropped++;
                fprintf(stderr, "sse_idle: stream %s closed by the server after %ld lines\n", c->id, c->lines);
            }
            if (c->state == S_FAILED || c->state == S_DROPPED) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
            }
        }
    }
}

/* --- latency ------------------------------------------------------------------- */

typedef struct {
    int fd, sent_i, busy;
    char req[512];
    int req_len, req_sent;
    char in[8192];
    int in_len;
    double t_start;
} lconn;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_latency(int port, int count, int conc, const char *prefix) {
    double *lat = calloc((size_t)count, sizeof *lat);
    lconn *ls = calloc((size_t)conc, sizeof *ls);
    if (!lat || !ls) die("calloc");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    int issued = 0, done = 0, errors = 0;
    double t0 = now_s();

    for (int k = 0; k < conc; k++) {
        ls[k].fd = connect_to(port);
        if (ls[k].fd < 0) die("connect");
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)k};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ls[k].fd, &ev) < 0) die("epoll_ctl");
    }
    struct epoll_event evs[64];
    while (done < count) {
        if (now_s() - t0 > 120) {
            fprintf(stderr, "sse_idle: latency run did not finish in 120 s\n");
            break;
        }
        int n = epoll_wait(ep, evs, 64, 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int k = (int)evs[i].data.u32;
            lconn *l = &ls[k];
            if (!l->busy && issued < count && (evs[i].events & EPOLLOUT)) {
                char body[160];
                int blen = snprintf(body, sizeof body, "{\"user\": \"%s-%d-%d\", \"text\": \"hi\"}", prefix, k, issued);
                l->req_len = snprintf(l->req, sizeof l->req,
                                      "POST /v1/bots/barista/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                                      port, blen, body);
                l->req_sent = 0;
                l->in_len = 0;
                l->busy = 1;
                l->sent_i = issued++;
                l->t_start = now_s();
            }
            if (l->busy && l->req_sent < l->req_len) {
                ssize_t w = write(l->fd, l->req + l->req_sent, (size_t)(l->req_len - l->req_sent));
                if (w > 0) l->req_sent += (int)w;
                if (l->req_sent == l->req_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
                    epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
                }
            }
            if (l->busy && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t r = read(l->fd, l->in + l->in_len, sizeof l->in - 1 - (size_t)l->in_len);
                if (r <= 0) {
                    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                    fprintf(stderr, "sse_idle: latency connection %d closed\n", k);
                    return 2;
                }
                l->in_len += (int)r;
                l->in[l->in_len] = 0;
                char *end = strstr(l->in, "\r\n\r\n");
                if (!end) continue;
                char *cl = strcasestr(l->in, "\r\nContent-Length:");
                if (!cl || cl > end) {
                    fprintf(stderr, "sse_idle: answer without Content-Length\n");
                    return 2;
                }
                long need = strtol(cl + 17, NULL, 10);
                if ((end + 4 - l->in) + need > l->in_len) continue;
                double t = now_s() - l->t_start;
                if (strncmp(l->in, "HTTP/1.1 200", 12) != 0) {
                    if (errors++ < 3) fprintf(stderr, "sse_idle: %.*s\n", (int)strcspn(l->in, "\r"), l->in);
                }
                lat[done++] = t;
                l->busy = 0;
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)k};
                epoll_ctl(ep, EPOLL_CTL_MOD, l->fd, &ev);
            }
        }
    }
    double secs = now_s() - t0;
    qsort(lat, (size_t)done, sizeof *lat, cmp_double);
    if (done == 0) {
        printf("latency n=0 errors=%d\n", errors);
        return 1;
    }
    printf("latency n=%d errors=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f seconds=%.2f per_s=%.0f\n", done, errors,
           1e3 * lat[(size_t)(0.50 * (done - 1))], 1e3 * lat[(size_t)(0.99 * (done - 1))], 1e3 * lat[done - 1], secs,
           done / secs);
    for (int k = 0; k < conc; k++) close(ls[k].fd);
    return errors ? 1 : 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "streams") == 0)
        return run_streams(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
    if (argc == 6 && strcmp(argv[1], "latency") == 0)
        return run_latency(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argv[5]);
    fprintf(stderr,
            "usage: sse_idle streams PORT COUNT NOTIFY IDS_FILE\n"
            "       sse_idle latency PORT COUNT CONC PREFIX\n");
    return 2;
}
