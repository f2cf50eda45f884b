/* map: a chained string hash table; see map.h. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

typedef struct entry {
    struct entry *next;
    char *key;
    void *value;
} entry;

struct pl_map {
    entry **buckets;
    size_t nbuckets, count;
};

static size_t slot(size_t nbuckets, const char *key) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % nbuckets);
}

pl_map *pl_map_new(void) {
    pl_map *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->nbuckets = 64;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets) abort();
    return m;
}

void pl_map_free(pl_map *m) {
    if (!m) return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->buckets);
    free(m);
}

static entry **find(const pl_map *m, const char *key) {
    entry **link = &m->buckets[slot(m->nbuckets, key)];
    while (*link && strcmp((*link)->key, key) != 0) link = &(*link)->next;
    return link;
}

void *pl_map_get(const pl_map *m, const char *key) {
    entry *e = *find(m, key);
    return e ? e->value : NULL;
}

static void grow(pl_map *m) {
    size_t n = m->nbuckets * 2;
    entry **buckets = calloc(n, sizeof *buckets);
    if (!buckets) abort();
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t at = slot(n, e->key);
            e->next = buckets[at];
            buckets[at] = e;
        }
    }
    free(m->buckets);
    m->buckets = buckets;
    m->nbuckets = n;
}

void *pl_map_put(pl_map *m, const char *key, void *value) {
    entry **link = find(m, key);
    entry *e = *link;
    void *old = e ? e->value : NULL;
    if (e && value) {
        e->value = value;
    } else if (e) {
        *link = e->next;
        free(e->key);
        free(e);
        m->count--;
    } else if (value) {
        if (m->count + 1 > m->nbuckets) {
            grow(m);
            link = find(m, key);
        }
        e = calloc(1, sizeof *e);
        if (!e) abort();
        *e = (entry){NULL, pl_strdup(key), value};
        *link = e;
        m->count++;
    }
    return old;
}

size_t pl_map_count(const pl_map *m) { return m->count; }

void pl_map_each(pl_map *m, void (*fn)(const char *key, void *value, void *ud), void *ud) {
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next; /* fn may remove e */
            fn(e->key, e->value, ud);
        }
    }
}
