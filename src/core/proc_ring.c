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
 * Each side keeps its own position privately and tells the other lazily:
 * the worker re-reads the reader's tail only when the ring looks full, and
 * the reader publishes its tail after an eighth of the ring, when it finds
 * the ring empty and before it sleeps, so per record neither touches a
 * cache line the other writes.
 *
 * The reader trusts nothing the worker writes: a head or a record length
 * that breaks these invariants is reported (-EPROTO), never followed.
 * Invariants: tail <= head <= tail + size; head and tail are multiples of
 * 16; only the worker writes head and data, only the reader writes tail.
 * `cancel_below` only grows; the worker skips items whose id is below it.
 */
#define _GNU_SOURCE
#include <assert.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "proc_ring.h"

#define RECORD_HEADER 16
#define KIND_PAD 0xfffffff0u
#define SPACE_WAIT_NS 100000000 /* a worker waiting for space checks its parent this often */

/* The shared part.  Each field written by one side sits on its own cache
 * line, so the other side's reads do not bounce the writer's line. */
typedef struct ring_shared {
    _Atomic uint64_t head; /* worker: bytes published */
    char pad_head[56];
    _Atomic uint64_t tail; /* parent: bytes consumed (published lazily) */
    char pad_tail[56];
    _Atomic uint32_t reader_asleep; /* parent sets, worker clears */
    char pad_asleep[60];
    _Atomic uint32_t writer_waiting;
    _Atomic uint32_t space_futex; /* bumped when space was freed for a waiting writer */
    char pad_waiting[56];
    _Atomic uint64_t cancel_below;
    char pad_cancel[56];
    uint64_t size; /* bytes of data, a power of two */
    char pad_size[56];
    char data[];
} ring_shared;

/* One side's handle: the mapping and what that side keeps to itself. */
struct sf__ring {
    ring_shared *s;
    uint64_t size;
    uint64_t head;           /* writer: next byte to write */
    uint64_t tail_seen;      /* writer: the reader's tail when last read */
    uint64_t tail;           /* reader: next byte to read */
    uint64_t tail_published; /* reader: what the writer has been told */
};

#define HEADER_BYTES ((size_t)offsetof(ring_shared, data))

static size_t record_bytes(uint32_t len) { return RECORD_HEADER + (((size_t)len + 15) & ~(size_t)15); }

int sf_proc_ring_create(size_t bytes)
{
    /* a power of two that holds `bytes`; refuse what no doubling reaches
     * (or what would overflow the file size) instead of looping forever */
    if (bytes > SF_PROC_RING_MAX_BYTES)
        return -EINVAL;
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
    ring_shared *r = mmap(NULL, HEADER_BYTES + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
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
    /* the size comes from the file, not from the header the worker can
     * write: a worker that corrupts its memory must not make us map less
     * than we then read */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)HEADER_BYTES)
        return NULL;
    uint64_t size = (uint64_t)st.st_size - HEADER_BYTES;
    if (size < 4096 || (size & (size - 1)))
        return NULL;
    sf__ring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = mmap(NULL, HEADER_BYTES + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r->s == MAP_FAILED) {
        free(r);
        return NULL;
    }
    r->size = size;
    r->head = atomic_load(&r->s->head);
    r->tail = r->tail_published = r->tail_seen = atomic_load(&r->s->tail);
    return r;
}

void sf__ring_unmap(sf__ring *r)
{
    if (!r)
        return;
    munmap(r->s, HEADER_BYTES + r->size);
    free(r);
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

static int wait_for_space(sf__ring *r, size_t need, int task_fd)
{
    ring_shared *s = r->s;
    for (;;) {
        uint32_t seen = atomic_load(&s->space_futex);
        atomic_store(&s->writer_waiting, 1);
        r->tail_seen = atomic_load(&s->tail);
        if (r->head + need - r->tail_seen <= r->size) {
            atomic_store(&s->writer_waiting, 0);
            return 0;
        }
        struct timespec wait = {0, SPACE_WAIT_NS};
        syscall(SYS_futex, (uint32_t *)&s->space_futex, FUTEX_WAIT, seen, &wait, NULL, 0);
        if (task_fd >= 0 && parent_gone(task_fd))
            return -EPIPE;
    }
}

int sf__ring_put(sf__ring *r, uint64_t id, uint32_t kind, const void *data, uint32_t len,
                 int task_fd)
{
    ring_shared *s = r->s;
    size_t need = record_bytes(len);
    size_t offset = (size_t)(r->head & (r->size - 1));
    size_t to_end = (size_t)r->size - offset;
    size_t total = need + (to_end < need ? to_end : 0);

    /* the reader's tail is read only when the last one seen leaves no room */
    if (r->head + total - r->tail_seen > r->size) {
        r->tail_seen = atomic_load_explicit(&s->tail, memory_order_acquire);
        if (r->head + total - r->tail_seen > r->size) {
            int rc = wait_for_space(r, total, task_fd);
            if (rc != 0)
                return rc;
        }
    }
    if (to_end < need) { /* records never wrap: pad to the end */
        uint32_t pad = (uint32_t)(to_end - RECORD_HEADER), pad_kind = KIND_PAD;
        memcpy(s->data + offset, &pad, 4);
        memcpy(s->data + offset + 4, &pad_kind, 4);
        r->head += to_end;
        offset = 0;
    }
    char *p = s->data + offset;
    memcpy(p, &len, 4);
    memcpy(p + 4, &kind, 4);
    memcpy(p + 8, &id, 8);
    if (len)
        memcpy(p + RECORD_HEADER, data, len);
    r->head += need;
    atomic_store(&s->head, r->head); /* seq_cst: see DESIGN */
    if (atomic_load(&s->reader_asleep) && atomic_exchange(&s->reader_asleep, 0))
        return 1; /* the caller rings the doorbell */
    return 0;
}

int sf__ring_skip(const sf__ring *r, uint64_t id)
{
    return id < atomic_load_explicit(&r->s->cancel_below, memory_order_relaxed);
}

/* ---- reader (parent) ----------------------------------------------------- */

/* Tell the writer how far we have read (and wake it if it waits for room).
 * Done lazily: when a good part of the ring was read, and always before
 * the reader sleeps or finds the ring empty, so a writer never waits for
 * space that is free. */
static void publish_tail(sf__ring *r)
{
    ring_shared *s = r->s;
    if (r->tail == r->tail_published)
        return;
    r->tail_published = r->tail;
    atomic_store(&s->tail, r->tail);
    if (atomic_load(&s->writer_waiting)) {
        atomic_store(&s->writer_waiting, 0);
        atomic_fetch_add(&s->space_futex, 1);
        futex_wake_shared(&s->space_futex);
    }
}

int sf__ring_peek(sf__ring *r, sf_proc_msg *msg)
{
    ring_shared *s = r->s;
    for (;;) {
        uint64_t head = atomic_load_explicit(&s->head, memory_order_acquire);
        if (r->tail == head) {
            publish_tail(r);
            return 0;
        }
        /* head, lengths and kinds are in memory the worker writes: a
         * worker that corrupted it must not make us read out of bounds */
        uint64_t published = head - r->tail; /* huge if head went backwards */
        size_t offset = (size_t)(r->tail & (r->size - 1));
        if (published > r->size || published % RECORD_HEADER)
            return -EPROTO;
        const char *p = s->data + offset;
        uint32_t len, kind;
        memcpy(&len, p, 4);
        memcpy(&kind, p + 4, 4);
        size_t bytes = record_bytes(len);
        if (bytes > published || bytes > r->size - offset)
            return -EPROTO;
        if (kind == KIND_PAD) {
            r->tail += record_bytes(len);
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
    r->tail += record_bytes(msg->len);
    assert(r->tail % RECORD_HEADER == 0); /* peek checked it against head */
    if (r->tail - r->tail_published >= r->size / 8)
        publish_tail(r);
}

int sf__ring_announce_sleep(sf__ring *r)
{
    ring_shared *s = r->s;
    publish_tail(r);
    atomic_store(&s->reader_asleep, 1);
    if (atomic_load(&s->head) != r->tail) {
        atomic_store(&s->reader_asleep, 0);
        return 1; /* a record came meanwhile: do not sleep */
    }
    return 0;
}

int sf__ring_empty(sf__ring *r)
{
    return atomic_load_explicit(&r->s->head, memory_order_acquire) == r->tail;
}

double sf__ring_fill(sf__ring *r)
{
    uint64_t head = atomic_load_explicit(&r->s->head, memory_order_acquire);
    return (double)(head - r->tail) / (double)r->size;
}

void sf__ring_woke(sf__ring *r) { atomic_store(&r->s->reader_asleep, 0); }

void sf__ring_cancel_below(sf__ring *r, uint64_t id)
{
    ring_shared *s = r->s;
    uint64_t old = atomic_load(&s->cancel_below);
    while (old < id && !atomic_compare_exchange_weak(&s->cancel_below, &old, id))
        ;
}
