/* chat: `parley chat` — a conversation with a bot in the terminal, through
 * the same pipeline as the server (channel "console"). Choices are numbered
 * and a number taps one; links and images are lines; /pay pays the last
 * payment link through the test provider; the scripts' log lines show on
 * stderr; --record keeps the conversation as a replay file (replay.h).
 * Saving a script reloads it, and the console says so or shows the error
 * (file:line) while the old version keeps answering. */
#define _GNU_SOURCE
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "base/common.h"
#include "base/log.h"
#include "base/money.h"
#include "cli.h"
#include "commerce/commerce.h"
#include "replay.h"
#include "sandbox/usage.h"

#define CHAT_COMMANDS                                                                  \
    "In the chat:\n"                                                                   \
    "  /pay            pay the last payment link through the test provider\n"         \
    "  /locale LOCALE  switch language from the next message\n"                       \
    "  /session        show the stored session\n"                                     \
    "  /reset          erase the session: the next message starts over\n"             \
    "  /help           this list\n"                                                   \
    "  /quit           leave (so does the end of input)\n"

static const char chat_usage[] =
    "usage: parley chat [BOT_DIR] [--user ID] [--locale LOCALE] [--db FILE] [--record FILE]\n"
    "\n"
    "Talk to a bot in the terminal. Type a message and press enter; type the number\n"
    "of a choice to tap it. Saving any script of the bot reloads it.\n"
    "\n"
    "  --user ID        the shopper id (default: console)\n"
    "  --locale LOCALE  the shopper's locale, such as en or ja\n"
    "  --db FILE        keep sessions in this SQLite file (default: in memory)\n"
    "  --record FILE    keep the conversation as a replay file (parley replay\n"
    "                   --from FILE replays it), written after every turn\n"
    "\n"
    "The scripts' log lines (log.info ...) show on stderr, marked \"log:\".\n"
    "\n"
    CHAT_COMMANDS;

typedef struct {
    pl_app *app;
    pl_bot *bot;
    char *user;
    char *locale;
    json_t *choices; /* payloads of the last numbered choices */
    char *last_link; /* the URL of the last link the bot sent, for /pay */
    const char *record; /* --record FILE, or NULL */
    int64_t pay_mark;   /* /pay: the last transcript line before it */
    int pay_polls;      /* /pay: checks left for the bot's answer */
    size_t told;        /* replies the bot said on its own that chat showed at once */
    struct event *pay_ev;
    char line[8192];
    size_t used;
    int eof;
    int awaiting; /* a message is in the pipeline; the next line waits */
    int blocking; /* stdin cannot be polled (a file, /dev/null): read it when a line is wanted */
    struct event *stdin_ev;
} chat;

static void pump(chat *ch);

static void prompt(void) {
    fputs("you> ", stdout);
    fflush(stdout);
}

static void print_choices(chat *ch, const json_t *reply) {
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(reply, "choices"), i, choice) {
        json_array_append(ch->choices, json_object_get(choice, "payload"));
        printf("      %zu) %s\n", json_array_size(ch->choices),
               json_string_value(json_object_get(choice, "title")));
    }
}

/* "2.50 EUR", "450 JPY", "1.250 KWD": the currency's own minor-unit digits
 * (base/money.c). */
static void print_price(const json_t *price) {
    long long amount = (long long)json_integer_value(json_object_get(price, "amount"));
    const char *currency = json_string_value(json_object_get(price, "currency"));
    int decimals = currency ? pl_money_decimals(currency) : 2;
    long long unit = 1;
    for (int i = 0; i < decimals; i++) unit *= 10;
    const char *sign = amount < 0 ? "-" : "";
    unsigned long long magnitude = amount < 0 ? 0ULL - (unsigned long long)amount : (unsigned long long)amount;
    if (decimals == 0) printf("%s%llu %s", sign, magnitude, currency ? currency : "");
    else
        printf("%s%llu.%0*llu %s", sign, magnitude / (unsigned long long)unit, decimals,
               magnitude % (unsigned long long)unit, currency ? currency : "");
}

static void print_cards(const json_t *reply) {
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(reply, "cards"), i, card) {
        printf("      [%s] %s — ", json_string_value(json_object_get(card, "sku")),
               json_string_value(json_object_get(card, "title")));
        print_price(json_object_get(card, "price"));
        const char *subtitle = json_string_value(json_object_get(card, "subtitle"));
        printf("%s%s\n", subtitle ? " — " : "", subtitle ? subtitle : "");
    }
}


/* A link (a payment link, a button with a URL) and an image are lines of
 * their own; /pay pays the last payment link. */
static void print_link_and_image(chat *ch, const json_t *reply) {
    const json_t *link = json_object_get(reply, "link");
    const char *url = json_string_value(json_object_get(link, "url"));
    if (url) {
        const char *title = json_string_value(json_object_get(link, "title"));
        printf("      [link] %s%s%s\n", title ? title : "", title ? ": " : "", url);
        free(ch->last_link);
        ch->last_link = pl_strdup(url);
    }
    const char *image = json_string_value(json_object_get(reply, "image"));
    if (image) printf("      [image] %s\n", image);
}

static void print_replies(chat *ch, const json_t *replies, size_t from) {
    json_array_clear(ch->choices);
    json_t *reply;
    for (size_t i = from; (reply = json_array_get(replies, i)); i++) {
        const char *text = json_string_value(json_object_get(reply, "text"));
        if (text) printf("%s: %s\n", pl_bot_name(ch->bot), text);
        print_choices(ch, reply);
        print_cards(reply);
        print_link_and_image(ch, reply);
    }
}

/* Writes --record's file: the conversation so far, as its transcript holds it. */
static void record(chat *ch) {
    if (!ch->record) return;
    char *err = NULL;
    json_t *doc = pl_replay_doc_from_store(pl_app_store(ch->app), pl_bot_name(ch->bot), "console", ch->user,
                                           "parley chat", &err);
    if (!doc || pl_replay_write(doc, ch->record, &err) != PL_OK) {
        printf("! --record: %s\n", err);
        free(err);
    }
    json_decref(doc);
}

static void deliver(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    const json_t *replies = pl_turn_replies(result);
    (void)msg;
    chat *ch = ud;
    ch->awaiting = 0;
    if (status != 200) printf("! the message could not be stored (status %d)\n", status);
    /* what the bot said on its own (after /pay) comes again first in this
     * answer, as on every channel that cannot push: it was shown already */
    size_t from = ch->told <= json_array_size(replies) ? ch->told : 0;
    ch->told = 0;
    print_replies(ch, replies, from);
    record(ch);
    prompt();
    pump(ch);
}

static void send_line(chat *ch, const char *line) {
    pl_message *msg = pl_message_new(pl_bot_name(ch->bot), "console", ch->user);
    char *end = NULL;
    long n = strtol(line, &end, 10);
    if (end != line && *end == '\0' && n >= 1 && (size_t)n <= json_array_size(ch->choices))
        msg->payload = pl_strdup(json_string_value(json_array_get(ch->choices, (size_t)n - 1)));
    else
        msg->text = pl_strdup(line);
    if (ch->locale) msg->locale = pl_strdup(ch->locale);
    ch->awaiting = 1;
    pl_pipeline_post(pl_app_pipeline(ch->app), ch->bot, msg, deliver, ch);
}

/* --- /pay: the test provider's payment, as its page makes it ------------------ */

#define PAY_POLL_MS 10
#define PAY_POLLS 500 /* how long /pay waits for the bot's answer: 5 s */

static void pay_finished(chat *ch) {
    ch->awaiting = 0;
    record(ch);
    prompt();
    pump(ch);
}

/* Shows what the bot said on its own once the payment's turn committed (a
 * payment confirmation turn runs after the order is paid): the lines after
 * pay_mark. Checks again every PAY_POLL_MS while nothing is there. */
static void show_told(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    chat *ch = arg;
    pl_session_key key = {pl_bot_name(ch->bot), "console", ch->user};
    json_t *lines = NULL;
    char *err = NULL;
    int busy = pl_pipeline_pending(pl_app_pipeline(ch->app)) > 0;
    if (!busy && pl_store_transcript_since(pl_app_store(ch->app), &key, ch->pay_mark, 1000, &lines, &err) != PL_OK) {
        printf("! %s\n", err);
        free(err);
        pay_finished(ch);
        return;
    }
    if (busy || json_array_size(lines) == 0) {
        json_decref(lines);
        if (--ch->pay_polls > 0) {
            event_add(ch->pay_ev, &(struct timeval){0, PAY_POLL_MS * 1000});
            return;
        }
        printf("(the bot said nothing about the payment)\n");
        pay_finished(ch);
        return;
    }
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        if (strcmp(json_string_value(json_object_get(line, "direction")), "out") != 0) continue;
        const json_t *replies = json_object_get(line, "body");
        print_replies(ch, replies, 0);
        ch->told += json_array_size(replies);
    }
    json_decref(lines);
    pay_finished(ch);
}

static void paid(int status, const char *problems, void *ud) {
    chat *ch = ud;
    if (status != 200) {
        printf("! the payment was not applied (%d%s%s)\n", status, problems ? ": " : "", problems ? problems : "");
        pay_finished(ch);
        return;
    }
    printf("(paid through the test provider)\n");
    ch->pay_polls = PAY_POLLS;
    event_add(ch->pay_ev, &(struct timeval){0, 0});
}

/* The order of a test provider's link (".../payments/test/ID?token=T") when
 * its token is the order's: new, or NULL with the reason printed. */
static json_t *order_of_link(chat *ch, const char *url) {
    const char *path = strstr(url, "/payments/test/");
    const char *token = strstr(url, "token=");
    long long id = path ? strtoll(path + strlen("/payments/test/"), NULL, 10) : 0;
    if (id <= 0 || !token) {
        printf("(the last link is not the test provider's: open it in a browser to pay)\n");
        return NULL;
    }
    json_t *order = NULL;
    char *err = NULL;
    if (pl_store_order_get(pl_app_store(ch->app), pl_bot_name(ch->bot), id, &order, &err) != PL_OK) {
        printf("! %s\n", err);
        free(err);
        return NULL;
    }
    const char *expected = json_string_value(json_object_get(order, "token"));
    token += strlen("token=");
    size_t len = strcspn(token, "&");
    if (!order || !expected || strlen(expected) != len || strncmp(token, expected, len) != 0) {
        printf("(order #%lld of the last link is not there any more)\n", id);
        json_decref(order);
        return NULL;
    }
    const char *state = json_string_value(json_object_get(order, "state"));
    if (strcmp(state, "pending") != 0) {
        printf("(order #%lld is %s: nothing to pay)\n", id, state);
        json_decref(order);
        return NULL;
    }
    return order;
}

/* /pay: confirms the last payment link's order as paid, the way the test
 * provider's page does, and shows what the bot says about it. */
static void pay(chat *ch) {
    if (!ch->last_link) {
        printf("(no payment link yet: /pay pays the last one the bot sent)\n");
        return;
    }
    json_t *order = order_of_link(ch, ch->last_link);
    if (!order) return;
    pl_session_key key = {pl_bot_name(ch->bot), "console", ch->user};
    ch->pay_mark = pl_store_transcript_last_id(pl_app_store(ch->app), &key);
    json_t *conf = json_pack("[{s:O, s:s, s:O, s:O, s:b}]", "order_id", json_object_get(order, "id"), "status", "paid",
                             "amount", json_object_get(order, "total"), "currency", json_object_get(order, "currency"),
                             "only_if_pending", 1);
    json_decref(order);
    ch->awaiting = 1;
    pl_commerce_confirm(pl_app_commerce(ch->app), ch->bot, conf, paid, ch);
}

static void show_session(chat *ch) {
    pl_session_key key = {pl_bot_name(ch->bot), "console", ch->user};
    char *state = NULL, *err = NULL;
    if (pl_store_session_get(pl_app_store(ch->app), &key, &state, &err) != PL_OK) {
        printf("! %s\n", err);
        free(err);
        return;
    }
    json_t *j = state ? json_loads(state, 0, NULL) : NULL;
    char *pretty = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    printf("%s\n", pretty ? pretty : "(no session yet)");
    free(pretty);
    json_decref(j);
    free(state);
}

static void erased(int status, const pl_message *msg, const pl_turn_result *result, void *ud) {
    (void)msg;
    (void)result;
    chat *ch = ud;
    ch->awaiting = 0;
    json_array_clear(ch->choices);
    ch->told = 0;
    free(ch->last_link);
    ch->last_link = NULL;
    printf(status == 200 ? "(session erased: the next message starts over)\n" : "(no session to erase)\n");
    record(ch); /* (the file holds the conversation from the reset on) */
    prompt();
    pump(ch);
}

/* Handles one typed line; returns 0 to quit. */
static int handle_line(chat *ch, char *line) {
    line[strcspn(line, "\r")] = '\0';
    if (!*line) return 1;
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0) return 0;
    if (strcmp(line, "/session") == 0) show_session(ch);
    else if (strcmp(line, "/help") == 0) fputs(CHAT_COMMANDS, stdout);
    else if (strcmp(line, "/pay") == 0) pay(ch);
    else if (strcmp(line, "/reset") == 0) {
        ch->awaiting = 1;
        pl_pipeline_erase(pl_app_pipeline(ch->app), ch->bot, "console", ch->user, erased, ch);
    } else if (strncmp(line, "/locale ", 8) == 0) {
        free(ch->locale);
        ch->locale = pl_strdup(line + 8);
        printf("(locale %s from the next message)\n", ch->locale);
    } else
        send_line(ch, line);
    return 1;
}

/* Handles typed lines one at a time: a line waits until the answer to the
 * previous one has been delivered. */
static void pump(chat *ch) {
    char *nl;
    while (!ch->awaiting && (nl = memchr(ch->line, '\n', ch->used))) {
        *nl = '\0';
        char *line = pl_strdup(ch->line);
        size_t rest = ch->used - (size_t)(nl + 1 - ch->line);
        memmove(ch->line, nl + 1, rest);
        ch->used = rest;
        int go_on = handle_line(ch, line);
        free(line);
        if (!go_on) {
            event_base_loopexit(pl_app_base(ch->app), NULL);
            return;
        }
        if (!ch->awaiting) prompt();
    }
    if (ch->awaiting) return;
    if (ch->eof) event_base_loopexit(pl_app_base(ch->app), NULL);
    else if (ch->blocking) event_active(ch->stdin_ev, EV_READ, 0); /* the next line, from the loop */
}

static void on_stdin(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    (void)fd;
    chat *ch = arg;
    if (ch->used == sizeof ch->line - 1) ch->used = 0; /* an over-long line is dropped */
    ssize_t n = read(0, ch->line + ch->used, sizeof ch->line - 1 - ch->used);
    if (n <= 0) {
        ch->eof = 1;
        if (!ch->blocking) event_del(ch->stdin_ev);
        /* a last line without its newline is a line all the same */
        if (ch->used > 0 && ch->line[ch->used - 1] != '\n') ch->line[ch->used++] = '\n';
    } else {
        ch->used += (size_t)n;
    }
    pump(ch);
}

/* Whether stdin can wait in the loop (a terminal, a pipe, a socket): a
 * regular file or a device like /dev/null cannot (epoll refuses them), and
 * is read when the next line is wanted instead. */
static int stdin_pollable(void) {
    struct stat st;
    if (fstat(0, &st) != 0) return 0;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return 0;
    return !S_ISCHR(st.st_mode) || isatty(0);
}

/* Starts reading stdin: in the loop when it can be polled, else line by
 * line, each once the answer to the one before was shown. */
static void watch_stdin(chat *ch) {
    struct event_base *base = pl_app_base(ch->app);
    if (stdin_pollable()) {
        ch->stdin_ev = event_new(base, 0, EV_READ | EV_PERSIST, on_stdin, ch);
        if (event_add(ch->stdin_ev, NULL) == 0) return;
        event_free(ch->stdin_ev);
    }
    ch->blocking = 1;
    ch->stdin_ev = event_new(base, -1, 0, on_stdin, ch);
    event_active(ch->stdin_ev, EV_READ, 0);
}

static void on_reload(pl_bot *bot, int ok, const char *changed, const pl_errors *errors, void *ud) {
    (void)ud;
    if (ok) printf("\n(reloaded %s: %s changed)\n", pl_bot_name(bot), changed);
    else {
        printf("\n(%s did not reload, the previous version keeps answering)\n", changed);
        for (size_t i = 0; i < errors->count; i++) printf("! %s\n", errors->items[i]);
    }
    prompt();
}

/* A line a script logged (log.info ...): "[bot] file.lua:N: ..." */
static int is_script_line(const char *line) {
    if (line[0] != '[') return 0;
    const char *end = strstr(line, "] ");
    if (!end) return 0;
    long n = 0;
    char *file = pl_log_script_position(end + 2, &n);
    free(file);
    return file != NULL;
}

/* Errors and warnings of turns show up in the conversation; the scripts'
 * own lines (log.info ...) on stderr, marked and dimmed on a terminal; the
 * rest of the log (the runtime's own lines) stays out of the way. */
static void log_sink(pl_log_level level, const char *line, void *ud) {
    (void)ud;
    int len = (int)strcspn(line, "\n");
    if (level >= PL_LOG_WARN) printf("! %.*s\n", len, line);
    else if (is_script_line(line)) {
        int dim = isatty(2);
        fprintf(stderr, "%slog: %.*s%s\n", dim ? "\033[2m" : "", len, line, dim ? "\033[0m" : "");
    }
}

static int run_chat(const char *dir, const char *db, chat *ch) {
    char *dirs[] = {(char *)dir};
    pl_app_config config = {.db_path = db, .sync = PL_SYNC_NORMAL, .bot_dirs = dirs, .nbots = 1,
                            .watch = 1};
    pl_log_set_sink(log_sink, NULL, 1);
    char *err = NULL;
    /* one bot and no neighbours to protect: its share of the loop is all of it */
    pl_usage_set_policy(&(pl_usage_policy){1.0, INT64_MAX / 4});
    if (pl_app_open(&config, &ch->app, &err) != PL_OK) {
        fprintf(stderr, "parley chat: %s\n", err);
        free(err);
        return 1;
    }
    ch->bot = pl_app_bot(ch->app, 0);
    ch->choices = json_array();
    ch->pay_ev = evtimer_new(pl_app_base(ch->app), show_told, ch);
    pl_app_on_reload(ch->app, on_reload, ch);
    printf("parley chat with '%s'. Type a message; a number taps a choice; /help lists the commands.\n",
           pl_bot_name(ch->bot));
    if (pl_bot_error(ch->bot)) printf("! the scripts did not load: %s\n", pl_bot_error(ch->bot));
    prompt();
    watch_stdin(ch);
    event_base_dispatch(pl_app_base(ch->app));
    if (ch->eof) putchar('\n');
    event_free(ch->stdin_ev);
    event_free(ch->pay_ev);
    json_decref(ch->choices);
    free(ch->last_link);
    pl_app_close(ch->app);
    return 0;
}

int pl_cmd_chat(int argc, char **argv) {
    static const struct option opts[] = {{"user", required_argument, 0, 'u'},
                                         {"locale", required_argument, 0, 'l'},
                                         {"db", required_argument, 0, 'd'},
                                         {"record", required_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    chat ch = {0};
    const char *db = ":memory:";
    const char *user = "console";
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': user = optarg; break;
        case 'l': ch.locale = pl_strdup(optarg); break;
        case 'd': db = optarg; break;
        case 'r': ch.record = optarg; break;
        case 'h': fputs(chat_usage, stdout); free(ch.locale); return 0;
        default: free(ch.locale); return pl_cli_usage_error("chat", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 1) {
        free(ch.locale);
        return pl_cli_usage_error("chat", "one BOT_DIR at a time");
    }
    char *default_dir = optind < argc ? NULL : pl_cli_default_bot();
    const char *dir = optind < argc ? argv[optind] : default_dir;
    struct stat st;
    int rc;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = pl_cli_usage_error("chat", "%s: no such folder", dir ? dir : "(no bot.json here)");
    else {
        ch.user = pl_strdup(user);
        rc = run_chat(dir, db, &ch);
    }
    free(ch.user);
    free(ch.locale);
    free(default_dir);
    return rc;
}
