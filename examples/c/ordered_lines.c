/*
 * ordered_lines.c -- the streamfutures engine from plain C.
 *
 * Reads lines from stdin, transforms each on a pool of worker threads
 * (upper-cases it, optionally after a per-line delay to stand in for real
 * work), and prints the results in input order.  At most WINDOW lines are
 * read and not yet printed at any time, so it runs in constant memory on
 * an endless input:
 *
 *     yes hello | head -n 100000 | ./build/example_ordered_lines -j 4 -w 64
 *     ./build/example_ordered_lines -j 8 -d 2000 < file.txt    # 2 ms per line
 *
 * DESIGN.  pull (getline) runs on the engine's input thread, work on its
 * workers, and main() is the consumer: exactly the three stages of a
 * Python Executor.map.  No locks here: the engine calls pull serially and
 * hands each line to exactly one worker.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "streamfutures.h"

typedef struct line_source {
    FILE *in;
    unsigned delay_us;
} line_source;

static enum sf_pull read_line(void *ctx, void **item)
{
    line_source *src = ctx;
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, src->in) < 0) {
        free(line);
        return SF_PULL_END;
    }
    *item = line;
    return SF_PULL_ITEM;
}

static int shout(void *ctx, void **value)
{
    line_source *src = ctx;
    char *line = *value;
    if (src->delay_us)
        usleep(src->delay_us);
    for (char *c = line; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return 0; /* the line is its own result */
}

static void free_line(void *ctx, void *value)
{
    (void)ctx;
    free(value);
}

int main(int argc, char **argv)
{
    unsigned threads = 4, delay_us = 0;
    size_t window = 64;
    int opt;
    while ((opt = getopt(argc, argv, "j:w:d:")) != -1) {
        if (opt == 'j')
            threads = (unsigned)atoi(optarg);
        else if (opt == 'w')
            window = (size_t)atol(optarg);
        else if (opt == 'd')
            delay_us = (unsigned)atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-j threads] [-w window] [-d delay_us] < input\n",
                    argv[0]);
            return 2;
        }
    }

    sf_pool *pool;
    sf_pool_options pool_options = {.max_threads = threads ? threads : 1};
    int rc = sf_pool_create(&pool, &pool_options);
    if (rc != 0) {
        fprintf(stderr, "sf_pool_create: %s\n", strerror(-rc));
        return 1;
    }
    line_source src = {stdin, delay_us};
    sf_map_ops ops = {.pull = read_line, .work = shout, .discard = free_line};
    sf_map_options map_options = {.window = window ? window : 1};
    sf_map *map;
    rc = sf_map_create(&map, pool, &ops, &src, &map_options);
    if (rc != 0) {
        fprintf(stderr, "sf_map_create: %s\n", strerror(-rc));
        sf_pool_destroy(pool);
        return 1;
    }

    void *value;
    while ((rc = sf_map_next(map, &value, -1)) == SF_RESULT) {
        fputs(value, stdout);
        free(value);
    }
    sf_map_close(map);
    sf_pool_destroy(pool);
    return rc == SF_END ? 0 : 1;
}
