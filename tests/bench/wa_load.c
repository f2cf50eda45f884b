/* wa_load: the load of the webhook run of `make bench` (tests/bench/webhooks.sh).
 * Sends WhatsApp Cloud API webhook deliveries to parley at a steady rate
 * (or, with --platform instagram, Instagram messaging webhooks: object
 * "instagram", entry[].messaging[] {sender.id = the shopper's id below,
 * recipient.id = PHONE_ID as the account, message {mid, text "hi"}}, sent
 * to the instagram channel)
 * (open loop: a delivery goes out at its scheduled time whether or not the
 * earlier ones have been acknowledged, as a platform would send them), and
 * records per delivery when it was due, sent and acknowledged, and the HTTP
 * status.
 *
 * Delivery SEQ of phase K is one text message "hi" from its own shopper:
 *   wa_id   4KKSSSSSSS (K two digits, SEQ seven digits)
 *   id      wamid.BENCHKKSSSSSSS
 *   body    {"object":"whatsapp_business_account","entry":[{"id":...,"changes":[{"value":
 *            {"messaging_product":"whatsapp","metadata":{"display_phone_number":...,
 *            "phone_number_id":<PHONE_ID>},"contacts":[{"profile":{"name":...},"wa_id":...}],
 *            "messages":[{"from":...,"id":...,"timestamp":<TS>,"type":"text","text":{"body":"hi"}}]},
 *            "field":"messages"}]}]}
 *   header  X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with SECRET>
 * The body depends only on (PHONE_ID, K, SEQ, TS), so running the same
 * phase again with a smaller --count re-sends byte-identical deliveries
 * (the same message ids): the de-duplication check.
 *
 * Bodies and signatures are made before the clock starts. HTTP/1.1
 * keep-alive connections, one request at a time each; a new connection is
 * opened when every open one is busy, up to --connections; past that a due
 * delivery waits (its times still count from when it was due).
 *
 * usage: wa_load --port PORT --secret SECRET --phone-id ID --rate PER_S --count N
 *                --phase K --timestamp TS --out FILE [--connections C] [--host ADDR]
 *                [--path PATH] [--platform whatsapp|instagram]
 * FILE gets one line per delivery:
 *   <wa_id> <message id> <due µs> <sent µs> <acknowledged µs> <status>
 * (CLOCK_REALTIME µs, comparable with fake_graph's arrival times; status 0:
 * no HTTP answer). The last line of stdout is a summary starting with
 * "wa_load". Exit 0 once every delivery is answered, 1 if some never were
 * within 60 s of the last one due. */
#define _POSIX_C_SOURCE 200809L
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *body;
    size_t body_len;
    char signature[7 + 64 + 1];
    char wa_id[16];
    char msg_id[32];
    int64_t due_us, sent_us, ack_us; /* monotonic, µs since the start */
    int status;
    int answered;
} delivery;

typedef struct conn {
    struct evhttp_connection *evcon;
    size_t current; /* the delivery in flight */
    int busy;
    struct conn *next_idle;
} conn;

static struct {
    const char *host, *path, *secret, *phone_id, *out, *timestamp;
    int port, phase, max_conns;
    double rate;
    size_t count;
    int instagram;
} opt = {.host = "127.0.0.1", .path = NULL, .max_conns = 256};

static struct event_base *base;
static delivery *ds;
static size_t due, dispatched, answered;
static conn *conns;
static int nconns;
static conn *idle;
static int64_t mono0_us, real0_us, last_progress_us;
static struct event *tick;
static int timed_out;

static int64_t clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static int64_t now_us(void) { return clock_us(CLOCK_MONOTONIC) - mono0_us; }

static void make_delivery(delivery *d, size_t seq) {
    snprintf(d->wa_id, sizeof d->wa_id, "4%02d%07zu", opt.phase, seq);
    snprintf(d->msg_id, sizeof d->msg_id, "wamid.BENCH%02d%07zu", opt.phase, seq);
    char body[2048];
    int n = opt.instagram
                ? snprintf(body, sizeof body,
                           "{\"object\":\"instagram\",\"entry\":[{\"id\":\"%s\",\"time\":%s000,\"messaging\":["
                           "{\"sender\":{\"id\":\"%s\"},\"recipient\":{\"id\":\"%s\"},\"timestamp\":%s000,"
                           "\"message\":{\"mid\":\"%s\",\"text\":\"hi\"}}]}]}",
                           opt.phone_id, opt.timestamp, d->wa_id, opt.phone_id, opt.timestamp, d->msg_id)
                : snprintf(body, sizeof body,
                     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","
                     "\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                     "{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"%s\"},"
                     "\"contacts\":[{\"profile\":{\"name\":\"Shopper %zu\"},\"wa_id\":\"%s\"}],"
                     "\"messages\":[{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%s\",\"type\":\"text\","
                     "\"text\":{\"body\":\"hi\"}}]},\"field\":\"messages\"}]}]}",
                     opt.phone_id, seq, d->wa_id, d->wa_id, d->msg_id, opt.timestamp);
    if (n <= 0 || (size_t)n >= sizeof body) {
        fprintf(stderr, "wa_load: a body does not fit\n");
        exit(2);
    }
    d->body = malloc((size_t)n);
    if (!d->body) abort();
    memcpy(d->body, body, (size_t)n);
    d->body_len = (size_t)n;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), opt.secret, (int)strlen(opt.secret), (const unsigned char *)body, (size_t)n, mac,
              &mac_len) || mac_len != 32) {
        fprintf(stderr, "wa_load: HMAC-SHA256 failed\n");
        exit(2);
    }
    char *p = d->signature + sprintf(d->signature, "sha256=");
    for (unsigned int i = 0; i < mac_len; i++) p += sprintf(p, "%02x", mac[i]);
    d->due_us = (int64_t)((double)seq * 1e6 / opt.rate);
}

static void send_on(conn *c, size_t i);

static void finish_if_done(void) {
    if (answered == opt.count) event_base_loopexit(base, NULL);
}

static void on_answer(struct evhttp_request *req, void *arg) {
    conn *c = arg;
    delivery *d = &ds[c->current];
    d->ack_us = now_us();
    d->status = req ? evhttp_request_get_response_code(req) : 0;
    d->answered = 1;
    answered++;
    last_progress_us = d->ack_us;
    c->busy = 0;
    if (dispatched < due) {
        send_on(c, dispatched++);
    } else {
        c->next_idle = idle;
        idle = c;
    }
    finish_if_done();
}

static void send_on(conn *c, size_t i) {
    delivery *d = &ds[i];
    struct evhttp_request *req = evhttp_request_new(on_answer, c);
    if (!req) abort();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char host[300];
    snprintf(host, sizeof host, "%s:%d", opt.host, opt.port);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "User-Agent", "facebookexternalua");
    evhttp_add_header(h, "X-Hub-Signature-256", d->signature);
    evbuffer_add_reference(evhttp_request_get_output_buffer(req), d->body, d->body_len, NULL, NULL);
    c->busy = 1;
    c->current = i;
    d->sent_us = now_us();
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, opt.path) != 0) {
        /* evhttp frees req on failure */
        d->ack_us = d->sent_us;
        d->status = 0;
        d->answered = 1;
        answered++;
        c->busy = 0;
        c->next_idle = idle;
        idle = c;
        finish_if_done();
    }
}

static conn *take_conn(void) {
    if (idle) {
        conn *c = idle;
        idle = c->next_idle;
        return c;
    }
    if (nconns >= opt.max_conns) return NULL;
    conn *c = &conns[nconns++];
    c->evcon = evhttp_connection_base_new(base, NULL, opt.host, (unsigned short)opt.port);
    if (!c->evcon) abort();
    evhttp_connection_set_timeout(c->evcon, 30);
    return c;
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
    int64_t now = now_us();
    while (due < opt.count && ds[due].due_us <= now) due++;
    while (dispatched < due) {
        conn *c = take_conn();
        if (!c) break;
        send_on(c, dispatched++);
    }
    /* everything is due: give up 60 s after the last answer (or the last
     * delivery's time) */
    if (due == opt.count && now - last_progress_us > 60 * 1000000LL &&
        now - ds[opt.count - 1].due_us > 60 * 1000000LL) {
        timed_out = 1;
        event_base_loopexit(base, NULL);
    }
}

static const char *arg_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "wa_load: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const int64_t *sorted, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)sorted[k - 1] / 1000.0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--port") == 0) opt.port = atoi(arg_value(argc, argv, &i));
        else if (strcmp(a, "--host") == 0) opt.host = arg_value(argc, argv, &i);
        else if (strcmp(a, "--path") == 0) opt.path = arg_value(argc, argv, &i);
        else if (strcmp(a, "--secret") == 0) opt.secret = arg_value(argc, argv, &i);
        else if (strcmp(a, "--phone-id") == 0) opt.phone_id = arg_value(argc, argv, &i);
        else if (strcmp(a, "--rate") == 0) opt.rate = atof(arg_value(argc, argv, &i));
        else if (strcmp(a, "--count") == 0) opt.count = (size_t)strtoul(arg_value(argc, argv, &i), NULL, 10);
        else if (strcmp(a, "--phase") == 0) opt.phase = atoi(arg_value(argc, argv, &i));
        else if (strcmp(a, "--timestamp") == 0) opt.timestamp = arg_value(argc, argv, &i);
        else if (strcmp(a, "--out") == 0) opt.out = arg_value(argc, argv, &i);
        else if (strcmp(a, "--connections") == 0) opt.max_conns = atoi(arg_value(argc, argv, &i));
        else if (strcmp(a, "--platform") == 0) opt.instagram = strcmp(arg_value(argc, argv, &i), "instagram") == 0;
        else {
            fprintf(stderr, "wa_load: unknown argument '%s' (see the comment at the top of wa_load.c)\n", a);
            return 2;
        }
    }
    if (opt.port <= 0 || !opt.secret || !opt.phone_id || opt.rate <= 0 || opt.count == 0 ||
        opt.count > 9999999 || opt.phase < 0 || opt.phase > 99 || !opt.timestamp || !opt.out ||
        opt.max_conns < 1) {
        fprintf(stderr, "usage: wa_load --port PORT --secret SECRET --phone-id ID --rate PER_S --count N "
                        "--phase K --timestamp TS --out FILE [--connections C]\n");
        return 2;
    }

    if (!opt.path)
        opt.path = opt.instagram ? "/v1/bots/barista/channels/instagram" : "/v1/bots/barista/channels/whatsapp";
    ds = calloc(opt.count, sizeof *ds);
    conns = calloc((size_t)opt.max_conns, sizeof *conns);
    if (!ds || !conns) abort();
    for (size_t i = 0; i < opt.count; i++) make_delivery(&ds[i], i);

    base = event_base_new();
    if (!base) abort();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval every = {0, 500}; /* 0.5 ms: deliveries go out within it of their time */
    mono0_us = clock_us(CLOCK_MONOTONIC);
    real0_us = clock_us(CLOCK_REALTIME);
    last_progress_us = 0;
    event_add(tick, &every);
    on_tick(-1, 0, NULL);
    event_base_dispatch(base);
    int64_t end_us = now_us();

    FILE *f = fopen(opt.out, "w");
    if (!f) {
        fprintf(stderr, "wa_load: cannot write %s\n", opt.out);
        return 1;
    }
    size_t ok = 0, non200 = 0, failed = 0, unanswered = 0;
    int64_t max_lag = 0, first_sent = -1, last_ack = 0;
    int64_t *acks = malloc(opt.count * sizeof *acks);
    size_t nacks = 0;
    if (!acks) abort();
    for (size_t i = 0; i < opt.count; i++) {
        delivery *d = &ds[i];
        int sent = i < dispatched;
        if (!d->answered) unanswered++;
        else if (d->status == 200) ok++;
        else if (d->status == 0) failed++;
        else non200++;
        if (sent && d->sent_us - d->due_us > max_lag) max_lag = d->sent_us - d->due_us;
        if (sent && (first_sent < 0 || d->sent_us < first_sent)) first_sent = d->sent_us;
        if (d->answered && d->ack_us > last_ack) last_ack = d->ack_us;
        if (d->answered && d->status == 200) acks[nacks++] = d->ack_us - d->due_us;
        fprintf(f, "%s %s %lld %lld %lld %d\n", d->wa_id, d->msg_id, (long long)(real0_us + d->due_us),
                (long long)(sent ? real0_us + d->sent_us : 0), (long long)(d->answered ? real0_us + d->ack_us : 0),
                d->answered ? d->status : -1);
    }
    if (fclose(f) != 0) return 1;
    qsort(acks, nacks, sizeof *acks, cmp_i64);
    double span = (double)(last_ack - (first_sent < 0 ? 0 : first_sent)) / 1e6;
    printf("wa_load phase=%d offered_per_s=%.0f deliveries=%zu ok200=%zu non200=%zu failed=%zu unanswered=%zu "
           "acked_per_s=%.0f ack_p50_ms=%.3f ack_p99_ms=%.3f ack_max_ms=%.3f max_send_lag_ms=%.3f connections=%d "
           "seconds=%.2f%s\n",
           opt.phase, opt.rate, opt.count, ok, non200, failed, unanswered, span > 0 ? (double)ok / span : 0,
           pct_ms(acks, nacks, 50), pct_ms(acks, nacks, 99), nacks ? (double)acks[nacks - 1] / 1000.0 : 0,
           (double)max_lag / 1000.0, nconns, (double)end_us / 1e6, timed_out ? " timed_out=1" : "");
    free(acks);
    for (int i = 0; i < nconns; i++) evhttp_connection_free(conns[i].evcon);
    event_free(tick);
    event_base_free(base);
    for (size_t i = 0; i < opt.count; i++) free(ds[i].body);
    free(ds);
    free(conns);
    return unanswered || timed_out ? 1 : 0;
}
