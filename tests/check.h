/* check.h: the assertion of the C test programs. CHECK(cond, fmt, ...) prints the failed
 * condition with its file, line and a message, counts it in `failures` and goes on, so one
 * run reports every failure; main ends with `return failures != 0` or similar.
 * Header-only: included once by each test program. */
#ifndef GENRED_TESTS_CHECK_H
#define GENRED_TESTS_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                       \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#endif
