/* lexicon: phrases found in folded text, typo-tolerant where allowed; see
 * lexicon.h. The words of every phrase are kept once each, in a hash table
 * for exact lookup and, for typo-tolerant lookup, in a list ordered by
 * length, so a word of the text is compared only with words near its own
 * length. */
#include "lexicon.h"

#include <string.h>
#include <utf8proc.h>

#include "text.h"

enum { KIND_WORD, KIND_DIGITS, KIND_CJK };

typedef struct {
    uint32_t off, len;  /* bytes, in the pool */
    uint32_t ncp;       /* code points */
    uint8_t kind;
    uint8_t fuzzy;      /* some fuzzy entry uses it */
    uint32_t starts;    /* entries starting with it: first index in start_list */
    uint32_t nstarts;
} word;

typedef struct {
    uint32_t seq;       /* first word id, in seq */
    uint32_t n;
    uint8_t fuzzy;
} entry;

struct pl_lexicon {
    pl_lexicon_alloc alloc;
    void *ud;
    int failed;
    char *pool;
    size_t pool_len, pool_cap;
    word *words;
    size_t nwords, words_cap;
    entry *entries;
    size_t nentries, entries_cap;
    uint32_t *seq;
    size_t nseq, seq_cap;
    uint32_t *hash; /* word id + 1, 0 empty */
    size_t hash_cap;
    uint32_t *start_list;  /* entry ids grouped by first word (at seal) */
    size_t start_cap;
    uint32_t *by_length;   /* fuzzy word ids ordered by ncp (at seal) */
    size_t by_length_cap;
    uint32_t length_at[PL_LEXICON_MAX_FUZZY_CPS + 3]; /* first index in by_length per ncp */
    int sealed;
};

/* --- memory ---------------------------------------------------------------- */

static int grow(pl_lexicon *lex, void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) ncap *= 2;
    void *np = lex->alloc(lex->ud, *p, *cap * elem, ncap * elem);
    if (!np) {
        lex->failed = 1;
        return 0;
    }
    *p = np;
    *cap = ncap;
    return 1;
}

static void release(pl_lexicon *lex, void *p, size_t size) {
    if (p) lex->alloc(lex->ud, p, size, 0);
}

pl_lexicon *pl_lexicon_new(pl_lexicon_alloc alloc, void *ud) {
    pl_lexicon *lex = alloc(ud, NULL, 0, sizeof *lex);
    if (!lex) return NULL;
    memset(lex, 0, sizeof *lex);
    lex->alloc = alloc;
    lex->ud = ud;
    return lex;
}

void pl_lexicon_free(pl_lexicon *lex) {
    if (!lex) return;
    release(lex, lex->pool, lex->pool_cap);
    release(lex, lex->words, lex->words_cap * sizeof *lex->words);
    release(lex, lex->entries, lex->entries_cap * sizeof *lex->entries);
    release(lex, lex->seq, lex->seq_cap * sizeof *lex->seq);
    release(lex, lex->hash, lex->hash_cap * sizeof *lex->hash);
    release(lex, lex->start_list, lex->start_cap * sizeof *lex->start_list);
    release(lex, lex->by_length, lex->by_length_cap * sizeof *lex->by_length);
    lex->alloc(lex->ud, lex, sizeof *lex, 0);
}

/* --- units ----------------------------------------------------------------- */

static int32_t cp_at(const char *s, size_t len, size_t *step) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &cp);
    *step = n > 0 ? (size_t)n : 1;
    return n > 0 ? cp : -1;
}

static int is_digit(int32_t cp) { return cp >= '0' && cp <= '9'; }

static int kind_of(int32_t cp) {
    if (is_digit(cp)) return KIND_DIGITS;
    return pl_text_is_cjk(cp) ? KIND_CJK : KIND_WORD;
}

void pl_lexicon_cut(const char *folded, pl_lexicon_units *units) {
    size_t len = strlen(folded), pos = 0;
    units->count = 0;
    int open = -1; /* the kind of the unit being read, -1 none */
    while (pos < len) {
        size_t step;
        int32_t cp = cp_at(folded + pos, len - pos, &step);
        if (cp == ' ') {
            open = -1;
        } else {
            int kind = kind_of(cp);
            if (kind == KIND_CJK || kind != open) {
                if (units->count == PL_LEXICON_MAX_UNITS) return; /* the rest is left alone */
                units->unit[units->count].start = (uint32_t)pos;
                units->unit[units->count].len = 0;
                units->count++;
            }
            units->unit[units->count - 1].len += (uint32_t)step;
            open = kind == KIND_CJK ? -1 : kind;
        }
        pos += step;
    }
}

static size_t count_cps(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
    return n;
}

/* --- building -------------------------------------------------------------- */

static uint64_t hash_of(const char *s, size_t len) { return pl_text_hash(s, len); }

static long find_word(const pl_lexicon *lex, const char *s, size_t len) {
    if (!lex->hash_cap) return -1;
    size_t mask = lex->hash_cap - 1;
    for (size_t i = (size_t)hash_of(s, len) & mask;; i = (i + 1) & mask) {
        uint32_t slot = lex->hash[i];
        if (!slot) return -1;
        const word *w = &lex->words[slot - 1];
        if (w->len == len && memcmp(lex->pool + w->off, s, len) == 0) return (long)(slot - 1);
    }
}

static void hash_insert(pl_lexicon *lex, uint32_t id) {
    size_t mask = lex->hash_cap - 1;
    const word *w = &lex->words[id];
    size_t i = (size_t)hash_of(lex->pool + w->off, w->len) & mask;
    while (lex->hash[i]) i = (i + 1) & mask;
    lex->hash[i] = id + 1;
}

static int rehash(pl_lexicon *lex) {
    size_t cap = lex->hash_cap ? lex->hash_cap * 2 : 64;
    uint32_t *table = lex->alloc(lex->ud, NULL, 0, cap * sizeof *table);
    if (!table) {
        lex->failed = 1;
        return 0;
    }
    memset(table, 0, cap * sizeof *table);
    release(lex, lex->hash, lex->hash_cap * sizeof *lex->hash);
    lex->hash = table;
    lex->hash_cap = cap;
    for (size_t id = 0; id < lex->nwords; id++) hash_insert(lex, (uint32_t)id);
    return 1;
}

static long intern(pl_lexicon *lex, const char *s, size_t len, int fuzzy) {
    long id = find_word(lex, s, len);
    if (id >= 0) {
        if (fuzzy) lex->words[id].fuzzy = 1;
        return id;
    }
    if ((lex->nwords + 1) * 2 > lex->hash_cap && !rehash(lex)) return -1;
    if (!grow(lex, (void **)&lex->pool, &lex->pool_cap, lex->pool_len + len, 1)) return -1;
    if (!grow(lex, (void **)&lex->words, &lex->words_cap, lex->nwords + 1, sizeof *lex->words)) return -1;
    memcpy(lex->pool + lex->pool_len, s, len);
    size_t step;
    word w = {.off = (uint32_t)lex->pool_len, .len = (uint32_t)len, .ncp = (uint32_t)count_cps(s, len),
              .kind = (uint8_t)kind_of(cp_at(s, len, &step)), .fuzzy = (uint8_t)(fuzzy != 0)};
    lex->pool_len += len;
    lex->words[lex->nwords] = w;
    hash_insert(lex, (uint32_t)lex->nwords);
    return (long)lex->nwords++;
}

long pl_lexicon_add(pl_lexicon *lex, const char *folded, int fuzzy) {
    if (lex->sealed || lex->failed) return -1;
    pl_lexicon_units units;
    pl_lexicon_cut(folded, &units);
    if (units.count == 0) return -1;
    if (!grow(lex, (void **)&lex->seq, &lex->seq_cap, lex->nseq + units.count, sizeof *lex->seq)) return -1;
    if (!grow(lex, (void **)&lex->entries, &lex->entries_cap, lex->nentries + 1, sizeof *lex->entries)) return -1;
    entry e = {.seq = (uint32_t)lex->nseq, .n = (uint32_t)units.count, .fuzzy = (uint8_t)(fuzzy != 0)};
    for (size_t i = 0; i < units.count; i++) {
        long id = intern(lex, folded + units.unit[i].start, units.unit[i].len, fuzzy);
        if (id < 0) return -1;
        lex->seq[lex->nseq++] = (uint32_t)id;
    }
    lex->entries[lex->nentries] = e;
    return (long)lex->nentries++;
}

static int fuzzy_word(const word *w) {
    return w->fuzzy && w->kind == KIND_WORD && w->ncp >= 4 && w->ncp <= PL_LEXICON_MAX_FUZZY_CPS;
}

/* Entries grouped by their first word, in the order added. */
static int index_starts(pl_lexicon *lex) {
    size_t n = lex->nentries ? lex->nentries : 1;
    lex->start_list = lex->alloc(lex->ud, NULL, 0, n * sizeof *lex->start_list);
    if (!lex->start_list) return 0;
    lex->start_cap = n;
    for (size_t i = 0; i < lex->nentries; i++) lex->words[lex->seq[lex->entries[i].seq]].nstarts++;
    uint32_t at = 0;
    for (size_t w = 0; w < lex->nwords; w++) {
        lex->words[w].starts = at;
        at += lex->words[w].nstarts;
        lex->words[w].nstarts = 0;
    }
    for (size_t i = 0; i < lex->nentries; i++) {
        word *w = &lex->words[lex->seq[lex->entries[i].seq]];
        lex->start_list[w->starts + w->nstarts++] = (uint32_t)i;
    }
    return 1;
}

/* The typo-tolerant words ordered by length (a counting sort: stable, so
 * words of one length keep the order they came in). */
static int index_lengths(pl_lexicon *lex) {
    uint32_t count[PL_LEXICON_MAX_FUZZY_CPS + 3] = {0};
    size_t total = 0;
    for (size_t w = 0; w < lex->nwords; w++)
        if (fuzzy_word(&lex->words[w])) count[lex->words[w].ncp]++, total++;
    size_t n = total ? total : 1;
    lex->by_length = lex->alloc(lex->ud, NULL, 0, n * sizeof *lex->by_length);
    if (!lex->by_length) return 0;
    lex->by_length_cap = n;
    uint32_t at = 0;
    for (size_t l = 0; l < PL_LEXICON_MAX_FUZZY_CPS + 3; l++) {
        lex->length_at[l] = at;
        at += count[l];
    }
    uint32_t fill[PL_LEXICON_MAX_FUZZY_CPS + 3];
    memcpy(fill, lex->length_at, sizeof fill);
    for (size_t w = 0; w < lex->nwords; w++)
        if (fuzzy_word(&lex->words[w])) lex->by_length[fill[lex->words[w].ncp]++] = (uint32_t)w;
    return 1;
}

int pl_lexicon_seal(pl_lexicon *lex) {
    if (lex->sealed) return !lex->failed;
    if (lex->failed) return 0;
    if (!index_starts(lex) || !index_lengths(lex)) return lex->failed = 1, 0;
    lex->sealed = 1;
    return 1;
}

/* --- matching -------------------------------------------------------------- */

unsigned pl_lexicon_allowed(size_t n) {
    if (n < 5) return 0;
    return n < 9 ? 1 : 2;
}

static size_t decode(const char *s, size_t len, int32_t *out, size_t max) {
    size_t n = 0;
    for (size_t pos = 0; pos < len && n < max;) {
        size_t step;
        out[n++] = cp_at(s + pos, len - pos, &step);
        pos += step;
    }
    return n;
}

static unsigned min3(unsigned a, unsigned b, unsigned c) {
    unsigned m = a < b ? a : b;
    return m < c ? m : c;
}

/* Optimal string alignment distance over code points, given up as soon as
 * every way on is over limit. */
unsigned pl_lexicon_distance(const char *a, size_t alen, const char *b, size_t blen, unsigned limit) {
    enum { MAX = PL_LEXICON_MAX_FUZZY_CPS + 2 };
    int32_t x[MAX], y[MAX];
    size_t n = decode(a, alen, x, MAX), m = decode(b, blen, y, MAX);
    if ((n > m ? n - m : m - n) > limit) return limit + 1;
    unsigned rows[3][MAX + 1];
    unsigned *before = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= m; j++) prev[j] = (unsigned)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (unsigned)i;
        unsigned best = cur[0];
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = x[i - 1] == y[j - 1] ? 0 : 1;
            unsigned d = min3(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
            if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] && before[j - 2] + 1 < d)
                d = before[j - 2] + 1;
            cur[j] = d;
            if (d < best) best = d;
        }
        if (best > limit) return limit + 1;
        unsigned *t = before;
        before = prev;
        prev = cur;
        cur = t;
    }
    return prev[m] <= limit ? prev[m] : limit + 1;
}

typedef struct {
    const char *s;
    size_t len, ncp;
    int kind;
} text_unit;

/* A typo's cost; a plural costs 1 (see unit_distance). */
#define TYPO 4

/* A plural of the word: the word and "s" or "es" ("lattes", "peaches"). */
static int is_plural(const text_unit *u, const char *w, size_t wlen) {
    if (wlen < 3 || u->len <= wlen || memcmp(u->s, w, wlen) != 0) return 0;
    const char *tail = u->s + wlen;
    size_t tlen = u->len - wlen;
    return (tlen == 1 && tail[0] == 's') || (tlen == 2 && tail[0] == 'e' && tail[1] == 's');
}

/* Typos spare a word's first letter (people rarely get it wrong, and a
 * different first letter is usually a different word: "frappuccino" is
 * not "cappuccino"), but two first letters may be swapped ("ltate"). */
static int same_start(const char *a, size_t alen, const char *b, size_t blen) {
    size_t sa, sb;
    int32_t a0 = cp_at(a, alen, &sa), b0 = cp_at(b, blen, &sb);
    if (a0 == b0) return 1;
    size_t ta, tb;
    int32_t a1 = sa < alen ? cp_at(a + sa, alen - sa, &ta) : -1;
    int32_t b1 = sb < blen ? cp_at(b + sb, blen - sb, &tb) : -1;
    return a0 == b1 && a1 == b0;
}

/* True when a and b (the same number of code points) differ only by two
 * neighbours swapped: "waht" for "what" (the one typo a four-letter word
 * is forgiven; "cosa" is not "coca"). */
static int one_swap(const char *a, size_t alen, const char *b, size_t blen) {
    int32_t x[8], y[8];
    size_t n = decode(a, alen, x, 8), m = decode(b, blen, y, 8);
    if (n != m) return 0;
    size_t i = 0;
    while (i < n && x[i] == y[i]) i++;
    if (i + 1 >= n || x[i] != y[i + 1] || x[i + 1] != y[i]) return 0;
    for (size_t k = i + 2; k < n; k++)
        if (x[k] != y[k]) return 0;
    return 1;
}

/* What matching unit u to word w costs, in quarters of a typo: 0 for the
 * same word, 1 for its plural (so the word itself wins a tie), 4 for each
 * edit if the word forgives typos and they are within what is allowed; -1
 * when it does not match. */
static int unit_distance(const pl_lexicon *lex, const text_unit *u, const word *w, int fuzzy, size_t *work) {
    const char *ws = lex->pool + w->off;
    if (u->len == w->len && memcmp(u->s, ws, w->len) == 0) return 0;
    if (u->kind != KIND_WORD || w->kind != KIND_WORD) return -1;
    if (is_plural(u, ws, w->len)) return 1;
    if (!fuzzy || u->ncp > PL_LEXICON_MAX_FUZZY_CPS || w->ncp > PL_LEXICON_MAX_FUZZY_CPS) return -1;
    if (u->ncp < 4) return -1;
    if (w->ncp == 4) return u->ncp == 4 && one_swap(u->s, u->len, ws, w->len) ? TYPO : -1;
    unsigned limit = pl_lexicon_allowed(w->ncp);
    if (!limit || !same_start(u->s, u->len, ws, w->len)) return -1;
    *work += 1 + (u->ncp * w->ncp) / 16; /* the table of the distance */
    unsigned d = pl_lexicon_distance(u->s, u->len, ws, w->len, limit);
    int cost = d <= limit ? TYPO * (int)d : -1;
    /* a typo in a plural ("cofees"): the singular's distance, when nearer */
    if (u->len > 4 && u->s[u->len - 1] == 's') {
        *work += 1 + (u->ncp * w->ncp) / 16;
        unsigned ds = pl_lexicon_distance(u->s, u->len - 1, ws, w->len, limit);
        if (ds <= limit && (cost < 0 || TYPO * (int)ds + 1 < cost)) cost = TYPO * (int)ds + 1;
    }
    return cost;
}

typedef struct {
    uint32_t count, distance, entry;
    int found;
} best_match;

static void consider(best_match *best, uint32_t count, uint32_t distance, uint32_t id) {
    if (best->found && (count < best->count || (count == best->count && (distance > best->distance ||
                        (distance == best->distance && id >= best->entry)))))
        return;
    *best = (best_match){count, distance, id, 1};
}

/* Tries every entry that starts with word w (u[0] matching it at cost d0,
 * in unit_distance's quarters) against the units from u on. */
static void try_entries(const pl_lexicon *lex, const word *w, unsigned d0, const text_unit *u, size_t left,
                        best_match *best, size_t *work) {
    for (uint32_t k = 0; k < w->nstarts && *work <= PL_LEXICON_MAX_WORK; k++) {
        uint32_t id = lex->start_list[w->starts + k];
        const entry *e = &lex->entries[id];
        (*work)++;
        if ((d0 >= TYPO && !e->fuzzy) || e->n > left) continue;
        unsigned total = d0;
        uint32_t i = 1;
        for (; i < e->n; i++) {
            (*work)++;
            int d = unit_distance(lex, &u[i], &lex->words[lex->seq[e->seq + i]], e->fuzzy, work);
            if (d < 0) break;
            total += (unsigned)d;
        }
        if (i == e->n) consider(best, e->n, total, id);
    }
}

/* The entries that may start at u[0]: through the word itself, its
 * singular, and the typo-tolerant words near its length. */
static void match_at(const pl_lexicon *lex, const text_unit *u, size_t left, best_match *best, size_t *work) {
    long exact = find_word(lex, u->s, u->len);
    if (exact >= 0) try_entries(lex, &lex->words[exact], 0, u, left, best, work);
    if (u->kind != KIND_WORD) return;
    for (size_t cut = 1; cut <= 2 && u->len > cut + 2; cut++) {
        long singular = find_word(lex, u->s, u->len - cut);
        if (singular >= 0 && is_plural(u, lex->pool + lex->words[singular].off, lex->words[singular].len))
            try_entries(lex, &lex->words[singular], 1, u, left, best, work);
    }
    if (u->ncp < 4 || u->ncp > PL_LEXICON_MAX_FUZZY_CPS) return;
    size_t lo = u->ncp - 2 < 4 ? 4 : u->ncp - 2;
    size_t hi = u->ncp + 2 > PL_LEXICON_MAX_FUZZY_CPS ? PL_LEXICON_MAX_FUZZY_CPS : u->ncp + 2;
    if (lo > hi) return;
    for (size_t i = lex->length_at[lo]; i < lex->length_at[hi + 1] && *work <= PL_LEXICON_MAX_WORK; i++) {
        const word *w = &lex->words[lex->by_length[i]];
        (*work)++;
        if ((long)lex->by_length[i] == exact) continue;
        int d = unit_distance(lex, u, w, 1, work);
        if (d >= TYPO) try_entries(lex, w, (unsigned)d, u, left, best, work);
    }
}

/* Every one-unit entry that unit u matches (exactly, as a plural, or with
 * a typo), to out (at most max); returns how many. */
static size_t words_at(const pl_lexicon *lex, const text_unit *u, pl_lexicon_span *out, size_t max, uint32_t at,
                       size_t *work) {
    size_t n = 0;
    size_t lo = u->ncp < 6 ? 4 : u->ncp - 2;
    size_t hi = u->ncp + 2 > PL_LEXICON_MAX_FUZZY_CPS ? PL_LEXICON_MAX_FUZZY_CPS : u->ncp + 2;
    long exact = find_word(lex, u->s, u->len);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: the word itself; pass 1: the typo-tolerant words near its length */
        size_t from = pass ? lex->length_at[lo] : 0, to = pass ? (lo <= hi ? lex->length_at[hi + 1] : from) : 1;
        if (pass == 0 && exact < 0) continue;
        if (pass == 1 && (u->kind != KIND_WORD || u->ncp < 4 || u->ncp > PL_LEXICON_MAX_FUZZY_CPS)) continue;
        for (size_t i = from; i < to && *work <= PL_LEXICON_MAX_WORK; i++) {
            uint32_t id = pass ? lex->by_length[i] : (uint32_t)exact;
            (*work)++;
            if (pass && (long)id == exact) continue;
            const word *w = &lex->words[id];
            int cost = pass ? unit_distance(lex, u, w, 1, work) : 0;
            if (cost < 0) continue;
            for (uint32_t k = 0; k < w->nstarts && n < max; k++) {
                const entry *e = &lex->entries[lex->start_list[w->starts + k]];
                if (e->n != 1 || (cost >= TYPO && !e->fuzzy)) continue;
                out[n++] = (pl_lexicon_span){at, 1, lex->start_list[w->starts + k], (uint32_t)cost};
            }
        }
    }
    return n;
}

size_t pl_lexicon_words(const pl_lexicon *lex, const char *folded, const pl_lexicon_units *units,
                        pl_lexicon_span *found, size_t max, size_t *work) {
    size_t n = 0;
    *work = 0;
    if (!lex->sealed || lex->failed) return 0;
    for (size_t i = 0; i < units->count && n < max && *work <= PL_LEXICON_MAX_WORK; i++) {
        size_t step;
        text_unit u = {folded + units->unit[i].start, units->unit[i].len, 0, 0};
        u.ncp = count_cps(u.s, u.len);
        u.kind = kind_of(cp_at(u.s, u.len, &step));
        (*work)++;
        n += words_at(lex, &u, found + n, max - n, (uint32_t)i, work);
        /* a plural: its singular's entries too */
        for (size_t cut = 1; cut <= 2 && u.kind == KIND_WORD && u.len > cut + 2 && n < max; cut++) {
            long singular = find_word(lex, u.s, u.len - cut);
            if (singular < 0 || !is_plural(&u, lex->pool + lex->words[singular].off, lex->words[singular].len)) continue;
            const word *w = &lex->words[singular];
            for (uint32_t k = 0; k < w->nstarts && n < max; k++)
                if (lex->entries[lex->start_list[w->starts + k]].n == 1)
                    found[n++] = (pl_lexicon_span){(uint32_t)i, 1, lex->start_list[w->starts + k], 1};
        }
    }
    for (size_t i = 0; i < n; i++) found[i].distance = (found[i].distance + TYPO - 1) / TYPO;
    return n;
}

size_t pl_lexicon_scan(const pl_lexicon *lex, const char *folded, const pl_lexicon_units *units,
                       pl_lexicon_span *spans, size_t max, size_t *work) {
    text_unit u[PL_LEXICON_MAX_UNITS];
    size_t n = units->count, found = 0;
    *work = 0;
    if (!lex->sealed || lex->failed) return 0;
    for (size_t i = 0; i < n; i++) {
        size_t step;
        u[i].s = folded + units->unit[i].start;
        u[i].len = units->unit[i].len;
        u[i].ncp = count_cps(u[i].s, u[i].len);
        u[i].kind = kind_of(cp_at(u[i].s, u[i].len, &step));
    }
    for (size_t i = 0; i < n && found < max && *work <= PL_LEXICON_MAX_WORK;) {
        best_match best = {0};
        (*work)++;
        match_at(lex, &u[i], n - i, &best, work);
        if (!best.found) {
            i++;
            continue;
        }
        spans[found++] = (pl_lexicon_span){(uint32_t)i, best.count, best.entry, best.distance / TYPO};
        i += best.count;
    }
    return found;
}
