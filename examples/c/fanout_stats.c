/*
 * fanout_stats.c -- seed 003 in plain C: one input, read once, consumed
 * whole by several threads at the same time, in bounded memory.
 *
 * Reads one integer per line from stdin and computes, on four threads at
 * once, the count, the sum, the minimum and the maximum.  Each thread is a
 * reader of one sf_ring; the input is never more than CAPACITY lines ahead
 * of the slowest, so it runs in constant memory on an endless input:
 *
 *     seq 1 1000000 | ./build/example_fanout_stats -b 256
 *
 * DESIGN.  No producer thread: whichever reader has read everything pulls
 * the next line itself (the ring lets one reader at a time do so), so
 * pull (getline) needs no lock of its own.  Items are the numbers
 * themselves, stored in the pointer, so there is nothing to free.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "streamfutures.h"

static enum sf_pull read_number(void *ctx, void **item)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, (FILE *)ctx);
    if (got < 0) {
        free(line);
        return SF_PULL_END;
    }
    *item = (void *)(intptr_t)strtoll(line, NULL, 10);
    free(line);
    return SF_PULL_ITEM;
}

enum statistic { COUNT, SUM, MIN, MAX, STATISTICS };
static const char *const names[STATISTICS] = {"count", "sum", "min", "max"};

typedef struct consumer {
    sf_ring *ring;
    enum statistic which;
    long long value;
} consumer;

static void *consume(void *arg)
{
    consumer *c = arg;
    void *item;
    long long value = c->which == MIN ? INT64_MAX : c->which == MAX ? INT64_MIN : 0;
    while (sf_ring_next(c->ring, c->which, &item, -1) == SF_RESULT) {
        long long x = (intptr_t)item;
        switch (c->which) {
        case COUNT: value += 1; break;
        case SUM: value += x; break;
        case MIN: value = x < value ? x : value; break;
        default: value = x > value ? x : value; break;
        }
    }
    c->value = value;
    sf_ring_close_reader(c->ring, c->which);
    return NULL;
}

int main(int argc, char **argv)
{
    size_t capacity = 1024;
    int opt;
    while ((opt = getopt(argc, argv, "b:")) != -1) {
        if (opt != 'b' || (capacity = strtoul(optarg, NULL, 10)) == 0) {
            fprintf(stderr, "usage: %s [-b capacity] < numbers\n", argv[0]);
            return 2;
        }
    }
    sf_ring *ring;
    const sf_ring_ops ops = {.pull = read_number};
    if (sf_ring_create(&ring, STATISTICS, capacity, &ops, stdin) != 0) {
        fprintf(stderr, "cannot create the ring\n");
        return 1;
    }
    consumer consumers[STATISTICS];
    pthread_t threads[STATISTICS];
    for (int i = 0; i < STATISTICS; i++) {
        consumers[i] = (consumer){.ring = ring, .which = (enum statistic)i};
        pthread_create(&threads[i], NULL, consume, &consumers[i]);
    }
    for (int i = 0; i < STATISTICS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < STATISTICS; i++)
        printf("%s%s=%lld", i ? " " : "", names[i], consumers[i].value);
    printf("\n");
    return 0;
}
