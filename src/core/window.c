/*
 * window.c -- how many items a map may hold: the policy behind map.c's
 * window (map.c keeps the mechanism: slots, the input stage, refills).
 *
 * DESIGN.  A fixed window (an embedder's explicit size) is `cap` items,
 * always.  An adaptive one bounds what the results cost, not only how many
 * there are: the engine is told each finished result's size in bytes, and
 * keeps a moving average of it.  The limit aims at budget / average items,
 * within [floor, cap]:
 * - it shrinks at once when results turn large (a huge result must not
 *   let the next window's worth of huge results run ahead);
 * - it grows by doubling, at most once per limit's worth of results taken,
 *   so small results earn a large window (fewer refill hand-offs) and one
 *   small result among large ones does not swing it back; and only once
 *   a worker has found nothing to start since the last growth: while
 *   acquired items wait for the workers, a larger window would only pull
 *   more input ahead of them (input items, which the budget does not
 *   measure), so slow work over a fast input keeps the starting window;
 * - an adaptive window bounds what is read ahead of the workers too: the
 *   acquired items waiting to start never stand for much more than
 *   SF__READ_AHEAD_NS of the workers' work (by the measured item cost), so
 *   slow work over large input items (a file in 1 MiB chunks) holds a
 *   tenth of a second of them, not a window's worth: whatever the window
 *   grew to earlier, and in a process pool, whose window starts at its
 *   largest;
 * - whatever the average says, no item is acquired while the held results
 *   fill the budget (unless fewer than `floor` are), and no acquired item
 *   starts unless its result, at the average cost, fits in what is left
 *   of it: items acquired before their results were known to be large
 *   wait as input items, not as results.  With the budget full and nothing
 *   running, the consumer may still be waiting (in input order, for an
 *   item behind the results held): then one item starts, the oldest, which
 *   is the one it waits for, so waiting on the budget never deadlocks.
 * Called with map->mu held; no state of its own is shared.
 */
#include <stdint.h>

#include "window.h"

/* the weight of a new result in the average: 1/8, like map.c's item cost */
#define AVERAGE_WEIGHT 8.0

void sf__window_init(sf__window *w, size_t start, size_t floor, size_t cap, size_t budget)
{
    if (floor < 1)
        floor = 1;
    if (cap < floor)
        cap = floor;
    w->floor = floor;
    w->cap = cap;
    w->limit = start < floor ? floor : start > cap ? cap : start;
    w->budget = floor == cap ? 0 : budget;
    w->held_bytes = 0;
    w->avg_bytes = 0;
    w->taken_since_growth = 0;
    w->work_starved = 0;
}

/* The limit the average asks for, within [floor, cap]. */
static size_t target(const sf__window *w)
{
    if (!w->budget || w->avg_bytes <= 0)
        return w->cap;
    double items = (double)w->budget / w->avg_bytes;
    if (items <= (double)w->floor)
        return w->floor;
    if (items >= (double)w->cap)
        return w->cap;
    return (size_t)items;
}

/* base**n by squaring (n is at most a publish group) */
static double power(double base, size_t n)
{
    double result = 1;
    for (; n; n >>= 1, base *= base)
        if (n & 1)
            result *= base;
    return result;
}

void sf__window_results_held(sf__window *w, size_t bytes, size_t count)
{
    if (w->floor == w->cap || count == 0)
        return;
    w->held_bytes += bytes;
    /* `count` results of their mean size, each weighted as one alone */
    double mean = (double)bytes / (double)count;
    w->avg_bytes = w->avg_bytes > 0
                       ? w->avg_bytes + (mean - w->avg_bytes) *
                                            (1 - power(1 - 1 / AVERAGE_WEIGHT, count))
                       : mean;
    /* the limit shrinks only once budget / average falls below it */
    if (!w->budget || (double)w->budget >= w->avg_bytes * (double)w->limit)
        return;
    size_t want = target(w);
    if (want < w->limit)
        w->limit = want;
}

void sf__window_results_released(sf__window *w, size_t bytes, size_t count)
{
    if (w->floor == w->cap || count == 0)
        return;
    w->held_bytes = bytes < w->held_bytes ? w->held_bytes - bytes : 0;
    w->taken_since_growth += count;
    if (w->taken_since_growth < w->limit || !w->work_starved)
        return;
    w->taken_since_growth = 0;
    w->work_starved = 0;
    size_t want = target(w);
    if (want > w->limit)
        w->limit = want / 2 >= w->limit ? w->limit * 2 : want;
}

size_t sf__window_startable(const sf__window *w, size_t running, int consumer_starved)
{
    if (!w->budget)
        return SIZE_MAX;
    if (w->avg_bytes <= 0) /* nothing measured yet: the floor */
        return running < w->floor ? w->floor - running : 0;
    size_t left = w->held_bytes < w->budget ? w->budget - w->held_bytes : 0;
    double fits = (double)left / w->avg_bytes - (double)running;
    if (fits >= 1)
        return fits >= (double)SIZE_MAX ? SIZE_MAX : (size_t)fits;
    /* in input order the item the consumer waits for is the oldest not
     * finished: with nothing running, it is the first in line to start */
    return consumer_starved && running == 0;
}

void sf__window_work_starved(sf__window *w)
{
    w->work_starved = 1;
}

size_t sf__window_read_ahead(const sf__window *w, double item_ns, unsigned workers,
                             size_t at_least)
{
    if (w->floor == w->cap)
        return SIZE_MAX;
    if (item_ns <= 0) /* nothing measured yet: until something is */
        return at_least;
    double items = SF__READ_AHEAD_NS * (double)workers / item_ns;
    if (items >= (double)SIZE_MAX)
        return SIZE_MAX;
    return (size_t)items > at_least ? (size_t)items : at_least;
}

int sf__window_admits(const sf__window *w, size_t acquired)
{
    if (acquired >= w->limit)
        return 0;
    return acquired < w->floor || !w->budget || w->held_bytes < w->budget;
}
