/*
 * pool.c -- worker threads, input threads and their job queues.
 *
 * DESIGN.  A pool has two lanes, each a FIFO of intrusive sf_job's served
 * by its own threads: the work lane (at most max_threads workers, started
 * lazily when a job finds no idle worker) and the input lane (one thread per
 * job running at once, for the serial input stage of maps, so a slow input
 * never occupies a worker).  `active` counts jobs queued or running in both
 * lanes; after shutdown a thread exits once active is 0, so "shut down and
 * quiet" is the exit condition and shutdown(wait) is a plain join.  One
 * exception: input pulls made for a consumer (in_pull) may wait on the
 * embedder forever, so once they are all that is active the workers leave
 * and sf_pool_join reports -EBUSY instead of waiting for them; a pull that
 * returns after all posts its work, which starts new workers.
 *
 * Invariants (under pool->mu):
 *   active == queued jobs + running jobs, over both lanes;
 *   idle <= threads of that lane; wakes_pending <= idle;
 *   leaving <= threads: only threads - leaving may still take a job, and
 *   only they count against max_threads;
 *   in_pull <= active (a pull runs inside an active input job);
 *   after shutdown, a job is accepted only from the engine and only while
 *   active > 0 (so nothing is queued once the threads may have exited);
 *   `exited` counts threads past their last hook call (safe to join while
 *   holding whatever lock the hooks take).
 *
 * Fork: a child has the pool's memory but none of its threads, and maybe
 * a mutex some thread held at the fork.  Every entry point compares the
 * pool's fork generation (sync.c) before taking a lock, and a forked
 * child's pool refuses work with -ECHILD and is never joined or freed.
 *
 * The pool knows nothing of maps: a map registers a shutdown listener
 * (pool_internal.h), which shutdown calls with pool->mu released.
 *
 * Lock order: a map's mutex, then pool->mu.  pool->mu is never held while
 * calling a job, a hook or a listener, and never while sleeping.
 * Threads attach (hooks.attach) before running jobs and detach before
 * parking and every jobs_per_attach jobs, so a runtime lock is shared.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool_internal.h"
#include "sync.h"

typedef struct thread_node {
    pthread_t tid;
    struct thread_node *next;
} thread_node;

typedef struct lane {
    sf_job *head, *tail;
    sf__event ready;
    unsigned idle;          /* threads parked or about to park */
    unsigned wakes_pending; /* signals sent to idle threads not yet woken */
    unsigned starting;      /* threads started that have not yet looked at the queue */
    unsigned threads;       /* started */
    unsigned leaving;       /* left their main loop: never take a job again */
    unsigned exited;        /* returned from their main loop */
    thread_node *thread_list;
} lane;

struct sf_pool {
    pthread_mutex_t mu;
    sf_pool_options options;
    char prefix[16];
    lane lanes[2];
    unsigned active;
    /* jobs inside an input pull made for a consumer (sf__pool_pull_begin):
     * a join does not wait for them, since they may wait on the embedder
     * forever */
    _Atomic unsigned in_pull;
    sf__event quiet; /* after shutdown: active fell or a thread exited */
    int shutdown;
    _Atomic int broken;
    sf__shutdown_listener listeners; /* live listeners (circular, sentinel) */
    unsigned fork_generation; /* sf__fork_generation when created */
};

typedef struct thread_start_arg {
    sf_pool *pool;
    enum sf__lane lane;
    unsigned index;
} thread_start_arg;

static _Thread_local const sf_pool *current_pool;

/* ---- queue helpers (pool->mu held) ---------------------------------- */

static void lane_push(lane *l, sf_job *job)
{
    job->next = NULL;
    if (l->tail)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
}

static sf_job *lane_pop(lane *l)
{
    sf_job *job = l->head;
    if (job) {
        l->head = job->next;
        if (!l->head)
            l->tail = NULL;
        job->next = NULL;
    }
    return job;
}

/* Detach the queue of a lane but its first `keep` jobs; returns how many
 * jobs it detached. */
static unsigned lane_take_after(lane *l, unsigned keep, sf_job **out)
{
    unsigned n = 0;
    sf_job *job, *last_kept = NULL;
    for (job = l->head; job && keep; job = job->next, keep--)
        last_kept = job;
    *out = last_kept ? last_kept->next : l->head;
    for (job = *out; job; job = job->next)
        n++;
    if (last_kept) {
        last_kept->next = NULL;
        l->tail = last_kept;
    } else {
        l->head = l->tail = NULL;
    }
    return n;
}

static unsigned lane_take_all(lane *l, sf_job **out) { return lane_take_after(l, 0, out); }

/* Jobs a worker has already been given (a thread started or woken for
 * each) and has yet to take from the queue: they count as started, as in
 * the stdlib, where such an item is in its worker's hands. */
static unsigned lane_claimed(const lane *l) { return l->starting + l->wakes_pending; }

static void drop_list(sf_job *job, int reason)
{
    while (job) {
        sf_job *next = job->next;
        job->next = NULL;
        job->drop(job, reason);
        job = next;
    }
}

static void wake_everyone(sf_pool *pool)
{
    sf__event_signal_all(&pool->lanes[SF__LANE_WORK].ready);
    sf__event_signal_all(&pool->lanes[SF__LANE_INPUT].ready);
}

/* ---- threads --------------------------------------------------------- */

static void *thread_main(void *raw);

/* pool->mu held.  Start one thread for the lane. */
static int spawn(sf_pool *pool, enum sf__lane which)
{
    lane *l = &pool->lanes[which];
    thread_start_arg *arg = malloc(sizeof *arg);
    thread_node *node = malloc(sizeof *node);
    if (!arg || !node) {
        free(arg);
        free(node);
        return -ENOMEM;
    }
    arg->pool = pool;
    arg->lane = which;
    arg->index = l->threads;
    int rc = pthread_create(&node->tid, NULL, thread_main, arg);
    if (rc != 0) {
        free(arg);
        free(node);
        return -rc;
    }
    node->next = l->thread_list;
    l->thread_list = node;
    l->threads++;
    l->starting++;
    return 0;
}

/* Break the pool (a worker's thread_start failed, or the embedder said so):
 * refuse new jobs and drop the queued ones.  Called attached. */
static void break_pool(sf_pool *pool)
{
    sf_job *work, *input;
    unsigned n;

    sf__lock(&pool->mu);
    atomic_store(&pool->broken, 1);
    n = lane_take_all(&pool->lanes[SF__LANE_WORK], &work);
    n += lane_take_all(&pool->lanes[SF__LANE_INPUT], &input);
    pool->active -= n;
    sf__unlock(&pool->mu);
    drop_list(work, -EPIPE);
    drop_list(input, -EPIPE);
    wake_everyone(pool);
}

static void *thread_main(void *raw)
{
    thread_start_arg arg = *(thread_start_arg *)raw;
    sf_pool *pool = arg.pool;
    lane *l = &pool->lanes[arg.lane];
    const sf_thread_hooks *hooks = &pool->options.hooks;
    unsigned budget = pool->options.jobs_per_attach;
    unsigned since_attach = 0;
    void *state = NULL;
    int attached = 0, start_failed = 0;
    char name[16];

    free(raw);
    current_pool = pool;
    snprintf(name, sizeof name, "%.8s%s%u", pool->prefix,
             arg.lane == SF__LANE_WORK ? "_" : "_in", arg.index);
    pthread_setname_np(pthread_self(), name);

    if (hooks->thread_start &&
        hooks->thread_start(hooks->ctx, arg.lane == SF__LANE_WORK ? SF_THREAD_WORKER
                                                                  : SF_THREAD_INPUT,
                            arg.index, &state) != 0 &&
        arg.lane == SF__LANE_WORK) {
        start_failed = 1;
        if (hooks->attach)
            hooks->attach(hooks->ctx, state);
        break_pool(pool);
        if (hooks->detach)
            hooks->detach(hooks->ctx, state);
    }

    sf__lock(&pool->mu);
    l->starting--; /* from here on it takes jobs from the queue (or never will) */
    while (!start_failed) {
        sf_job *job = atomic_load(&pool->broken) && arg.lane == SF__LANE_WORK ? NULL
                                                                               : lane_pop(l);
        if (job) {
            sf__unlock(&pool->mu);
            if (!attached) {
                if (hooks->attach)
                    hooks->attach(hooks->ctx, state);
                attached = 1;
                since_attach = 0;
            } else if (++since_attach >= budget) {
                /* let other threads take the runtime lock now and then */
                if (hooks->detach)
                    hooks->detach(hooks->ctx, state);
                if (hooks->attach)
                    hooks->attach(hooks->ctx, state);
                since_attach = 0;
            }
            int rc = job->run(job);
            sf__lock(&pool->mu);
            if (rc == SF_JOB_REQUEUE && !atomic_load(&pool->broken)) {
                lane_push(l, job);
                continue;
            }
            if (rc == SF_JOB_REQUEUE) {
                /* a broken pool pops no work: queued, the job would strand
                 * the items it serves; its drop retires them.  It stays
                 * counted in active until then, as in shutdown. */
                sf__unlock(&pool->mu);
                job->drop(job, -EPIPE);
                sf__lock(&pool->mu);
            }
            assert(pool->active > 0);
            if (--pool->active == 0 && pool->shutdown)
                wake_everyone(pool);
            if (pool->shutdown)
                sf__event_signal_all(&pool->quiet);
            continue;
        }
        /* after shutdown a worker also leaves when nothing is left but
         * pulls for consumers, which may never return: if one does, its
         * work gets a new worker (see sf__pool_post) */
        if (pool->shutdown &&
            (pool->active == 0 ||
             (arg.lane == SF__LANE_WORK && pool->active == atomic_load(&pool->in_pull))))
            break;
        l->idle++;
        uint32_t key = sf__event_prepare(&l->ready);
        sf__unlock(&pool->mu);
        if (attached) {
            if (hooks->detach)
                hooks->detach(hooks->ctx, state);
            attached = 0;
        }
        sf__event_wait(&l->ready, key, -1);
        sf__lock(&pool->mu);
        l->idle--;
        if (l->wakes_pending)
            l->wakes_pending--;
        assert(l->wakes_pending <= l->idle);
    }
    l->leaving++;
    assert(l->leaving <= l->threads);
    sf__unlock(&pool->mu);
    if (attached && hooks->detach)
        hooks->detach(hooks->ctx, state);
    if (hooks->thread_stop)
        hooks->thread_stop(hooks->ctx, state);
    /* counted only now: an exited thread makes no more hook calls, so a
     * caller holding the embedder's lock (the GIL) may join it */
    sf__lock(&pool->mu);
    l->exited++;
    sf__unlock(&pool->mu);
    sf__event_signal_all(&pool->quiet);
    return NULL;
}

/* ---- public ---------------------------------------------------------- */

int sf_pool_create(sf_pool **out, const sf_pool_options *options)
{
    sf_pool *pool;
    if (!options || options->max_threads == 0)
        return -EINVAL;
    pool = calloc(1, sizeof *pool);
    if (!pool)
        return -ENOMEM;
    sf__mutex_init(&pool->mu);
    pool->options = *options;
    if (pool->options.jobs_per_attach == 0)
        pool->options.jobs_per_attach = 64;
    snprintf(pool->prefix, sizeof pool->prefix, "%s",
             options->thread_name_prefix && options->thread_name_prefix[0]
                 ? options->thread_name_prefix
                 : "sf");
    pool->options.thread_name_prefix = pool->prefix;
    sf__event_init(&pool->lanes[0].ready);
    sf__event_init(&pool->lanes[1].ready);
    sf__event_init(&pool->quiet);
    atomic_init(&pool->in_pull, 0);
    pool->listeners.prev = pool->listeners.next = &pool->listeners;
    pool->fork_generation = sf__fork_generation();
    atomic_init(&pool->broken, 0);
    *out = pool;
    return 0;
}

int sf__pool_post(sf_pool *pool, sf_job *job, enum sf__lane which, enum sf__poster poster)
{
    lane *l = &pool->lanes[which];
    int rc = 0, wake = 0;

    if (sf__pool_forked(pool))
        return -ECHILD; /* before the lock: it may have been held at fork */
    sf__lock(&pool->mu);
    if (atomic_load(&pool->broken)) {
        rc = -EPIPE;
    } else if (pool->shutdown && (poster == SF__BY_CONSUMER || pool->active == 0)) {
        rc = -ESHUTDOWN;
    } else {
        lane_push(l, job);
        pool->active++;
        if (l->idle > l->wakes_pending) {
            l->wakes_pending++;
            wake = 1;
        } else if (which == SF__LANE_INPUT ||
                   l->threads - l->leaving < pool->options.max_threads) {
            int spawned = spawn(pool, which);
            if (spawned != 0 && l->threads - l->leaving == 0) {
                /* nobody could ever run it: hand it back */
                sf_job **link = &l->head;
                sf_job *prev = NULL;
                while (*link != job) {
                    prev = *link;
                    link = &(*link)->next;
                }
                *link = NULL;
                l->tail = prev;
                pool->active--;
                rc = -EAGAIN;
            }
        }
    }
    sf__unlock(&pool->mu);
    if (wake)
        sf__event_signal_one(&l->ready);
    return rc;
}

int sf_pool_submit(sf_pool *pool, sf_job *job)
{
    return sf__pool_post(pool, job, SF__LANE_WORK, SF__BY_CONSUMER);
}

unsigned sf_pool_max_threads(const sf_pool *pool) { return pool->options.max_threads; }

int sf__pool_listen(sf_pool *pool, sf__shutdown_listener *link)
{
    int rc = 0;
    if (sf__pool_forked(pool))
        return -ECHILD;
    sf__lock(&pool->mu);
    if (atomic_load(&pool->broken))
        rc = -EPIPE;
    else if (pool->shutdown)
        rc = -ESHUTDOWN;
    else {
        link->next = &pool->listeners;
        link->prev = pool->listeners.prev;
        pool->listeners.prev->next = link;
        pool->listeners.prev = link;
    }
    sf__unlock(&pool->mu);
    return rc;
}

void sf__pool_unlisten(sf_pool *pool, sf__shutdown_listener *link)
{
    sf__lock(&pool->mu);
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = link;
    sf__unlock(&pool->mu);
}

/* Join every thread of a lane; each is unlinked under the lock, so
 * concurrent joiners never join one twice. */
static void join_lane(sf_pool *pool, lane *l)
{
    for (;;) {
        thread_node *node;
        sf__lock(&pool->mu);
        node = l->thread_list;
        if (node)
            l->thread_list = node->next;
        sf__unlock(&pool->mu);
        if (!node)
            break;
        pthread_join(node->tid, NULL);
        free(node);
    }
}

/* Workers may leave while input jobs still pull (in_pull) and new ones be
 * started when a pull returns, so the work lane is joined again after the
 * input lane; once the input threads are gone nothing is active, so no
 * thread can start any more. */
static void join_threads(sf_pool *pool)
{
    for (;;) {
        join_lane(pool, &pool->lanes[SF__LANE_WORK]);
        join_lane(pool, &pool->lanes[SF__LANE_INPUT]);
        sf__lock(&pool->mu);
        int none_left = !pool->lanes[SF__LANE_WORK].thread_list;
        sf__unlock(&pool->mu);
        if (none_left)
            return;
    }
}

void sf_pool_shutdown(sf_pool *pool, unsigned flags)
{
    sf_job *work = NULL, *input = NULL;
    sf__shutdown_listener **held = NULL;
    size_t nheld = 0, i;
    unsigned dropped = 0;
    int cancel_pending = (flags & SF_SHUTDOWN_CANCEL_PENDING) != 0;
    int cancel_input = (flags & SF_SHUTDOWN_CANCEL_MAPS) != 0;

    if (sf__pool_forked(pool))
        return; /* a forked child has none of the threads */

    sf__lock(&pool->mu);
    pool->shutdown = 1;
    if (cancel_pending) {
        /* the taken jobs stay counted in active until their drop ran, so
         * the threads cannot exit while a drop may still post follow-ups */
        lane *w = &pool->lanes[SF__LANE_WORK];
        dropped = lane_take_after(w, lane_claimed(w), &work);
        dropped += lane_take_all(&pool->lanes[SF__LANE_INPUT], &input);
    }
    if (cancel_pending || cancel_input) {
        size_t cap = 0;
        sf__shutdown_listener *link;
        for (link = pool->listeners.next; link != &pool->listeners; link = link->next)
            cap++;
        held = cap ? malloc(cap * sizeof *held) : NULL;
        for (link = pool->listeners.next; held && link != &pool->listeners; link = link->next)
            if (link->ops->hold(link))
                held[nheld++] = link;
    }
    sf__unlock(&pool->mu);

    for (i = 0; i < nheld; i++) {
        held[i]->ops->on_shutdown(held[i], cancel_pending, cancel_input);
        held[i]->ops->release(held[i]);
    }
    free(held);
    if (dropped) {
        drop_list(work, -ECANCELED);
        drop_list(input, -ECANCELED);
        sf__lock(&pool->mu);
        pool->active -= dropped;
        sf__unlock(&pool->mu);
    }
    wake_everyone(pool);

    if (flags & SF_SHUTDOWN_WAIT)
        join_threads(pool);
}

int sf__pool_forked(const sf_pool *pool)
{
    return pool->fork_generation != sf__fork_generation();
}

void sf_pool_break(sf_pool *pool)
{
    if (!sf__pool_forked(pool))
        break_pool(pool);
}

int sf_pool_broken(const sf_pool *pool) { return atomic_load(&((sf_pool *)pool)->broken); }

/* In a forked child the thread that forked still has its thread-local:
 * the parent's pool is nobody's there. */
int sf_pool_owns_current_thread(const sf_pool *pool)
{
    return current_pool == pool && !sf__pool_forked(pool);
}

unsigned sf_pool_thread_count(const sf_pool *pool)
{
    sf_pool *p = (sf_pool *)pool;
    unsigned n = 0;
    int i;
    thread_node *node;
    if (sf__pool_forked(pool))
        return 0;
    sf__lock(&p->mu);
    for (i = 0; i < 2; i++)
        for (node = p->lanes[i].thread_list; node; node = node->next)
            n++;
    sf__unlock(&p->mu);
    return n;
}

/* While a pull is under way a join looks again this often: a pull starting
 * does not signal (that would cost every pull a wake-up check). */
#define JOIN_RECHECK_NS 10000000

int sf_pool_join(sf_pool *pool, int64_t deadline_ns)
{
    if (sf__pool_forked(pool))
        return 0;
    for (;;) {
        uint32_t key = sf__event_prepare(&pool->quiet);
        sf__lock(&pool->mu);
        int all_exited = pool->shutdown && pool->active == 0 &&
                         pool->lanes[0].exited == pool->lanes[0].threads &&
                         pool->lanes[1].exited == pool->lanes[1].threads;
        unsigned pulls = atomic_load(&pool->in_pull);
        lane *work = &pool->lanes[SF__LANE_WORK];
        int only_pulls = pool->shutdown && pool->active != 0 && pool->active == pulls;
        int workers_gone = work->exited == work->threads;
        sf__unlock(&pool->mu);
        if (all_exited || (only_pulls && workers_gone)) {
            sf__event_cancel(&pool->quiet);
            if (all_exited) {
                join_threads(pool);
                return 0;
            }
            join_lane(pool, work); /* a worker process of theirs must not outlive this */
            return -EBUSY;
        }
        if (only_pulls) /* parked workers do not know: a pull starting does not signal */
            sf__event_signal_all(&work->ready);
        int64_t now = sf_now_ns(), until = deadline_ns;
        if (deadline_ns >= 0 && now >= deadline_ns) {
            sf__event_cancel(&pool->quiet);
            return -ETIMEDOUT;
        }
        if (pulls && (until < 0 || until > now + JOIN_RECHECK_NS))
            until = now + JOIN_RECHECK_NS;
        sf__event_wait(&pool->quiet, key, until);
    }
}

int sf_pool_try_join(sf_pool *pool) { return sf_pool_join(pool, 0) == 0; }

void sf__pool_pull_begin(sf_pool *pool) { atomic_fetch_add(&pool->in_pull, 1); }

void sf__pool_pull_end(sf_pool *pool)
{
    atomic_fetch_sub(&pool->in_pull, 1);
}

void sf_pool_destroy(sf_pool *pool)
{
    if (!pool)
        return;
    if (sf__pool_forked(pool))
        return; /* forked child: the memory is the parent's business */
    sf_pool_shutdown(pool, SF_SHUTDOWN_WAIT);
    if (pool->listeners.next != &pool->listeners)
        abort(); /* a map outlived its pool: a caller broke the contract */
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}
