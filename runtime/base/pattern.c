/* pattern: Lua 5.4 patterns with counted work; see pattern.h.
 * Owns the matching machine. An attempt walks the pattern item by item at
 * a subject position; where an item leaves something to try later (x?, x*,
 * x+, x-, and the captures, which must be undone), it pushes a frame, and a
 * failure pops frames until one offers an alternative. The frames are
 * exactly the levels of C recursion of Lua's own matcher, in the same
 * order, which is what makes the results (and "pattern too complex") the
 * same. Character classes use <ctype.h>, as Lua's do. */
#include "pattern.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ESC '%'

/* Pattern bytes of a set that cost one step to scan (a shift): testing a
 * byte against "[%w_%-]" is one step, against a set of 400 bytes 100. */
#define SET_BYTES_SHIFT 2
/* Bytes that memchr or memcmp go through in a step (a shift): they run
 * far faster per byte than the matcher (back-references, plain finds). */
#define SCAN_BYTES_SHIFT 6

/* What trying one item (or backtracking) leads to. */
enum { GO, FAIL, DONE, STOP };

/* The kinds of frame: what one level of backtracking undoes or tries next. */
enum {
    OPENED,   /* a capture was opened: forget it */
    CLOSED,   /* capture n was closed: open it again */
    OPTIONAL, /* x? took its x: go on from s without it */
    GREEDY,   /* x* or x+ took n x more than it needs: give one back */
    LAZY,     /* x- took as few as it could: take one more x at s */
};

/* --- budget and errors -------------------------------------------------- */

/* Charges what was counted since the last charge and refills the fuel. */
static int refuel(pl_pattern *m) {
    long used = PL_PATTERN_CHARGE_EVERY - m->fuel;
    m->fuel = PL_PATTERN_CHARGE_EVERY;
    if (used > 0 && m->charge && !m->charge(m->charge_ctx, used)) {
        m->status = PL_PATTERN_OVER;
        return 0;
    }
    return 1;
}

/* Counts n steps; 0 when the matcher must stop (the budget is gone). */
static inline int spend(pl_pattern *m, long n) {
    m->fuel -= n;
    return m->fuel >= 0 || refuel(m);
}

/* Stops the match with an error (a malformed pattern, too deep, a bad
 * capture index ...) worded as Lua words it; returns STOP. */
__attribute__((format(printf, 2, 3))) static int pattern_error(pl_pattern *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    m->status = PL_PATTERN_ERROR;
    return STOP;
}

/* --- single-character classes -------------------------------------------- */

/* Whether byte c is in the class %cl: one of the manual's letters, whose
 * upper case is the complement; any other cl stands for itself. */
static int in_class(int c, int cl) {
    int yes;
    switch (cl) {
    case 'a': case 'A': yes = isalpha(c); break;
    case 'c': case 'C': yes = iscntrl(c); break;
    case 'd': case 'D': yes = isdigit(c); break;
    case 'g': case 'G': yes = isgraph(c); break;
    case 'l': case 'L': yes = islower(c); break;
    case 'p': case 'P': yes = ispunct(c); break;
    case 's': case 'S': yes = isspace(c); break;
    case 'u': case 'U': yes = isupper(c); break;
    case 'w': case 'W': yes = isalnum(c); break;
    case 'x': case 'X': yes = isxdigit(c); break;
    case 'z': case 'Z': yes = c == 0; break; /* gone from the manual since 5.2, still in Lua 5.4 */
    default: return cl == c;
    }
    return cl <= 'Z' ? !yes : yes != 0;
}

/* Whether byte c is in the set that opens with the '[' at p and closes
 * with the ']' at close. A '^' after the '[' complements it; "x-y" is a
 * range unless the '-' is the set's last byte; %x is a class. */
static int in_set(int c, const char *p, const char *close) {
    int hit = 1;
    p++;
    if (*p == '^') {
        hit = 0;
        p++;
    }
    for (; p < close; p++) {
        unsigned char b = (unsigned char)*p;
        if (b == ESC) {
            p++;
            if (in_class(c, (unsigned char)*p)) return hit;
        } else if (p + 2 < close && p[1] == '-') {
            if (b <= c && c <= (unsigned char)p[2]) return hit;
            p += 2;
        } else if (b == c) {
            return hit;
        }
    }
    return !hit;
}

/* The end of the single-character class that starts at p (where a
 * quantifier would be), or NULL with m->status set when it is malformed
 * or the budget is gone (finding the end of a set is work too). */
static const char *class_end(pl_pattern *m, const char *p) {
    const char *end = m->pat_end;
    if (*p == ESC) {
        if (p + 1 >= end) {
            pattern_error(m, "malformed pattern (ends with '%%')");
            return NULL;
        }
        return p + 2;
    }
    if (*p != '[') return p + 1;
    const char *first = ++p;
    if (first < end && *first == '^') first++;
    /* The set's first byte never closes it ("[]]" holds ']'), and an
     * escaped byte never does ("[%]]" holds ']' too). */
    for (p = first; p < end; p += (*p == ESC && p + 1 < end) ? 2 : 1)
        if (*p == ']' && p > first) break;
    if (!spend(m, (p - first) >> SET_BYTES_SHIFT)) return NULL;
    if (p < end) return p + 1;
    pattern_error(m, "malformed pattern (missing ']')");
    return NULL;
}

/* Steps that testing one byte against the class [p, ep) costs. */
static inline long class_cost(const char *p, const char *ep) {
    return *p == '[' ? 1 + ((ep - p) >> SET_BYTES_SHIFT) : 1;
}

/* Whether the subject byte at s exists and is in the class [p, ep). */
static inline int single(const pl_pattern *m, const char *s, const char *p, const char *ep) {
    if (s >= m->src_end) return 0;
    int c = (unsigned char)*s;
    switch (*p) {
    case '.': return 1;
    case ESC: return in_class(c, (unsigned char)p[1]);
    case '[': return in_set(c, p, ep - 1);
    default: return (unsigned char)*p == c;
    }
}

/* --- frames ------------------------------------------------------------------ */

/* Pushes a level of backtracking; STOP past Lua's nesting limit. */
static inline int push(pl_pattern *m, int kind, const char *s, const char *p, const char *ep, size_t n) {
    if (m->depth == PL_PATTERN_MAX_DEPTH - 1) return pattern_error(m, "pattern too complex");
    pl_pattern_frame *f = &m->frame[m->depth++];
    f->kind = kind;
    f->s = s;
    f->p = p;
    f->ep = ep;
    f->n = n;
    return spend(m, 1) ? GO : STOP;
}

/* After a failure: pops frames until one has an alternative and sets *s
 * and *p to it (GO); FAIL when none has, STOP when the budget is gone. */
static int backtrack(pl_pattern *m, const char **s, const char **p) {
    while (m->depth > 0) {
        pl_pattern_frame *f = &m->frame[m->depth - 1];
        if (!spend(m, 1)) return STOP;
        switch (f->kind) {
        case OPENED: m->level--; break;
        case CLOSED: m->capture[f->n].len = PL_PATTERN_CAP_UNFINISHED; break;
        case OPTIONAL:
            m->depth--;
            *s = f->s;
            *p = f->ep + 1;
            return GO;
        case GREEDY:
            if (f->n == 0) break;
            *s = f->s + --f->n;
            *p = f->ep + 1;
            return GO;
        case LAZY:
            if (!spend(m, class_cost(f->p, f->ep))) return STOP;
            if (!single(m, f->s, f->p, f->ep)) break;
            *s = ++f->s;
            *p = f->ep + 1;
            return GO;
        }
        m->depth--;
    }
    return FAIL;
}

/* --- items ------------------------------------------------------------------- */

/* x* or x+ (plus) whose first x matched at *s: takes as many x as there
 * are, and leaves a frame to give them back one by one. */
static int greedy(pl_pattern *m, const char **s, const char **p, const char *ep, int plus) {
    const char *from = *s + plus;
    size_t n = 0;
    if (**p == '.') { /* every byte is an x: no need to look at them */
        n = (size_t)(m->src_end - from);
        if (!spend(m, (long)n)) return STOP;
    } else {
        long cost = class_cost(*p, ep);
        while (single(m, from + n, *p, ep)) {
            if (!spend(m, cost)) return STOP;
            n++;
        }
    }
    if (push(m, GREEDY, from, *p, ep, n) != GO) return STOP;
    *s = from + n;
    *p = ep + 1;
    return GO;
}

/* A single-character class at *p, with the quantifier that may follow it. */
static int item(pl_pattern *m, const char **s, const char **p) {
    const char *ep = class_end(m, *p);
    if (!ep) return STOP;
    int quantifier = ep < m->pat_end ? *ep : 0;
    if (!spend(m, class_cost(*p, ep))) return STOP;
    if (!single(m, *s, *p, ep)) {
        if (quantifier != '*' && quantifier != '?' && quantifier != '-') return FAIL;
        *p = ep + 1; /* zero x will do */
        return GO;
    }
    switch (quantifier) {
    case '?':
        if (push(m, OPTIONAL, *s, *p, ep, 0) != GO) return STOP;
        (*s)++;
        *p = ep + 1;
        return GO;
    case '*':
    case '+': return greedy(m, s, p, ep, quantifier == '+');
    case '-':
        if (push(m, LAZY, *s, *p, ep, 0) != GO) return STOP;
        *p = ep + 1;
        return GO;
    default:
        (*s)++;
        *p = ep;
        return GO;
    }
}

/* '(' opens a capture, "()" captures the position. */
static int open_capture(pl_pattern *m, const char *s, const char **p) {
    if (m->level >= PL_PATTERN_MAX_CAPTURES) return pattern_error(m, "too many captures");
    int position = *p + 1 < m->pat_end && (*p)[1] == ')';
    m->capture[m->level].init = s;
    m->capture[m->level].len = position ? PL_PATTERN_CAP_POSITION : PL_PATTERN_CAP_UNFINISHED;
    m->level++;
    if (push(m, OPENED, s, NULL, NULL, 0) != GO) return STOP;
    *p += position ? 2 : 1;
    return GO;
}

/* ')' closes the innermost capture still open. */
static int close_capture(pl_pattern *m, const char *s, const char **p) {
    int l = m->level - 1;
    while (l >= 0 && m->capture[l].len != PL_PATTERN_CAP_UNFINISHED) l--;
    if (l < 0) return pattern_error(m, "invalid pattern capture");
    m->capture[l].len = s - m->capture[l].init;
    if (push(m, CLOSED, s, NULL, NULL, (size_t)l) != GO) return STOP;
    *p += 1;
    return GO;
}

/* %bxy: from an x to the y that balances it. */
static int balance(pl_pattern *m, const char **s, const char **p) {
    const char *xy = *p + 2;
    if (xy + 1 >= m->pat_end) return pattern_error(m, "malformed pattern (missing arguments to '%%b')");
    const char *t = *s;
    if (t >= m->src_end || *t != xy[0]) return FAIL;
    size_t open = 1;
    while (++t < m->src_end) {
        if (!spend(m, 1)) return STOP;
        if (*t == xy[1]) {
            if (--open > 0) continue;
            *s = t + 1;
            *p += 4;
            return GO;
        }
        if (*t == xy[0]) open++;
    }
    return FAIL;
}

/* %f[set]: between a byte not in the set and one in it (the subject's
 * ends count as '\0'). */
static int frontier(pl_pattern *m, const char **s, const char **p) {
    const char *set = *p + 2;
    if (set >= m->pat_end || *set != '[') return pattern_error(m, "missing '[' after '%%f' in pattern");
    const char *ep = class_end(m, set);
    if (!ep) return STOP;
    if (!spend(m, 2 * class_cost(set, ep))) return STOP;
    int before = *s > m->src ? (unsigned char)(*s)[-1] : 0;
    int at = *s < m->src_end ? (unsigned char)**s : 0;
    if (in_set(before, set, ep - 1) || !in_set(at, set, ep - 1)) return FAIL;
    *p = ep;
    return GO;
}

/* %1 to %9: the text of a closed capture again (a position capture never
 * matches: Lua compares its length of -2 as a huge size). */
static int back_reference(pl_pattern *m, const char **s, const char **p) {
    int l = (*p)[1] - '1';
    if (l < 0 || l >= m->level || m->capture[l].len == PL_PATTERN_CAP_UNFINISHED)
        return pattern_error(m, "invalid capture index %%%d", l + 1);
    ptrdiff_t len = m->capture[l].len;
    if (len == PL_PATTERN_CAP_POSITION || m->src_end - *s < len) return FAIL;
    if (!spend(m, 1 + (len >> SCAN_BYTES_SHIFT))) return STOP;
    if (memcmp(m->capture[l].init, *s, (size_t)len) != 0) return FAIL;
    *s += len;
    *p += 2;
    return GO;
}

/* Tries the pattern item at *p against the subject at *s; on GO both have
 * moved past what matched. DONE at the pattern's end (or its final '$'). */
static int advance(pl_pattern *m, const char **s, const char **p) {
    const char *q = *p;
    if (q == m->pat_end) return DONE;
    switch (*q) {
    case '(': return open_capture(m, *s, p);
    case ')': return close_capture(m, *s, p);
    case '$':
        if (q + 1 == m->pat_end) return *s == m->src_end ? DONE : FAIL;
        break; /* elsewhere a '$' is itself */
    case ESC:
        if (q + 1 == m->pat_end) break; /* class_end reports it */
        if (q[1] == 'b') return balance(m, s, p);
        if (q[1] == 'f') return frontier(m, s, p);
        if (q[1] >= '0' && q[1] <= '9') return back_reference(m, s, p);
        break;
    }
    return item(m, s, p);
}

/* One attempt at s: PL_PATTERN_YES with *end set, _NO, or why it stopped. */
static int attempt(pl_pattern *m, const char *s, const char **end) {
    const char *p = m->pat;
    m->level = 0;
    m->depth = 0;
    if (!spend(m, 1)) return m->status;
    for (;;) {
        int r = advance(m, &s, &p);
        if (r == FAIL) r = backtrack(m, &s, &p);
        if (r == GO) continue;
        if (r == DONE) {
            *end = s;
            return PL_PATTERN_YES;
        }
        return r == FAIL ? PL_PATTERN_NO : m->status;
    }
}

/* --- the public face --------------------------------------------------------- */

void pl_pattern_init(pl_pattern *m, const char *subject, size_t len, const char *pattern, size_t plen,
                     pl_pattern_charge_fn charge, void *charge_ctx) {
    m->src = subject;
    m->src_end = subject + len;
    m->pat = pattern;
    m->pat_end = pattern + plen;
    m->level = 0;
    m->depth = 0;
    m->fuel = PL_PATTERN_CHARGE_EVERY;
    m->status = PL_PATTERN_NO;
    m->charge = charge;
    m->charge_ctx = charge_ctx;
    m->error[0] = '\0';
}

int pl_pattern_find(pl_pattern *m, size_t from, int anchored, size_t *start, size_t *end) {
    for (const char *s = m->src + from;; s++) {
        const char *e = NULL;
        int r = attempt(m, s, &e);
        if (r == PL_PATTERN_YES) {
            *start = (size_t)(s - m->src);
            *end = (size_t)(e - m->src);
        }
        if (r != PL_PATTERN_NO || anchored || s >= m->src_end) return r;
    }
}

int pl_pattern_find_plain(pl_pattern *m, size_t from, size_t *start, size_t *end) {
    size_t n = (size_t)(m->pat_end - m->pat);
    const char *s = m->src + from;
    if (n > (size_t)(m->src_end - s)) return PL_PATTERN_NO;
    const char *last = m->src_end - n; /* the last place where it fits */
    const char *hit = s;
    while (n > 0) {
        hit = memchr(s, m->pat[0], (size_t)(last - s) + 1);
        size_t gone = (size_t)((hit ? hit : last) - s) + n;
        if (!spend(m, 1 + (long)(gone >> SCAN_BYTES_SHIFT))) return m->status;
        if (!hit) return PL_PATTERN_NO;
        if (memcmp(hit + 1, m->pat + 1, n - 1) == 0) break;
        if (hit == last) return PL_PATTERN_NO;
        s = hit + 1;
    }
    *start = (size_t)(hit - m->src);
    *end = *start + n;
    return PL_PATTERN_YES;
}

int pl_pattern_count(pl_pattern *m, long steps) { return spend(m, steps); }

long pl_pattern_take_uncharged(pl_pattern *m) {
    long used = PL_PATTERN_CHARGE_EVERY - m->fuel;
    m->fuel = PL_PATTERN_CHARGE_EVERY;
    return used;
}

int pl_pattern_get_capture(pl_pattern *m, int i, size_t start, size_t end, pl_pattern_capture *out) {
    if (i >= m->level) {
        if (i != 0) {
            pattern_error(m, "invalid capture index %%%d", i + 1);
            return PL_PATTERN_ERROR;
        }
        out->init = m->src + start;
        out->len = (ptrdiff_t)(end - start);
        return PL_PATTERN_YES;
    }
    *out = m->capture[i];
    if (out->len != PL_PATTERN_CAP_UNFINISHED) return PL_PATTERN_YES;
    pattern_error(m, "unfinished capture");
    return PL_PATTERN_ERROR;
}

const char *pl_pattern_error(const pl_pattern *m) { return m->error; }

int pl_pattern_is_plain(const char *pattern, size_t len) {
    for (size_t i = 0; i < len; i++) {
        switch (pattern[i]) {
        case '^': case '$': case '*': case '+': case '?': case '.': case '(': case '[': case '%': case '-':
            return 0;
        }
    }
    return 1;
}
