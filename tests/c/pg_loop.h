/* pg_loop.h: for the C tests that talk to the run's private PostgreSQL
 * (PARLEY_TEST_PG, tests/pg/cluster.sh): running the loop until something
 * happened, and a connection that is up. Include after check.h. */
#ifndef PL_TEST_PG_LOOP_H
#define PL_TEST_PG_LOOP_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"

typedef struct {
    struct event_base *base;
    int up, down, settled;
    char *error;
} conn_state;

static inline void on_state(pl_pg *pg, const char *error, void *ud) {
    (void)pg;
    conn_state *s = ud;
    s->settled = 1;
    if (error) {
        s->down++;
        free(s->error);
        s->error = strdup(error);
    } else {
        s->up++;
    }
}

static inline void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    *(int *)arg = 1;
}

/* Runs the loop until *flag is set, or 20 s (a failure). 1 when set. */
static inline int run_until(struct event_base *base, const int *flag) {
    int late = 0;
    struct event *deadline = evtimer_new(base, on_deadline, &late);
    struct timeval limit = {20, 0};
    evtimer_add(deadline, &limit);
    while (!*flag && !late) event_base_loop(base, EVLOOP_ONCE);
    event_free(deadline);
    if (late) printf("#   waited 20 s in vain\n");
    return *flag != 0;
}

static inline const char *server(void) {
    const char *info = getenv("PARLEY_TEST_PG");
    if (!info || !*info) printf("#   PARLEY_TEST_PG is not set: tests/run.sh starts a private server (tests/pg/cluster.sh)\n");
    return info && *info ? info : NULL;
}

/* A connection to info that is up, or NULL (the case has failed then). */
static inline pl_pg *connect_to(struct event_base *base, conn_state *s, const char *info) {
    if (!info) return NULL;
    s->base = base;
    char *err = NULL;
    pl_pg *pg = pl_pg_connect(base, info, on_state, s, &err);
    CHECK(pg != NULL);
    free(err);
    if (!pg) return NULL;
    run_until(base, &s->settled);
    if (!s->up) {
        printf("#   not connected: %s\n", s->error ? s->error : "(no error)");
        pl_pg_free(pg);
        return NULL;
    }
    return pg;
}

/* A connection to the run's server that is up, or NULL. */
static inline pl_pg *connect_up(struct event_base *base, conn_state *s) { return connect_to(base, s, server()); }

static inline void on_batch_done(const PGresult *res, const char *error, void *ud) {
    (void)res;
    int *state = ud;
    *state = error ? -1 : 1;
}

static inline void on_step_error(const PGresult *res, const char *error, void *ud) {
    (void)res;
    if (error) printf("#   %s\n", error);
    (void)ud;
}

/* A new, empty database called name on the run's server (dropped first if
 * a run before left it); its connection string (new), or NULL. */
static inline char *fresh_database(const char *name) {
    const char *info = server();
    if (!info) return NULL;
    struct event_base *base = event_base_new();
    conn_state s = {0};
    pl_pg *admin = connect_up(base, &s);
    char *out = NULL;
    if (admin) {
        char drop[200], create[200];
        snprintf(drop, sizeof drop, "DROP DATABASE IF EXISTS %s", name);
        snprintf(create, sizeof create, "CREATE DATABASE %s", name);
        int dropped = 0, created = 0;
        pl_pg_exec(admin, NULL, drop, 0, NULL, on_step_error, NULL);
        pl_pg_sync(admin, on_batch_done, &dropped);
        pl_pg_exec(admin, NULL, create, 0, NULL, on_step_error, NULL);
        pl_pg_sync(admin, on_batch_done, &created);
        run_until(base, &created);
        /* a later dbname= wins over the one in info */
        if (dropped == 1 && created == 1) {
            size_t len = strlen(info) + strlen(name) + 16;
            out = malloc(len);
            if (out) snprintf(out, len, "%s dbname=%s", info, name);
        }
    }
    pl_pg_free(admin);
    free(s.error);
    event_base_free(base);
    return out;
}


/* As fresh_database, as the postgres:// URL pl_store_open takes (new), or
 * NULL. */
static inline char *fresh_database_url_named(const char *name) {
    char *info = fresh_database(name);
    if (!info) return NULL;
    PQconninfoOption *opts = PQconninfoParse(info, NULL);
    const char *host = "", *port = "5432", *user = "parley";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val) continue;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "user") == 0) user = o->val;
    }
    size_t len = strlen(name) + strlen(host) + strlen(port) + strlen(user) + 64;
    char *url = malloc(len);
    if (url) snprintf(url, len, "postgresql:///%s?host=%s&port=%s&user=%s", name, host, port, user);
    PQconninfoFree(opts);
    free(info);
    return url;
}

/* One case's loop and connection: to the run's server, or to a fresh
 * database of that name. t->pg is NULL when it could not connect (the
 * case has failed then). pg_case_close frees all of it. */
typedef struct {
    struct event_base *base;
    conn_state s;
    pl_pg *pg;
    char *info;
} pg_case;

static inline void pg_case_open(pg_case *t, const char *database) {
    memset(t, 0, sizeof *t);
    t->base = event_base_new();
    if (database) {
        t->info = fresh_database(database);
        CHECK(t->info != NULL);
        t->pg = connect_to(t->base, &t->s, t->info);
    } else {
        t->pg = connect_up(t->base, &t->s);
    }
    CHECK(t->pg != NULL);
}

static inline void pg_case_close(pg_case *t) {
    pl_pg_free(t->pg);
    free(t->s.error);
    free(t->info);
    event_base_free(t->base);
}

#endif
