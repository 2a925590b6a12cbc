/* test.h -- a tiny test runner: TEST(name) { ... } registers a test; CHECK
 * fails it with the file and line.  The runner prints "N passed, N failed". */
#ifndef SF_TEST_H
#define SF_TEST_H
#include <stdio.h>
#include <stdlib.h>

typedef void (*test_fn)(int *failed);
void test_register(const char *name, test_fn fn);

#define TEST(name)                                                            \
    static void test_##name(int *failed_);                                    \
    __attribute__((constructor)) static void register_##name(void)            \
    {                                                                         \
        test_register(#name, test_##name);                                    \
    }                                                                         \
    static void test_##name(int *failed_)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                   \
            *failed_ = 1;                                                     \
            return;                                                           \
        }                                                                     \
    } while (0)

#define CHECK_EQ(a, b)                                                        \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_) {                                                       \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n",     \
                    __FILE__, __LINE__, #a, a_, #b, b_);                      \
            *failed_ = 1;                                                     \
            return;                                                           \
        }                                                                     \
    } while (0)
#endif
