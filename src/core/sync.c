/*
 * sync.c -- cheap parking: an event count on a Linux futex.
 *
 * DESIGN.  All of the engine's sleeping goes through sf__event.  The state a
 * sleeper waits for lives elsewhere (under a mutex); the event only carries
 * "something may have changed".  Protocol, which makes lost wake-ups
 * impossible:
 *   waiter:   lock; check; key = prepare(); unlock; wait(key); lock; re-check
 *   signaler: lock; change; unlock; signal()
 * prepare() announces the waiter (waiters++, seq_cst) before the waiter
 * re-checks; signal() puts a seq_cst fence between the caller's change and
 * its load of waiters.  So either the signaler sees the waiter, then bumps
 * the key and calls FUTEX_WAKE (a waiter that read the key before the bump
 * does not sleep, or is woken), or the waiter was announced after the
 * fence and its re-check sees the change.  The fast path of signal() with
 * nobody waiting is a fence and one load: no write, no system call.
 * No locks are taken here (it makes the engine's mutexes: adaptive, below).
 * This file also keeps the fork generation: a
 * counter a pthread_atfork child handler bumps, so engine objects can tell
 * that they were inherited from a parent process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "streamfutures.h"
#include "sync.h"

/* Bumped in the child of every fork(): engine objects made before it belong
 * to the parent (their threads do not exist here). */
static _Atomic unsigned fork_generation;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void in_forked_child(void) { atomic_fetch_add(&fork_generation, 1); }
static void install_fork_hook(void) { pthread_atfork(NULL, NULL, in_forked_child); }

unsigned sf__fork_generation(void)
{
    pthread_once(&fork_hook_once, install_fork_hook);
    return atomic_load(&fork_generation);
}

const char *sf_version(void) { return SF_VERSION_STRING; }

int64_t sf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sf__event_init(sf__event *event)
{
    atomic_init(&event->key, 0);
    atomic_init(&event->waiters, 0);
}

uint32_t sf__event_prepare(sf__event *event)
{
    atomic_fetch_add(&event->waiters, 1);
    return atomic_load(&event->key);
}

void sf__event_cancel(sf__event *event)
{
    atomic_fetch_sub(&event->waiters, 1);
}

int sf__event_wait(sf__event *event, uint32_t key, int64_t deadline_ns)
{
    struct timespec abs, *timeout = NULL;
    int rc = 0;

    if (deadline_ns >= 0) {
        abs.tv_sec = deadline_ns / 1000000000;
        abs.tv_nsec = deadline_ns % 1000000000;
        timeout = &abs;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a
     * retried wait never stretches the caller's deadline. */
    if (atomic_load(&event->key) == key &&
        syscall(SYS_futex, &event->key, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                key, timeout, NULL, FUTEX_BITSET_MATCH_ANY) != 0) {
        if (errno == ETIMEDOUT)
            rc = -ETIMEDOUT;
        else if (errno == EINTR)
            rc = -EINTR;
        /* EAGAIN: the key changed before we slept, i.e. a wake-up. */
    }
    atomic_fetch_sub(&event->waiters, 1);
    return rc;
}

static void signal_n(sf__event *event, int count)
{
    /* Orders the caller's change before the load of waiters: a waiter
     * announced after this fence re-checks and sees the change, so with
     * nobody announced the key need not move (no write to a line the
     * waiters read, on every signal). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&event->waiters) == 0)
        return;
    atomic_fetch_add(&event->key, 1);
    syscall(SYS_futex, &event->key, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, NULL, NULL, 0);
}

void sf__event_signal_one(sf__event *event) { signal_n(event, 1); }
void sf__event_signal_all(sf__event *event) { signal_n(event, INT_MAX); }

/* The engine's locks are held for a few hundred nanoseconds by threads
 * that all run at once (free-threaded Python: the input stage, workers
 * publishing, the consumer taking): a waiter that sleeps at once pays a
 * context switch for what a short spin would have waited out.  glibc's
 * adaptive mutex spins a bounded, self-tuned while before it sleeps. */
void sf__mutex_init(pthread_mutex_t *mutex)
{
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0)
        abort();
#ifdef __GLIBC__
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    if (pthread_mutex_init(mutex, &attr) != 0)
        abort();
    pthread_mutexattr_destroy(&attr);
}

void sf__lock(pthread_mutex_t *mutex)
{
    if (pthread_mutex_lock(mutex) != 0)
        abort(); /* only on a broken invariant (destroyed or corrupt mutex) */
}

void sf__unlock(pthread_mutex_t *mutex)
{
    if (pthread_mutex_unlock(mutex) != 0)
        abort();
}
