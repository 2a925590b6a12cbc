/*
 * proc_ring.c -- a worker's results in shared memory: one writer (the
 * worker process), one reader (the parent's thread that owns the channel).
 *
 * DESIGN.  A result written to a pipe costs the worker a write() (about a
 * microsecond), more than a trivial task itself.  Here the worker copies a
 * record into a memfd-backed ring and publishes it with one release store
 * of `head`, so a finished result is in the parent's memory the moment it
 * exists: a worker that crashes right after loses nothing it finished.
 * The parent is woken only when it said it is going to sleep: it stores
 * `reader_asleep = 1` and re-checks `head`; the worker stores `head` and
 * then reads `reader_asleep`, and if set, clears it and rings the doorbell
 * (a message on the result pipe, which the parent polls anyway).  Both
 * sides use sequentially consistent accesses for that pair, so one of them
 * always sees the other (no lost wake-up).  While the parent is awake it
 * takes every record without any system call, so under load a doorbell is
 * amortised over all records written during one wake-up.
 *
 * Records are 16-byte headers (u32 length, u32 kind, u64 id) and payloads
 * padded to 16 bytes; a record never wraps: a pad record fills the end of
 * the buffer instead.  A record larger than a quarter of the ring goes
 * through the pipe (proc.c decides).  A full ring makes the worker wait on
 * a process-shared futex that the reader bumps after consuming.
 *
 * Invariants: tail <= head <= tail + size; head and tail are multiples of
 * 16; only the worker writes head and data, only the reader writes tail.
 * `cancel_below` only grows; the worker skips items whose id is below it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RECORD_HEADER 16
#define KIND_PAD 0xfffffff0u
#define SPACE_WAIT_NS 100000000 /* a worker waiting for space checks its parent this often */

struct sf__ring {
    _Atomic uint64_t head; /* worker: bytes published */
    char pad_head[56];
    _Atomic uint64_t tail; /* parent: bytes consumed */
    _Atomic uint32_t reader_asleep;
    _Atomic uint32_t writer_waiting;
    _Atomic uint32_t space_futex; /* bumped when space was freed for a waiting writer */
    uint32_t pad_u32;
    _Atomic uint64_t cancel_below;
    char pad_tail[32];
    uint64_t size; /* bytes of data, a power of two */
    char pad_size[56];
    char data[];
};

#define HEADER_BYTES ((size_t)offsetof(struct sf__ring, data))

static size_t record_bytes(uint32_t len) { return RECORD_HEADER + (((size_t)len + 15) & ~(size_t)15); }

int sf_proc_ring_create(size_t bytes)
{
    size_t size = 4096;
    while (size < bytes)
        size *= 2;
    int fd = memfd_create("streamfutures-results", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)(HEADER_BYTES + size)) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    sf__ring *r = mmap(NULL, HEADER_BYTES + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    r->size = size; /* the rest of a fresh memfd reads as zero */
    munmap(r, HEADER_BYTES + size);
    return fd;
}

sf__ring *sf__ring_map(int fd)
{
    sf__ring *r = mmap(NULL, HEADER_BYTES, PROT_READ, MAP_SHARED, fd, 0);
    if (r == MAP_FAILED)
        return NULL;
    uint64_t size = r->size;
    munmap(r, HEADER_BYTES);
    if (size < 4096 || (size & (size - 1)))
        return NULL;
    r = mmap(NULL, HEADER_BYTES + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return r == MAP_FAILED ? NULL : r;
}

void sf__ring_unmap(sf__ring *r)
{
    if (r)
        munmap(r, HEADER_BYTES + r->size);
}

size_t sf__ring_max_payload(const sf__ring *r) { return (size_t)r->size / 4 - RECORD_HEADER; }

static void futex_wake_shared(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* ---- writer (worker process) ------------------------------------------- */

/* The parent closed its end of the task pipe (it exited or dropped us). */
static int parent_gone(int task_fd)
{
    struct pollfd p = {.fd = task_fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLIN);
}

static int wait_for_space(sf__ring *r, uint64_t head, size_t need, int task_fd)
{
    for (;;) {
        uint32_t seen = atomic_load(&r->space_futex);
        atomic_store(&r->writer_waiting, 1);
        if (head + need - atomic_load(&r->tail) <= r->size) {
            atomic_store(&r->writer_waiting, 0);
            return 0;
        }
        struct timespec wait = {0, SPACE_WAIT_NS};
        syscall(SYS_futex, (uint32_t *)&r->space_futex, FUTEX_WAIT, seen, &wait, NULL, 0);
        if (task_fd >= 0 && parent_gone(task_fd))
            return -EPIPE;
    }
}

int sf__ring_put(sf__ring *r, uint64_t id, uint32_t kind, const void *data, uint32_t len,
                 int task_fd)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t need = record_bytes(len);
    size_t offset = (size_t)(head & (r->size - 1));
    size_t to_end = (size_t)r->size - offset;
    size_t total = need + (to_end < need ? to_end : 0);

    if (head + total - atomic_load_explicit(&r->tail, memory_order_acquire) > r->size) {
        int rc = wait_for_space(r, head, total, task_fd);
        if (rc != 0)
            return rc;
    }
    if (to_end < need) { /* records never wrap: pad to the end */
        uint32_t pad = (uint32_t)(to_end - RECORD_HEADER), pad_kind = KIND_PAD;
        memcpy(r->data + offset, &pad, 4);
        memcpy(r->data + offset + 4, &pad_kind, 4);
        head += to_end;
        offset = 0;
    }
    char *p = r->data + offset;
    memcpy(p, &len, 4);
    memcpy(p + 4, &kind, 4);
    memcpy(p + 8, &id, 8);
    if (len)
        memcpy(p + RECORD_HEADER, data, len);
    atomic_store(&r->head, head + need); /* seq_cst: see DESIGN */
    if (atomic_load(&r->reader_asleep) && atomic_exchange(&r->reader_asleep, 0))
        return 1; /* the caller rings the doorbell */
    return 0;
}

int sf__ring_skip(const sf__ring *r, uint64_t id)
{
    return id < atomic_load_explicit(&((sf__ring *)r)->cancel_below, memory_order_relaxed);
}

/* ---- reader (parent) ----------------------------------------------------- */

int sf__ring_peek(sf__ring *r, sf_proc_msg *msg)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        if (tail == atomic_load_explicit(&r->head, memory_order_acquire))
            return 0;
        const char *p = r->data + (tail & (r->size - 1));
        uint32_t len, kind;
        memcpy(&len, p, 4);
        memcpy(&kind, p + 4, 4);
        if (kind == KIND_PAD) {
            tail += record_bytes(len);
            atomic_store_explicit(&r->tail, tail, memory_order_release);
            continue;
        }
        memcpy(&msg->id, p + 8, 8);
        msg->kind = kind;
        msg->len = len;
        msg->data = p + RECORD_HEADER;
        return 1;
    }
}

void sf__ring_consume(sf__ring *r, const sf_proc_msg *msg)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store(&r->tail, tail + record_bytes(msg->len));
    if (atomic_load(&r->writer_waiting)) {
        atomic_store(&r->writer_waiting, 0);
        atomic_fetch_add(&r->space_futex, 1);
        futex_wake_shared(&r->space_futex);
    }
}

int sf__ring_announce_sleep(sf__ring *r)
{
    atomic_store(&r->reader_asleep, 1);
    if (atomic_load(&r->head) != atomic_load_explicit(&r->tail, memory_order_relaxed)) {
        atomic_store(&r->reader_asleep, 0);
        return 1; /* a record came meanwhile: do not sleep */
    }
    return 0;
}

int sf__ring_empty(sf__ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_acquire) ==
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

void sf__ring_woke(sf__ring *r) { atomic_store(&r->reader_asleep, 0); }

void sf__ring_cancel_below(sf__ring *r, uint64_t id)
{
    uint64_t old = atomic_load(&r->cancel_below);
    while (old < id && !atomic_compare_exchange_weak(&r->cancel_below, &old, id))
        ;
}
