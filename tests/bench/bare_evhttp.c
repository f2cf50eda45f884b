/* bare_evhttp: the baseline of `make bench`. A bare libevent evhttp server
 * with one event loop that answers every request (any method, any path)
 * with the same small JSON body, and does nothing else. Measured with the
 * same wrk settings as parley, its requests/s is the ceiling parley's
 * messages/s is compared with: the difference is parley's own work
 * (routing, JSON, sessions, Lua, the SQLite commit).
 *
 * usage: bare_evhttp PORT     listens on 127.0.0.1:PORT (0 picks a free
 *                             port); prints "listening on 127.0.0.1:N" once
 *                             bound; stops on SIGTERM or SIGINT. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char reply_body[] = "{\"user\":\"bare\",\"replies\":[{\"text\":\"ok\"}]}\n";

static void on_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    /* The request body (if any) has already been read by evhttp; like
     * parley, answer with a fresh JSON body and a Content-Type. */
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, reply_body, sizeof reply_body - 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    event_base_loopexit((struct event_base *)arg, NULL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long port = strtol(argv[1], &end, 10);
    if (!*argv[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "bare_evhttp: '%s' is not a port number\n", argv[1]);
        return 2;
    }

    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http) {
        fprintf(stderr, "bare_evhttp: cannot create the event loop\n");
        return 1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *sock =
        evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "bare_evhttp: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    struct sockaddr_in bound;
    ev_socklen_t len = sizeof bound;
    memset(&bound, 0, sizeof bound);
    if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&bound, &len) == 0)
        port = ntohs(bound.sin_port);
    printf("listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);

    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);

    event_base_dispatch(base);

    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
