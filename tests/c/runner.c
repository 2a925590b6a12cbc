/* runner.c -- runs every registered test (or those named on the command
 * line) in registration order and prints "N passed, N failed" last. */
#include <string.h>

#include "test.h"

#define MAX_TESTS 128
static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;

void test_register(const char *name, test_fn fn)
{
    if (ntests == MAX_TESTS)
        abort();
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, i, j;
    for (i = 0; i < ntests; i++) {
        int selected = argc < 2, bad = 0;
        for (j = 1; j < argc; j++)
            selected |= strcmp(argv[j], tests[i].name) == 0;
        if (!selected)
            continue;
        tests[i].fn(&bad);
        printf("%s %s\n", bad ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        if (bad)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
