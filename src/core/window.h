/* window.h -- the adaptive window's sizing policy (window.c), used by
 * map.c; never seen by embedders. */
#ifndef SF_WINDOW_H
#define SF_WINDOW_H

#include <stddef.h>

typedef struct sf__window {
    size_t limit;        /* items that may be acquired and not yet taken, now */
    size_t floor, cap;   /* limit's range; floor == cap: a fixed window */
    size_t budget;       /* bytes of finished results held; 0: no byte rule */
    size_t held_bytes;   /* finished results not yet taken, in bytes */
    double avg_bytes;    /* moving average of one result's cost */
    size_t taken_since_growth;
    int work_starved;    /* the workers ran out of input since the last growth */
} sf__window;

/* A fixed window of `items` when floor == cap; else adaptive in
 * [floor, cap], starting at `start`. */
void sf__window_init(sf__window *w, size_t start, size_t floor, size_t cap, size_t budget);
/* `count` results of `bytes` in all are held for the consumer. */
void sf__window_results_held(sf__window *w, size_t bytes, size_t count);
/* `count` held results of `bytes` in all were taken (or discarded). */
void sf__window_results_released(sf__window *w, size_t bytes, size_t count);
/* A worker found no acquired item to start while more input may come: the
 * window, not the work, may be what holds the map back, so it may grow. */
void sf__window_work_starved(sf__window *w);
/* How many acquired items may wait for the workers to start them: about
 * SF__READ_AHEAD_NS of their work at item_ns per item on each of `workers`,
 * and never fewer than `at_least` (only those while no item cost is
 * known); SIZE_MAX for a fixed window (its size is the embedder's). */
#define SF__READ_AHEAD_NS 100000000.0
size_t sf__window_read_ahead(const sf__window *w, double item_ns, unsigned workers,
                             size_t at_least);
/* 1 when one more item may be acquired while `acquired` are. */
int sf__window_admits(const sf__window *w, size_t acquired);
/* How many more items may start while `running` are: as many as the
 * budget left holds at the average result's cost (floor while nothing is
 * measured); with the budget full, one when nothing runs and the consumer
 * has nothing to take (so it never waits on the budget forever).
 * SIZE_MAX without a byte rule. */
size_t sf__window_startable(const sf__window *w, size_t running, int consumer_starved);

#endif
