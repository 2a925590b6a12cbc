/*
 * streamfutures.h -- the public C API of the streamfutures engine: the
 * worker pool and the lazy, bounded map.  Worker processes are in
 * streamfutures_proc.h (Linux only).
 *
 * Three objects:
 *   sf_pool  a set of worker threads (at most max_threads) that run jobs,
 *            plus input threads that run the serial input stage of maps.
 *   sf_map   a lazy, bounded map over a pull-style input: the engine pulls
 *            items on an input thread while fewer than `window` items are
 *            acquired and not yet taken by the consumer, runs the work on
 *            the pool's workers, and hands results back in input order (or
 *            in completion order).
 *   sf_ring  a broadcast ring: one input read once by several readers,
 *            each of which sees every item, in bounded memory (fan-out, tee).
 *
 * Every callback the engine makes (sf_job.run/drop, sf_map_ops.*) runs with
 * no engine lock held, on an engine thread between the attach/detach hooks,
 * or on the thread that called the sf_* function that triggered it.  That
 * is what lets an embedding runtime with a global lock (CPython) use it.
 *
 * Errors are 0 or a negative errno value.  All functions are thread-safe
 * unless stated otherwise.  After fork(), objects made in the parent are
 * inert in the child: they refuse work with -ECHILD and free nothing.
 *
 * Requirements: C11, POSIX threads, and Linux (threads sleep on a futex);
 * link with -pthread.
 */
#ifndef STREAMFUTURES_H
#define STREAMFUTURES_H

#if !defined(__linux__)
#error "streamfutures needs Linux (its threads sleep on a futex; worker processes use pidfd and memfd): this platform is not supported"
#endif

#include <stddef.h>
#include <stdint.h>

/* The one statement of the version, for the C library and the Python
 * package alike (setup.py and the Makefile read it from here). */
#define SF_VERSION_MAJOR 0
#define SF_VERSION_MINOR 1
#define SF_VERSION_PATCH 0
#define SF_VERSION_STRING "0.1.0"

/* What the shared library exports: the library is built with
 * -fvisibility=hidden, so its internal (sf__) functions stay its own.  An
 * embedder that links the engine into a module of its own and exports
 * nothing of it (the Python extension) defines SF_NO_EXPORT. */
#if defined(__GNUC__) && !defined(SF_NO_EXPORT)
#define SF_API __attribute__((visibility("default")))
#else
#define SF_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_pool sf_pool;
typedef struct sf_map sf_map;
typedef struct sf_job sf_job;
typedef struct sf_batch sf_batch;

/* ---- threads -------------------------------------------------------- */

enum sf_thread_kind { SF_THREAD_WORKER = 0, SF_THREAD_INPUT = 1 };

/* Hooks around the life of every engine thread.  Any member may be NULL.
 * thread_start runs first on the new thread, detached; a nonzero return on
 * a worker breaks the pool (like a failing initializer): queued and future
 * jobs are dropped with -EPIPE.  attach/detach bracket every run of jobs;
 * the engine detaches before it parks and at least every jobs_per_attach
 * jobs, so an embedder can hand a global lock to other threads. */
typedef struct sf_thread_hooks {
    void *ctx;
    int (*thread_start)(void *ctx, enum sf_thread_kind kind, unsigned index,
                        void **thread_state);
    void (*thread_stop)(void *ctx, void *thread_state);
    void (*attach)(void *ctx, void *thread_state);
    void (*detach)(void *ctx, void *thread_state);
} sf_thread_hooks;

typedef struct sf_pool_options {
    unsigned max_threads;            /* worker threads, > 0 */
    unsigned jobs_per_attach;        /* 0: default (64) */
    const char *thread_name_prefix;  /* native thread names; NULL: "sf" */
    sf_thread_hooks hooks;
} sf_pool_options;

/* ---- jobs ------------------------------------------------------------ */

#define SF_JOB_DONE 0
#define SF_JOB_REQUEUE 1

/* An intrusive job.  The owner allocates it and keeps it alive until run
 * or drop has been called; after that the engine never touches it. */
struct sf_job {
    sf_job *next;                            /* engine-owned */
    int (*run)(sf_job *job);                 /* SF_JOB_DONE or SF_JOB_REQUEUE */
    void (*drop)(sf_job *job, int reason);   /* never ran: -ECANCELED, -EPIPE */
};

SF_API int sf_pool_create(sf_pool **out, const sf_pool_options *options);

/* Queue a job for a worker.  -ESHUTDOWN after sf_pool_shutdown, -EPIPE when
 * the pool is broken, -EAGAIN when no thread could be started, -ECHILD in
 * a child process that inherited the pool through fork(). */
SF_API int sf_pool_submit(sf_pool *pool, sf_job *job);

#define SF_SHUTDOWN_WAIT 1u            /* join every thread before returning */
#define SF_SHUTDOWN_CANCEL_PENDING 2u  /* drop queued jobs, cancel map items not started */
#define SF_SHUTDOWN_CANCEL_MAPS 4u     /* stop input of maps that still have a consumer */

/* Refuse new jobs; threads exit once the pool has no job queued or running.
 * Maps whose consumer is still attached keep their acquired items and stop
 * acquiring once their window is full; maps whose consumer detached run to
 * the end of their input.  Idempotent. */
SF_API void sf_pool_shutdown(sf_pool *pool, unsigned flags);

/* Break the pool as a failing thread_start does (e.g. a worker process
 * could not be replaced): queued jobs are dropped with -EPIPE, on the
 * calling thread. */
SF_API void sf_pool_break(sf_pool *pool);
/* 1 when the pool is broken (a worker's thread_start failed). */
SF_API int sf_pool_broken(const sf_pool *pool);

/* Nonzero when the calling thread is one of this pool's threads. */
SF_API int sf_pool_owns_current_thread(const sf_pool *pool);

/* The most worker threads it runs at once (options.max_threads). */
SF_API unsigned sf_pool_max_threads(const sf_pool *pool);
/* Threads the pool has started and not yet joined. */
SF_API unsigned sf_pool_thread_count(const sf_pool *pool);

/* After sf_pool_shutdown: wait until every thread has exited, then join
 * them.  0: joined, the pool may be destroyed.  -ETIMEDOUT: deadline_ns
 * (sf_now_ns's clock; -1: none) passed first; call again.  -EBUSY: all
 * that is left are input pulls made for a map whose consumer is attached
 * (or was, until it closed the map mid-pull), still inside the embedder's pull (an input blocked on something that may
 * never come): they are not waited for, the workers have been joined, the
 * input threads go on (a pull that returns gets new workers for its
 * items), and the pool must be joined again (0) before it is destroyed. */
SF_API int sf_pool_join(sf_pool *pool, int64_t deadline_ns);

/* sf_pool_join without waiting: 1 if it joined every thread, else 0. */
SF_API int sf_pool_try_join(sf_pool *pool);

/* Shut down (waiting) and free.  Must not be called from a pool thread. */
SF_API void sf_pool_destroy(sf_pool *pool);

/* ---- maps ------------------------------------------------------------ */

enum sf_pull { SF_PULL_ITEM = 0, SF_PULL_END = 1, SF_PULL_ERROR = 2 };

typedef struct sf_map_ops {
    /* Serial input stage, on an input thread: store the next item in *item
     * and return SF_PULL_ITEM; SF_PULL_END at the end; SF_PULL_ERROR with
     * an error value in *item when the input failed (it ends the input). */
    enum sf_pull (*pull)(void *ctx, void **item);
    /* Parallel stage, on a worker: replace *value (an item) by its result
     * and return 0, or by an error value and return nonzero. */
    int (*work)(void *ctx, void **value);
    /* Release an item, result or error value the consumer will never see. */
    void (*discard)(void *ctx, void *value);
    /* The map is freed: release ctx. */
    void (*destroy)(void *ctx);
    /* Optional, replaces work: run a whole batch at once (e.g. pipelined to a
     * worker process), calling sf_batch_done for each item as it finishes,
     * in any order.  Items never marked done count as cancelled. */
    void (*work_batch)(void *ctx, sf_batch *batch);
    /* Optional: what a result costs to hold, in bytes, for an adaptive
     * window's budget (sf_map_options.result_budget).  Called with no lock
     * held: with work, on the worker right after a work that succeeded;
     * with work_batch, for each item published as succeeded, inside
     * sf_batch_done* (on the op's thread, before the map's lock). */
    size_t (*result_bytes)(void *ctx, const void *value);
} sf_map_ops;

/* The items of a batch: replace values[i] by its result or error value,
 * then call sf_batch_done(batch, i, failed).  That publishes it to the
 * consumer at once; it returns nonzero once the map was cancelled (items
 * not started should then not start). */
SF_API int sf_batch_size(const sf_batch *batch);
SF_API void **sf_batch_values(sf_batch *batch);
SF_API int sf_batch_done(sf_batch *batch, int index, int failed);
/* Claim more ready items into the batch, sized like a fresh claim from the
 * item cost measured so far, at most max (fewer if the batch is full, the
 * map was cancelled, or few are ready): they get the indices [old size,
 * new size).  Returns how many were added.  Lets a batch op keep a
 * pipeline full (e.g. send a process its next items before the current
 * ones are answered). */
SF_API int sf_batch_extend(sf_batch *batch, int max);
SF_API int sf_batch_capacity(const sf_batch *batch);
/* sf_batch_done for n items at once (one lock round trip). */
SF_API int sf_batch_done_many(sf_batch *batch, const int *indices, const int *failed, int n);
/* sf_batch_done_many without waking the consumer: the wake is owed until
 * sf_batch_wake (at the latest when the batch op returns).  For an op that
 * holds a lock the consumer also needs (an interpreter's): publish under
 * it, wake after dropping it, so the woken consumer does not at once block
 * on that lock. */
SF_API int sf_batch_publish_many(sf_batch *batch, const int *indices, const int *failed, int n);
SF_API void sf_batch_wake(sf_batch *batch);

#define SF_WINDOW_UNBOUNDED 0u

typedef struct sf_map_options {
    size_t window;     /* max items acquired and not yet taken; SF_WINDOW_UNBOUNDED */
    int unordered;     /* hand results out in completion order */
    /* Batching: a worker claims `batch` ready items at a time (fewer at the
     * end) when batch > 0; with 0 it claims enough to take about batch_ns
     * by the measured item cost, at most max_batch and at most its fair
     * share of what is ready.  0: defaults (50 us, 128). */
    int batch;
    int max_batch;
    int64_t batch_ns;
    /* The input never blocks (e.g. a list in memory): it may be pulled
     * several items per lock round trip.  Leave 0 for anything that may
     * wait (a generator reading a socket): items pulled before a wait must
     * not be held back by it. */
    int pull_never_blocks;
    /* An adaptive window, when window_max > window (both bounded): it starts
     * at `window` items and moves within [window_min, window_max] (0: two
     * per worker): it doubles while results are small and the workers
     * run out of acquired items (never while items wait for them), and
     * shrinks so the finished results held for the consumer stay within
     * result_budget bytes (by ops.result_bytes; 0: no byte bound).
     * window_max == window with a result_budget: it starts at its largest
     * and only shrinks for the budget.  The items acquired never exceed
     * the window of the moment. */
    size_t window_min;
    size_t window_max;
    size_t result_budget;
} sf_map_options;

/* Create a map on a pool and start acquiring input at once.  On success
 * the caller holds the consumer reference.  On failure ops->destroy has
 * not been called. -ESHUTDOWN, -EPIPE, -ENOMEM. */
SF_API int sf_map_create(sf_map **out, sf_pool *pool, const sf_map_ops *ops, void *ctx,
                  const sf_map_options *options);

enum sf_outcome {
    SF_RESULT = 0,       /* value is a result */
    SF_ERROR = 1,        /* value is the work's error value */
    SF_CANCELLED = 2,    /* item was cancelled (shutdown with cancel); value NULL */
    SF_INPUT_ERROR = 3,  /* value is the input's error; the iteration ends after it */
    SF_END = 4,          /* no more items */
    SF_SHUT_DOWN = 5,    /* no more items: input acquisition was stopped by shutdown */
    SF_BROKEN = 6,       /* no more items: the pool broke */
};

/* Take the next result (ownership of *value passes to the caller).
 * deadline_ns: absolute CLOCK_MONOTONIC time, 0 = poll, -1 = no deadline.
 * Returns an sf_outcome, -EAGAIN when polling found nothing, -ETIMEDOUT,
 * -EINTR (a signal interrupted the sleep), -ECHILD (inherited by fork).
 * A result can be taken the moment it exists; a call that has to sleep
 * while results come microseconds apart is woken for a group of them
 * (each wake-up is a context switch, on a full machine a worker's), at
 * most about 2 ms after the first of them.
 * Only one thread may consume a map at a time. */
SF_API int sf_map_next(sf_map *map, void **value, int64_t deadline_ns);

/* sf_map_next, and when it takes a result or an item's error, also up to
 * max_more of the finished results and errors right behind it, in the
 * same lock round trip, for a consumer that keeps a few itself: a run of
 * ready results then costs one trip into the map, not one each.  *n_more
 * says how many (more[k], with more_failed[k] set for an error, in the
 * order sf_map_next would give them); only results whose measured size
 * (ops.result_bytes) adds up to 64 KiB are taken ahead, and each one taken
 * leaves the window, as any taken result does. */
SF_API int sf_map_next_many(sf_map *map, void **value, int64_t deadline_ns, void **more,
                            unsigned char *more_failed, int max_more, int *n_more);

/* Early exit: cancel every item not yet started, stop acquiring input,
 * discard held results, and drop the consumer reference.  Running items
 * finish in the background and their results are discarded. */
SF_API void sf_map_close(sf_map *map);

/* sf_map_close without dropping the consumer reference: safe to call while
 * another thread sleeps in sf_map_next (which then returns SF_END); the
 * reference is dropped later with sf_map_close.  Idempotent. */
SF_API void sf_map_cancel(sf_map *map);

/* Fire-and-forget: drop the consumer reference but keep running every item
 * to the end of the input, discarding results, in the same bounded memory. */
SF_API void sf_map_detach(sf_map *map);

/* Drop the consumer reference and stop acquiring input at once: items
 * already acquired still run (results discarded), nothing more is read, so
 * an endless input is let go (Python 3.14's rule for a dropped map with a
 * buffersize). */
SF_API void sf_map_abandon(sf_map *map);

/* Where a map's time went, for finding a pipeline's bottleneck. */
typedef struct sf_map_stats {
    uint64_t pulled;  /* items read from the input */
    uint64_t taken;   /* results (errors, cancellations) the consumer took */
    int64_t busy_ns;  /* time workers spent running items, summed over workers */
    int64_t input_ns; /* time the input stage spent inside pull: waiting for its input */
    int64_t full_ns;  /* time the input stage stood still on a full window: waiting
                       * for the consumer to take results */
} sf_map_stats;
SF_API void sf_map_get_stats(sf_map *map, sf_map_stats *out);

/* Items acquired and not yet taken (the quantity the window bounds). */
SF_API size_t sf_map_outstanding(sf_map *map);

/* ---- broadcast rings (fan-out, tee) ---------------------------------- */

/* One input read once by n readers, each of which sees every item in
 * order, through a ring of `capacity` slots: the input is never more than
 * `capacity` items ahead of the slowest reader still open.  There is no
 * producer thread: a reader that finds nothing new pulls the next item
 * itself (one reader at a time), so the input runs on the readers' threads.
 * A reader closed early stops counting; a reader that runs ahead by
 * `capacity` waits for the slowest. */
typedef struct sf_ring sf_ring;

typedef struct sf_ring_ops {
    /* The input, called by one reader at a time on its own thread: as
     * sf_map_ops.pull. */
    enum sf_pull (*pull)(void *ctx, void **item);
    /* Release an item (or the input's error value) no reader will read
     * again.  In a bounded ring, on the thread of the reader that pulled
     * it (where it was made), at that reader's next call or close once
     * another reader's pull reused its slot; on the thread of the pull
     * that reuses its slot when that is the same reader (after the producer
     * turn, except for items a read-ahead turn replaced before its last
     * pull: reading this ring from those gets -EDEADLK) or that reader is
     * closed; otherwise in the last sf_ring_close_reader. */
    void (*discard)(void *ctx, void *value);
    /* The ring is freed: release ctx. */
    void (*destroy)(void *ctx);
} sf_ring_ops;

#define SF_RING_UNBOUNDED 0u   /* capacity: grow instead of waiting (itertools.tee) */
#define SF_RING_MAX_READERS 4096u

/* 1 <= readers <= SF_RING_MAX_READERS; capacity in items, or
 * SF_RING_UNBOUNDED: no reader ever waits for another, and memory grows
 * with the distance between the fastest and the slowest.  The readers
 * are numbered 0..readers-1;
 * each must be closed once with sf_ring_close_reader, and the last close
 * frees the ring.  On failure (-EINVAL, -ENOMEM) ops->destroy has not been
 * called. */
SF_API int sf_ring_create(sf_ring **out, unsigned readers, size_t capacity, const sf_ring_ops *ops,
                   void *ctx);

/* A reader that becomes the producer pulls up to `items` at once (default
 * 1: only the item it needs), while the ring has room and the input
 * answers at once (a turn ends after about 20 microseconds).  Readers on
 * different cores then hand the producer role over once per turn, not
 * per item; the input is read ahead of what the readers asked for, within
 * capacity.  Before the first sf_ring_next; 0 means 1. */
SF_API void sf_ring_read_ahead(sf_ring *ring, size_t items);

/* The reader's next item.  SF_RESULT: *value is the item, borrowed: valid
 * until this reader's next call or its close.  SF_END; SF_INPUT_ERROR once
 * (then SF_END): *value is the input's error, owned by the ring, the same
 * for every reader; SF_CANCELLED after sf_ring_cancel.  Errors:
 * -EAGAIN (deadline_ns 0 and it would wait), -ETIMEDOUT, -EINTR,
 * -EDEADLK: it would wait for readers all last read on this very thread
 * (or it was called from inside this ring's own pull), so waiting would
 * never end; -ENOMEM: an unbounded ring could not grow.  deadline_ns as in sf_map_next.  One thread at a time per
 * reader. */
SF_API int sf_ring_next(sf_ring *ring, unsigned reader, void **value, int64_t deadline_ns);

/* sf_ring_next, and with an item also up to max_more of the items already
 * published behind it (*n_more says how many, in order), for a reader
 * that hands a few out itself: one call then serves a run of items.  All
 * of them are borrowed until the reader's next call or its close, and
 * hold the ring until then, as the one item would (so a small capacity
 * leaves the other readers less room ahead: keep max_more well below it). */
SF_API int sf_ring_next_many(sf_ring *ring, unsigned reader, void **value, int64_t deadline_ns,
                             void **more, size_t max_more, size_t *n_more);

/* Sleep until sf_ring_next(reader) may have something to do: 0,
 * -ETIMEDOUT, -EINTR.  For an embedder that must drop a lock of its own
 * while waiting: poll with deadline 0, drop the lock, sf_ring_wait, retake
 * it, poll again. */
SF_API int sf_ring_wait(sf_ring *ring, unsigned reader, int64_t deadline_ns);

/* Every reader's next call returns SF_CANCELLED; sleeping readers wake.
 * Nothing more is read from the input.  Idempotent, any thread. */
SF_API void sf_ring_cancel(sf_ring *ring);

/* The reader stops counting (it never holds the others back again); the
 * last close frees the ring, discarding what it holds. */
SF_API void sf_ring_close_reader(sf_ring *ring, unsigned reader);

/* Items read from the input and not yet read by the slowest open reader
 * (the quantity capacity bounds). */
SF_API size_t sf_ring_held(const sf_ring *ring);

/* Monotonic clock in nanoseconds, the clock of every deadline. */
SF_API int64_t sf_now_ns(void);

/* The library's version, "MAJOR.MINOR.PATCH": SF_VERSION_STRING of the
 * library linked, which may differ from the header compiled against. */
SF_API const char *sf_version(void);

#ifdef __cplusplus
}
#endif
#endif /* STREAMFUTURES_H */
