/* check.h: the smallest test harness that will do — TAP lines on stdout.
 *   TEST(name) { CHECK(cond); CHECK_STR(a, b); }
 *   int main(void) { RUN(name); ...; return check_done(); } */
#ifndef PL_CHECK_H
#define PL_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_count, check_failed, check_case_failed;

#define TEST(name) static void test_##name(void)

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);       \
            check_case_failed = 1;                                                   \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                              \
    do {                                                                             \
        const char *check_a_ = (a), *check_b_ = (b);                                 \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {             \
            printf("#   %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,                \
                   check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");  \
            check_case_failed = 1;                                                   \
        }                                                                            \
    } while (0)

#define RUN(name) RUN_AS(#name, name)

/* Runs case name under another label (a case run once per backend). */
#define RUN_AS(label, name)                                                          \
    do {                                                                             \
        check_case_failed = 0;                                                       \
        test_##name();                                                               \
        check_count++;                                                               \
        if (check_case_failed) check_failed++;                                       \
        printf("%s %d - %s\n", check_case_failed ? "not ok" : "ok", check_count, label); \
    } while (0)

static inline int check_done(void) {
    printf("1..%d\n", check_count);
    /* LeakSanitizer reports at exit and leaves with _exit, which would
     * drop what is still buffered when stdout is a file (tests/run.sh) */
    fflush(stdout);
    return check_failed ? 1 : 0;
}

#endif
