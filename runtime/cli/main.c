/* main: the parley command line — dispatch to new, serve, chat, test and
 * check, plus serve itself (new.c, chat.c, spec.c and check.c hold the
 * others). */
#define _GNU_SOURCE
#include <ctype.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "base/secrets.h"
#include "cli.h"
#include "core/http_lua.h"
#include "http/conn.h"
#include "http/server.h"
#include "sandbox/usage.h"

static const char main_usage[] =
    "usage: parley <command> [options]\n"
    "\n"
    "commands:\n"
    "  new DIR [--locales en,es]  write a small working bot to start from\n"
    "  serve [BOT_DIR ...]   serve bots over HTTP (the default bot when none is given)\n"
    "  chat [BOT_DIR]        talk to a bot in the terminal; saving a script reloads it\n"
    "  test [BOT_DIR]        run the bot's spec/*_spec.lua with busted inside the runtime\n"
    "  check [BOT_DIR]       load every script of a bot and report each error, then\n"
    "                        find what would fail only when a shopper reaches it\n"
    "  replay [BOT_DIR] --from DB|FILE  re-run recorded conversations; show what changed\n"
    "  understand [BOT_DIR] TEXT...  what c:understand makes of a message (--corpus:\n"
    "                        check labelled corpora, their accuracy and speed)\n"
    "  backup DEST           copy the SQLite database to DEST while it is served\n"
    "\n"
    "`parley <command> --help` describes each command.\n";

/* --- serve --------------------------------------------------------------------- */

static const char serve_usage[] =
    "usage: parley serve [BOT_DIR ...] [--listen ADDR:PORT] [--db FILE|URL] [options]\n"
    "\n"
    "Serves every bot given, each in its own sandboxed Lua state, addressed by the\n"
    "name in its bot.json. With no BOT_DIR, serves the default bot.\n"
    "\n"
    "  --listen ADDR:PORT  where to listen (default 127.0.0.1:8080; port 0 picks one)\n"
    "  --db FILE|URL       the SQLite database file, or the postgres:// URL of a\n"
    "                      PostgreSQL database (docs/deployment.md); default:\n"
    "                      PARLEY_DATABASE_URL, else parley.db\n"
    "  --sync full|normal  SQLite synchronous mode (default full: a commit survives\n"
    "                      power loss; normal survives a crash of parley only)\n"
    "  --no-watch          do not hot-reload bot folders\n"
    "  --threads N         threads at work (default: PARLEY_THREADS, else 1: the\n"
    "                      event loop runs the turns too); N > 1: the loop and\n"
    "                      N - 1 turn threads, a shopper's turns always on the\n"
    "                      same one (docs/speed.md); the number of cores, say\n"
    "  --public-url URL    how shoppers and providers reach this server, for payment\n"
    "                      links and provider callbacks (default: PARLEY_PUBLIC_URL,\n"
    "                      else http://ADDR:PORT)\n"
    "  --node NAME         this node's name in /v1/health (default: PARLEY_NODE, else\n"
    "                      the host name)\n"
    "  --drain-grace S     on SIGTERM or SIGINT, /v1/health/ready answers 503 at once\n"
    "                      and the node serves S seconds more (load balancers take\n"
    "                      it out) before it stops accepting and finishes (default 0)\n"
    "  --log-level LEVEL   debug, info, warn or error (default info)\n"
    "  --log-format FORMAT text (default: \"TIME LEVEL message\") or json: one JSON\n"
    "                      object a line with time, level, message and, when known,\n"
    "                      bot, channel, and file and line of a script's error\n"
    "                      (docs/configuration.md); either way tokens, secrets in\n"
    "                      query strings and card numbers are masked\n"
    "  --log-file FILE     append the log to FILE instead of stderr; SIGHUP opens\n"
    "                      FILE again, for log rotation (docs/deployment.md)\n"
    "  --metrics-listen ADDR:PORT  serve GET /metrics (Prometheus, docs/metrics.md)\n"
    "                      on this address too, without a token: keep it off the\n"
    "                      public network (on the API's address /metrics wants\n"
    "                      \"Authorization: Bearer $PARLEY_METRICS_TOKEN\")\n"
    "  --allow-private-http  let bots' scripts call loopback and private addresses,\n"
    "                      refused by default (for local fakes in tests; the\n"
    "                      environment's PARLEY_ALLOW_PRIVATE_HTTP=1 does the same)\n"
    "\n"
    "Caps on what any bot.json may ask for its scripts (per handler run):\n"
    "  --max-memory-mb N     memory of a bot's Lua state (default 256)\n"
    "  --max-instructions N  instructions, C work included (default 20000000)\n"
    "  --max-time-ms N       time a run may hold the loop (default 1000)\n"
    "  --bot-share PERCENT   of the loop's time one bot may keep using; past it, its\n"
    "                        own messages wait (default 50)\n"
    "  --bot-burst-ms N      script time a bot may use at once before its share\n"
    "                        applies (default 250)\n"
    "  --env-prefix BOT=PREFIX  the environment variables bot BOT may read (its\n"
    "                        bot.json's *_env names) start with PREFIX; default: its\n"
    "                        name in capitals and _ (barista: BARISTA_); never PARLEY_\n"
    "\n"
    "Connections (docs/http-limits.md):\n"
    "  --max-connections N   open at once; more wait in the kernel's queue (default\n"
    "                        16384, or 3/4 of the descriptor limit when that is lower)\n"
    "  --header-timeout S    seconds a client has to send a whole request (default 10)\n"
    "  --idle-timeout S      seconds a kept-alive connection may rest between requests\n"
    "                        (default 30)\n"
    "  --help              this text\n";

typedef struct {
    pl_app *app;
    pl_server *server;
    long drain_grace_s; /* --drain-grace: serving on, not ready, after a signal */
    struct event *grace_timer;
    struct event *drain_timer;
    int idle_ticks; /* of the drain timer with nothing pending */
} serve_state;

/* Stops once nothing is pending (messages, work with the store's thread)
 * at two ticks in a row: a reply handed to
 * its connection in the loop turn that finished the last item is written
 * in a later loop turn, before the second tick. */
static void check_drained(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    serve_state *st = arg;
    if (pl_pipeline_pending(pl_app_pipeline(st->app)) != 0 || pl_store_offloaded(pl_app_store(st->app)) != 0)
        st->idle_ticks = 0;
    else if (++st->idle_ticks >= 2) event_base_loopexit(pl_app_base(st->app), NULL);
}

/* Stops accepting and stops once the messages in flight are answered. */
static void begin_drain(serve_state *st) {
    pl_server_stop_accepting(st->server);
    st->drain_timer = event_new(pl_app_base(st->app), -1, EV_PERSIST, check_drained, st);
    struct timeval every = {0, 10000};
    event_add(st->drain_timer, &every);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pl_info("drain grace over: finishing the messages in flight, then stopping");
    begin_drain(arg);
}

/* SIGTERM or SIGINT: the node says it is not ready at once; with
 * --drain-grace it serves on for that long (a load balancer's health
 * checks take it out meanwhile), then drains. A second signal stops now. */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    serve_state *st = arg;
    if (st->drain_timer || st->grace_timer) {
        pl_warn("second signal: stopping now");
        event_base_loopbreak(pl_app_base(st->app));
        return;
    }
    pl_server_drain(st->server);
    if (st->drain_grace_s > 0) {
        pl_info("signal %d: /v1/health/ready now answers 503; serving %ld s more, then finishing the messages in "
                "flight and stopping",
                (int)sig, st->drain_grace_s);
        st->grace_timer = evtimer_new(pl_app_base(st->app), on_grace_over, st);
        struct timeval grace = {st->drain_grace_s, 0};
        evtimer_add(st->grace_timer, &grace);
        return;
    }
    pl_info("signal %d: finishing the messages in flight, then stopping", (int)sig);
    begin_drain(st);
}

/* SIGHUP with --log-file: the file opens again by its name (a rotation
 * renamed it). Without one, a hangup stops parley as it always did (a
 * server left behind by a closed terminal would hold its port). */
static void on_hangup(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    (void)arg;
    char *err = NULL;
    if (pl_cli_log_file_reopen(&err) != PL_OK) pl_error("SIGHUP: %s; logging on to the old file", err);
    else pl_info("SIGHUP: log file %s opened again", pl_cli_log_file());
    free(err);
}

/* A free port on addr, found by binding port 0 and letting it go. */
static int pick_free_port(const char *addr) {
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (evutil_getaddrinfo(addr, "0", &hints, &ai) != 0 || !ai) return 0;
    int port = 0;
    evutil_socket_t fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct sockaddr_storage ss;
    ev_socklen_t len = sizeof ss;
    if (fd >= 0 && bind(fd, ai->ai_addr, (ev_socklen_t)ai->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (fd >= 0) evutil_closesocket(fd);
    evutil_freeaddrinfo(ai);
    return port;
}

/* --env-prefix BOT=PREFIX: the environment namespace of one bot. */
static int set_env_prefix(const char *spec) {
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1] || strncmp(eq + 1, "PARLEY_", 7) == 0) return PL_ERR;
    for (const char *p = eq + 1; *p; p++)
        if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_') return PL_ERR;
    char *bot = pl_strndup(spec, (size_t)(eq - spec));
    pl_secrets_set_prefix(bot, eq + 1);
    free(bot);
    return PL_OK;
}

/* A whole number above zero, the whole of text. */
static int positive_number(const char *text, long *n) {
    char *end = NULL;
    *n = strtol(text, &end, 10);
    return end != text && *end == '\0' && *n > 0;
}

static int parse_listen(const char *spec, char **addr, int *port) {
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec) return PL_ERR;
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 0 || p > 65535 || end == colon + 1) return PL_ERR;
    *addr = pl_strndup(spec, (size_t)(colon - spec));
    if ((*addr)[0] == '[') { /* [::1]:8080 */
        size_t len = strlen(*addr);
        memmove(*addr, *addr + 1, len);
        if (len >= 2 && (*addr)[len - 2] == ']') (*addr)[len - 2] = '\0';
    }
    *port = (int)p;
    return PL_OK;
}

/* A start that failed: said on stderr, a JSON line with --log-format json. */
static void start_failed(const char *err) {
    if (pl_log_get_format() == PL_LOG_JSON) pl_error("parley serve: %s", err);
    else fprintf(stderr, "parley serve: %s\n", err);
}

/* libevent's own warnings go to the one log (a JSON line with the others). */
static void libevent_log(int severity, const char *msg) {
    if (severity == EVENT_LOG_DEBUG) return;
    pl_log(severity == EVENT_LOG_ERR ? PL_LOG_ERROR : severity == EVENT_LOG_WARN ? PL_LOG_WARN : PL_LOG_INFO,
           "libevent: %s", msg);
}

/* Binds first (port 0 picks one), then opens the app with the public URL
 * that follows from the real port unless one was given. */
static int run_server(pl_app_config *config, const char *addr, int port, const char *node, long drain_grace_s,
                      const char *metrics_addr, int metrics_port) {
    char *err = NULL;
    pl_app *app = NULL;
    char *derived = NULL;
    if (!config->public_url && getenv("PARLEY_PUBLIC_URL") && *getenv("PARLEY_PUBLIC_URL"))
        config->public_url = getenv("PARLEY_PUBLIC_URL");
    int fixed_port = port;
    if (!config->public_url && port == 0) fixed_port = pick_free_port(addr);
    if (!config->public_url) config->public_url = derived = pl_strdupf("http://%s:%d", addr, fixed_port);
    port = fixed_port;
    config->node = node;
    int opened = pl_app_open(config, &app, &err) == PL_OK;
    free(derived);
    config->public_url = NULL;
    if (!opened) {
        start_failed(err);
        free(err);
        return 1;
    }
    serve_state st = {.app = app, .server = pl_server_new(app, pl_app_node(app)), .drain_grace_s = drain_grace_s};
    if (pl_server_listen(st.server, addr, port, &err) != PL_OK ||
        (metrics_addr && pl_server_listen_metrics(st.server, metrics_addr, metrics_port, &err) != PL_OK)) {
        start_failed(err);
        free(err);
        pl_server_free(st.server);
        pl_app_close(app);
        return 1;
    }
    struct event_base *base = pl_app_base(app);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, &st);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, &st);
    struct event *sighup = pl_cli_log_file() ? evsignal_new(base, SIGHUP, on_hangup, NULL) : NULL;
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    if (sighup) event_add(sighup, NULL);
    for (size_t i = 0; i < pl_app_bot_count(app); i++)
        pl_info("serving bot '%s' from %s at http://%s:%d/v1/bots/%s/messages",
                pl_bot_name(pl_app_bot(app, i)), pl_bot_dir(pl_app_bot(app, i)), addr,
                pl_server_port(st.server), pl_bot_name(pl_app_bot(app, i)));
    pl_info("listening on %s:%d", addr, pl_server_port(st.server));
    if (metrics_addr)
        pl_info("metrics: GET http://%s:%d/metrics answers without a token", metrics_addr,
                pl_server_metrics_port(st.server));
    event_base_dispatch(base);
    uint64_t items = 0, transactions = 0;
    pl_pipeline_stats(pl_app_pipeline(app), &items, &transactions);
    uint64_t syncs = 0, checkpoints = 0;
    pl_pipeline_sync_stats(pl_app_pipeline(app), &syncs, &checkpoints);
    if (transactions)
        pl_info("committed %llu messages in %llu transactions (%.1f per transaction), %llu syncs, %llu checkpoints",
                (unsigned long long)items, (unsigned long long)transactions,
                (double)items / (double)transactions, (unsigned long long)syncs, (unsigned long long)checkpoints);
    uint64_t trips = pl_store_round_trips(pl_app_store(app));
    if (trips && items)
        pl_info("%llu round trips to the database (%.1f per message committed)", (unsigned long long)trips,
                (double)trips / (double)items);
    event_free(sigterm);
    event_free(sigint);
    if (sighup) event_free(sighup);
    if (st.drain_timer) event_free(st.drain_timer);
    if (st.grace_timer) event_free(st.grace_timer);
    /* what the store's thread still has finishes while the routes that
     * wait for it are there */
    pl_store_drain(pl_app_store(app));
    pl_server_free(st.server);
    pl_app_close(app);
    pl_info("stopped");
    return 0;
}

int pl_cmd_serve(int argc, char **argv) {
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"db", required_argument, 0, 'd'},
                                         {"sync", required_argument, 0, 's'},
                                         {"no-watch", no_argument, 0, 'n'},
                                         {"log-level", required_argument, 0, 'v'},
                                         {"public-url", required_argument, 0, 'u'},
                                         {"max-memory-mb", required_argument, 0, 'M'},
                                         {"max-instructions", required_argument, 0, 'I'},
                                         {"max-time-ms", required_argument, 0, 'T'},
                                         {"bot-share", required_argument, 0, 'S'},
                                         {"bot-burst-ms", required_argument, 0, 'B'},
                                         {"max-connections", required_argument, 0, 'C'},
                                         {"header-timeout", required_argument, 0, 'H'},
                                         {"idle-timeout", required_argument, 0, 'K'},
                                         {"env-prefix", required_argument, 0, 'E'},
                                         {"allow-private-http", no_argument, 0, 'A'},
                                         {"threads", required_argument, 0, 'W'},
                                         {"node", required_argument, 0, 'N'},
                                         {"drain-grace", required_argument, 0, 'G'},
                                         {"log-format", required_argument, 0, 'F'},
                                         {"metrics-listen", required_argument, 0, 'L'},
                                         {"log-file", required_argument, 0, 'O'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    pl_bot_caps caps = {0};
    pl_conn_limits conn_limits = {0};
    pl_usage_policy share;
    pl_usage_get_policy(&share);
    long n = 0;
    char *addr = pl_strdup("127.0.0.1"), *metrics_addr = NULL;
    int port = 8080, metrics_port = 0, watch = 1, c, rc = 0;
    const char *node = getenv("PARLEY_NODE"); /* set but empty: not set */
    if (node && !*node) node = NULL;
    long drain_grace_s = 0;
    const char *log_file = NULL;
    pl_app_config config = {.db_path = "parley.db", .sync = PL_SYNC_FULL};
    const char *database_url = getenv("PARLEY_DATABASE_URL"); /* set but empty: not set */
    if (database_url && *database_url) config.db_path = database_url;
    /* the environment's default, which --threads overrides (a test run
     * passes every suite through turn threads this way) */
    const char *threads_env = getenv("PARLEY_THREADS");
    if (threads_env && positive_number(threads_env, &n) && n <= PL_MAX_THREADS) config.threads = (size_t)n;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            free(addr);
            addr = NULL;
            if (parse_listen(optarg, &addr, &port) != PL_OK)
                rc = pl_cli_usage_error("serve", "--listen wants ADDR:PORT, such as 127.0.0.1:8080");
            break;
        case 'L':
            free(metrics_addr);
            metrics_addr = NULL;
            if (parse_listen(optarg, &metrics_addr, &metrics_port) != PL_OK)
                rc = pl_cli_usage_error("serve", "--metrics-listen wants ADDR:PORT, such as 127.0.0.1:9464");
            break;
        case 'F':
            if (pl_log_parse_format(optarg) < 0) rc = pl_cli_usage_error("serve", "--log-format is text or json");
            else pl_log_set_format((pl_log_format)pl_log_parse_format(optarg));
            break;
        case 'd': config.db_path = optarg; break;
        case 'O': log_file = optarg; break;
        case 's':
            if (strcmp(optarg, "full") == 0) config.sync = PL_SYNC_FULL;
            else if (strcmp(optarg, "normal") == 0) config.sync = PL_SYNC_NORMAL;
            else rc = pl_cli_usage_error("serve", "--sync is full or normal");
            break;
        case 'n': watch = 0; break;
        case 'A': pl_http_lua_allow_private(1); break;
        case 'u': config.public_url = optarg; break;
        case 'N': node = optarg; break;
        case 'G':
            if (strcmp(optarg, "0") == 0) drain_grace_s = 0;
            else if (!positive_number(optarg, &n) || n > 3600)
                rc = pl_cli_usage_error("serve", "--drain-grace wants seconds from 0 to 3600");
            else drain_grace_s = n;
            break;
        case 'W':
            if (!positive_number(optarg, &n) || n > PL_MAX_THREADS)
                rc = pl_cli_usage_error("serve", "--threads wants a whole number from 1 to %d", PL_MAX_THREADS);
            else config.threads = (size_t)n;
            break;
        case 'v':
            if (pl_log_parse_level(optarg) < 0) rc = pl_cli_usage_error("serve", "--log-level is debug, info, warn or error");
            else pl_log_set_level((pl_log_level)pl_log_parse_level(optarg));
            break;
        case 'M':
        case 'I':
        case 'T':
        case 'S':
        case 'B':
            if (!positive_number(optarg, &n) || (c == 'S' && n > 100)) {
                const char *names = "M--max-memory-mb I--max-instructions T--max-time-ms S--bot-share B--bot-burst-ms";
                const char *name = strchr(names, c) + 1;
                rc = pl_cli_usage_error("serve", "%.*s wants a whole number above 0%s", (int)strcspn(name, " "),
                                        name, c == 'S' ? " and up to 100" : "");
                break;
            }
            if (c == 'M') caps.memory_mb = n;
            else if (c == 'I') caps.instructions = n;
            else if (c == 'T') caps.time_ms = n;
            else if (c == 'S') share.share = (double)n / 100.0;
            else share.burst_us = (int64_t)n * 1000;
            break;
        case 'C':
        case 'H':
        case 'K':
            if (!positive_number(optarg, &n) || n > 1000000) {
                const char *name = c == 'C' ? "--max-connections" : c == 'H' ? "--header-timeout" : "--idle-timeout";
                rc = pl_cli_usage_error("serve", "%s wants a whole number from 1 to 1000000", name);
                break;
            }
            if (c == 'C') conn_limits.max_connections = (int)n;
            else if (c == 'H') conn_limits.header_timeout_s = (int)n;
            else conn_limits.idle_timeout_s = (int)n;
            break;
        case 'E':
            if (set_env_prefix(optarg) != PL_OK)
                rc = pl_cli_usage_error("serve", "--env-prefix wants BOT=PREFIX, such as shop=ACME_SHOP_ "
                                                 "(capitals, digits and _, not PARLEY_)");
            break;
        case 'h':
            fputs(serve_usage, stdout);
            free(addr);
            free(metrics_addr);
            return 0;
        default: rc = pl_cli_usage_error("serve", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (rc == 0 && node && (!*node || strlen(node) > 200))
        rc = pl_cli_usage_error("serve", "--node (or PARLEY_NODE) wants a name of 1 to 200 bytes");
    char *default_dir = NULL;
    if (rc == 0) {
        config.bot_dirs = argv + optind;
        config.nbots = (size_t)(argc - optind);
        if (config.nbots == 0) {
            default_dir = pl_cli_default_bot();
            if (!default_dir) rc = pl_cli_usage_error("serve", "no BOT_DIR given and no bot.json here");
            config.bot_dirs = &default_dir;
            config.nbots = 1;
        }
        for (size_t i = 0; rc == 0 && i < config.nbots; i++) {
            struct stat st;
            if (stat(config.bot_dirs[i], &st) != 0 || !S_ISDIR(st.st_mode))
                rc = pl_cli_usage_error("serve", "%s: no such folder", config.bot_dirs[i]);
        }
    }
    config.watch = watch;
    pl_bot_set_caps(&caps);
    pl_usage_set_policy(&share);
    pl_conn_set_limits(&conn_limits);
    /* With --log-file a hangup means "reopen the file" (logrotate): one that
     * comes while the bots and the store load, before on_hangup listens, is
     * ignored, not the end of parley (which systemd would count as a clean
     * exit and not restart). */
    if (rc == 0 && log_file) signal(SIGHUP, SIG_IGN);
    char *log_err = NULL;
    if (rc == 0 && log_file && pl_cli_log_file_open(log_file, &log_err) != PL_OK) {
        start_failed(log_err);
        free(log_err);
        rc = 1;
    }
    if (rc == 0) {
        event_set_log_callback(libevent_log);
        rc = run_server(&config, addr, port, node, drain_grace_s, metrics_addr, metrics_port);
    }
    free(default_dir);
    free(addr);
    free(metrics_addr);
    return rc;
}

/* --- dispatch --------------------------------------------------------------------- */

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? PL_EXIT_USAGE : 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {{"new", pl_cmd_new},
                    {"serve", pl_cmd_serve},
                    {"backup", pl_cmd_backup},
                    {"chat", pl_cmd_chat},
                    {"test", pl_cmd_test},
                    {"check", pl_cmd_check},
                    {"replay", pl_cmd_replay},
                    {"understand", pl_cmd_understand}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "parley: unknown command '%s'\n\n%s", argv[1], main_usage);
    return PL_EXIT_USAGE;
}
