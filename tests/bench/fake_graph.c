/* fake_graph: the Graph API that parley sends to in the webhook run of
 * `make bench` (tests/bench/webhooks.sh): WhatsApp's Cloud API, or with
 * PLATFORM "instagram" the Send API of Instagram messaging. One libevent
 * evhttp loop, so that the platform is never the bottleneck being measured.
 *
 *   POST /{phone-number-id}/messages  with "Authorization: Bearer <token>"
 *       and a JSON body with "to" and "type": answered 200
 *       {"messaging_product":"whatsapp","contacts":[...],"messages":[{"id":"wamid.FAKE<n>"}]}
 *       and recorded: the recipient ("to"), the message type and the arrival
 *       time (CLOCK_REALTIME, µs). A wrong path is answered 404, a wrong
 *       token 401 and a body without "to" 400, as the real API would; those
 *       are counted as "bad" and not recorded.
 *   instagram: POST /me/messages?access_token=<token>&appsecret_proof=...
 *       with {"recipient": {"id"}, "messaging_type", "message"}: answered
 *       200 {"recipient_id", "message_id"} and recorded with the type
 *       "text", "quick_replies" (a text with quick replies) or "attachment".
 *   GET /stats  {"received": <recorded sends>, "bad": <refused requests>},
 *       so the bench can wait until parley has sent what it should.
 *
 * usage: fake_graph PORT RECORD_FILE PHONE_NUMBER_ID ACCESS_TOKEN [PLATFORM]
 *   listens on 127.0.0.1:PORT (0 picks a free port) and prints
 *   "listening on 127.0.0.1:N" once bound; on SIGTERM or SIGINT it writes
 *   RECORD_FILE, one line per recorded send, in arrival order:
 *     <to> <type> <arrival µs>
 *   and exits 0. */
#define _POSIX_C_SOURCE 200809L
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct {
    char to[32];
    char type[16];
    int64_t at_us;
} record;

static record *records;
static size_t nrecords, caprecords;
static size_t nbad;
static char expected_path[256];
static char expected_auth[512];
static char expected_token_param[512]; /* instagram: "access_token=<token>" */
static int instagram;

static int64_t realtime_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void reply(struct evhttp_request *req, int status, const char *body) {
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

static void refuse(struct evhttp_request *req, int status, const char *why) {
    nbad++;
    char body[256];
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\",\"type\":\"OAuthException\",\"code\":100}}", why);
    reply(req, status, body);
}

/* Whether the request carries the token: WhatsApp's bearer header, or
 * Instagram's access_token as the first query parameter. */
static int authorized(struct evhttp_request *req) {
    if (instagram) {
        const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        size_t n = strlen(expected_token_param);
        return query && strncmp(query, expected_token_param, n) == 0 && (query[n] == '&' || !query[n]);
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    return auth && strcmp(auth, expected_auth) == 0;
}

/* Instagram's recipient.id and what the message is. */
static const char *instagram_type(const json_t *msg) {
    const json_t *message = json_object_get(msg, "message");
    if (json_object_get(message, "attachment")) return "attachment";
    return json_object_get(message, "quick_replies") ? "quick_replies" : "text";
}

static void on_messages(struct evhttp_request *req) {
    int64_t at = realtime_us();
    if (!authorized(req)) {
        refuse(req, 401, "wrong or missing access token");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    json_t *msg = json_loadb(len ? (const char *)evbuffer_pullup(in, -1) : "", len, 0, &jerr);
    const char *to = instagram ? json_string_value(json_object_get(json_object_get(msg, "recipient"), "id"))
                               : json_string_value(json_object_get(msg, "to"));
    const char *type = instagram ? instagram_type(msg) : json_string_value(json_object_get(msg, "type"));
    if (!to || !*to || strlen(to) >= sizeof records->to) {
        json_decref(msg);
        refuse(req, 400, "the body has no recipient (to)");
        return;
    }
    if (nrecords == caprecords) {
        caprecords = caprecords ? caprecords * 2 : 65536;
        records = realloc(records, caprecords * sizeof *records);
        if (!records) abort();
    }
    record *r = &records[nrecords++];
    snprintf(r->to, sizeof r->to, "%s", to);
    snprintf(r->type, sizeof r->type, "%s", type && *type ? type : "-");
    r->at_us = at;
    char body[256];
    if (instagram)
        snprintf(body, sizeof body, "{\"recipient_id\":\"%s\",\"message_id\":\"m_FAKE%zu\"}", r->to, nrecords);
    else
        snprintf(body, sizeof body,
                 "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"%s\",\"wa_id\":\"%s\"}],"
                 "\"messages\":[{\"id\":\"wamid.FAKE%zu\"}]}",
                 r->to, r->to, nrecords);
    json_decref(msg);
    reply(req, 200, body);
}

static void on_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (path && cmd == EVHTTP_REQ_GET && strcmp(path, "/stats") == 0) {
        char body[128];
        snprintf(body, sizeof body, "{\"received\":%zu,\"bad\":%zu}", nrecords, nbad);
        reply(req, 200, body);
    } else if (path && cmd == EVHTTP_REQ_POST && strcmp(path, expected_path) == 0) {
        on_messages(req);
    } else {
        refuse(req, 404, "unknown path or method");
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    event_base_loopexit((struct event_base *)arg, NULL);
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: %s PORT RECORD_FILE PHONE_NUMBER_ID ACCESS_TOKEN [whatsapp|instagram]\n", argv[0]);
        return 2;
    }
    instagram = argc == 6 && strcmp(argv[5], "instagram") == 0;
    char *end = NULL;
    long port = strtol(argv[1], &end, 10);
    if (!*argv[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "fake_graph: '%s' is not a port number\n", argv[1]);
        return 2;
    }
    const char *record_file = argv[2];
    snprintf(expected_path, sizeof expected_path, instagram ? "/me/messages" : "/%s/messages", argv[3]);
    snprintf(expected_token_param, sizeof expected_token_param, "access_token=%s", argv[4]);
    snprintf(expected_auth, sizeof expected_auth, "Bearer %s", argv[4]);

    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http) {
        fprintf(stderr, "fake_graph: cannot create the event loop\n");
        return 1;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(http, on_request, NULL);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "fake_graph: cannot listen on 127.0.0.1:%ld\n", port);
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

    int status = 0;
    FILE *f = fopen(record_file, "w");
    if (!f) {
        fprintf(stderr, "fake_graph: cannot write %s\n", record_file);
        status = 1;
    } else {
        for (size_t i = 0; i < nrecords; i++)
            fprintf(f, "%s %s %lld\n", records[i].to, records[i].type, (long long)records[i].at_us);
        if (fclose(f) != 0) status = 1;
    }
    printf("fake_graph: %zu sends recorded, %zu refused\n", nrecords, nbad);

    event_free(sigterm);
    event_free(sigint);
    evhttp_free(http);
    event_base_free(base);
    free(records);
    return status;
}
