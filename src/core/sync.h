/* sync.h -- cheap waiting, locks and the fork generation (sync.c); shared
 * by the src/core files, never seen by embedders. */
#ifndef SF_SYNC_H
#define SF_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* A waiter reads a key with sf__event_prepare, re-checks its condition,
 * then sleeps in sf__event_wait until the key changes.  A signal bumps the
 * key and makes a futex call only when somebody announced waiting. */
typedef struct sf__event {
    _Atomic uint32_t key;
    _Atomic uint32_t waiters;
} sf__event;

void sf__event_init(sf__event *event);
uint32_t sf__event_prepare(sf__event *event);
void sf__event_cancel(sf__event *event);
/* 0 when woken (or key already changed), -ETIMEDOUT at the deadline,
 * -EINTR when a signal interrupted the sleep.  deadline_ns -1: none. */
int sf__event_wait(sf__event *event, uint32_t key, int64_t deadline_ns);
void sf__event_signal_one(sf__event *event);
void sf__event_signal_all(sf__event *event);

/* One step of a short spin: tells the core this thread is waiting on
 * another one (and, on a shared core, lets the other hyperthread run). */
static inline void sf__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Bumped in the child after every fork (pthread_atfork). */
unsigned sf__fork_generation(void);

void sf__mutex_init(pthread_mutex_t *mutex);
void sf__lock(pthread_mutex_t *mutex);
void sf__unlock(pthread_mutex_t *mutex);

#endif
