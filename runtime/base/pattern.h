/* pattern: Lua 5.4 pattern matching (reference manual §6.4.1) whose work is
 * counted, so that a script's pattern cannot hold the loop for longer than
 * its run's budget allows. Plain C: pattern_lua.c is its Lua binding.
 *
 * The results are those of Lua's own matcher, errors and their messages
 * included, and so is the order in which alternatives are tried. The
 * difference is how it runs: Lua's matcher recurses in C for every
 * quantifier and capture (up to 200 calls deep) and cannot be interrupted;
 * this one keeps those 200 levels in a fixed array of frames inside
 * pl_pattern (no recursion, no allocation), counts its steps, and every
 * PL_PATTERN_CHARGE_EVERY steps asks the charge callback whether it may go
 * on. When it may not, the match returns PL_PATTERN_OVER at once and there
 * is nothing to free.
 *
 * A step is the matcher looking at one byte of the subject (one attempt of
 * a single-character class, a byte scanned by %b, a few bytes compared by a
 * back-reference) or taking one backtracking decision, plus a share of the
 * pattern bytes that long sets cost to scan. */
#ifndef PL_PATTERN_H
#define PL_PATTERN_H

#include <stddef.h>

#define PL_PATTERN_MAX_CAPTURES 32
/* Lua's matcher nests at most 200 calls (MAXCCALLS in lstrlib.c): the first
 * is the attempt itself, each frame here is one more. */
#define PL_PATTERN_MAX_DEPTH 200
#define PL_PATTERN_CHARGE_EVERY 4096

/* Capture lengths that are not lengths. */
#define PL_PATTERN_CAP_UNFINISHED (-1)
#define PL_PATTERN_CAP_POSITION (-2)

/* A match has four outcomes, so these are not PL_OK / PL_ERR. */
enum {
    PL_PATTERN_NO = 0,     /* no match */
    PL_PATTERN_YES = 1,    /* a match */
    PL_PATTERN_ERROR = -1, /* a malformed pattern: see pl_pattern_error */
    PL_PATTERN_OVER = -2,  /* the charge callback said stop */
};

/* Charges `steps` steps of work; returns 1 to go on, 0 to stop. */
typedef int (*pl_pattern_charge_fn)(void *ctx, long steps);

typedef struct {
    const char *init;
    ptrdiff_t len; /* or PL_PATTERN_CAP_UNFINISHED / _POSITION */
} pl_pattern_capture;

/* One level of backtracking: what to try next when what follows fails. */
typedef struct {
    const char *s;   /* subject position the level is about */
    const char *p;   /* its single-character class ... */
    const char *ep;  /* ... and the end of the class (the quantifier) */
    size_t n;        /* greedy: repetitions still to give back; close: the capture */
    int kind;
} pl_pattern_frame;

/* The state of matching one pattern against one subject. It lives where
 * the caller puts it (on the C stack is fine: about 8 KB) and holds no
 * resources; the fields are the matcher's own except `level` and
 * `capture`, which hold the captures of the last match. */
typedef struct {
    const char *src, *src_end; /* the subject (borrowed) */
    const char *pat, *pat_end; /* the pattern (borrowed), without the anchor */
    int level;                 /* captures opened */
    pl_pattern_capture capture[PL_PATTERN_MAX_CAPTURES];
    int depth;                 /* frames in use */
    long fuel;                 /* steps left before the next charge */
    int status;                /* why the last attempt stopped: _ERROR or _OVER */
    pl_pattern_charge_fn charge;
    void *charge_ctx;
    char error[64];
    pl_pattern_frame frame[PL_PATTERN_MAX_DEPTH - 1];
} pl_pattern;

/* Prepares m to match pattern[0..plen) (without a leading '^' anchor: the
 * caller takes it off and says so to pl_pattern_find) against
 * subject[0..len). Both stay borrowed while m is used. charge may be NULL:
 * then the work is not counted. */
void pl_pattern_init(pl_pattern *m, const char *subject, size_t len, const char *pattern, size_t plen,
                     pl_pattern_charge_fn charge, void *charge_ctx);

/* Finds the first match starting at an offset from `from` (<= len) on, or
 * only at `from` when anchored; on PL_PATTERN_YES sets *start and *end
 * (offsets: the match is subject[*start..*end)) and the captures. */
int pl_pattern_find(pl_pattern *m, size_t from, int anchored, size_t *start, size_t *end);

/* Finds the pattern's bytes taken as they are (a plain string.find) at an
 * offset from `from` (<= len) on. Counted too: a step for each place where
 * the first byte occurs, and one for every 64 bytes gone through. */
int pl_pattern_find_plain(pl_pattern *m, size_t from, size_t *start, size_t *end);

/* Counts work that the caller does with a match as steps of the matcher
 * (string.gsub building a replacement); 0 when the charge callback says
 * stop. */
int pl_pattern_count(pl_pattern *m, long steps);

/* The steps counted since the last charge (fewer than
 * PL_PATTERN_CHARGE_EVERY), which the caller charges once the matching is
 * done; the count starts again from zero. */
long pl_pattern_take_uncharged(pl_pattern *m);

/* Capture i (0-based) of the match subject[start..end) as Lua hands it
 * out: with no captures, capture 0 is the whole match. Returns
 * PL_PATTERN_YES with *out set (len PL_PATTERN_CAP_POSITION for a
 * position capture), or PL_PATTERN_ERROR for an unfinished capture or an
 * index past the captures. */
int pl_pattern_get_capture(pl_pattern *m, int i, size_t start, size_t end, pl_pattern_capture *out);

/* The message of the last PL_PATTERN_ERROR, worded as Lua's. */
const char *pl_pattern_error(const pl_pattern *m);

/* Whether pattern[0..len) holds none of the characters that make a pattern
 * more than a plain string ("^$*+?.([%-"), so string.find may search it as is. */
int pl_pattern_is_plain(const char *pattern, size_t len);

#endif
