/* fuzz_proc.c -- the parent's decoders of what a worker process sends,
 * fed what a broken or hostile worker might: framed messages on the result
 * pipe (proc.c) and records in the shared result ring (proc_ring.c).
 *
 * A seeded random-mutation driver (no clang here for libFuzzer): each round
 * builds valid traffic, then flips bytes, overwrites length fields with
 * extreme values, truncates the stream, or moves the ring's head; the
 * decoders must return messages that lie inside what was sent, or an
 * error, and never read out of bounds: built with ASan and UBSan, any such
 * read aborts the run.  Usage: fuzz_proc ROUNDS [SEED]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proc_ring.h"
#include "streamfutures_proc.h"

static uint64_t rng_state;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint32_t below(uint32_t n) { return (uint32_t)(next_random() % n); }

/* Lengths a hostile header may claim. */
static uint32_t extreme_length(void)
{
    static const uint32_t lengths[] = {0, 1, 15, 16, 17, 4095, 4096, 65535, 65536,
                                       0x7fffffffu, 0x80000000u, 0xfffffff0u, 0xffffffffu};
    return lengths[below(sizeof lengths / sizeof lengths[0])];
}

static void mutate(unsigned char *bytes, size_t len)
{
    if (!len)
        return;
    int edits = 1 + (int)below(8);
    for (int e = 0; e < edits; e++) {
        size_t at = below((uint32_t)len);
        switch (below(3)) {
        case 0:
            bytes[at] ^= (unsigned char)(1u << below(8));
            break;
        case 1:
            bytes[at] = (unsigned char)next_random();
            break;
        default: { /* an aligned word: a length field, most likely */
            size_t word = at - at % 4;
            uint32_t v = extreme_length();
            if (word + 4 <= len)
                memcpy(bytes + word, &v, 4);
        }
        }
    }
}

/* Valid framed messages (16-byte header: u32 length, u32 kind, u64 id). */
static size_t build_stream(unsigned char *out, size_t cap)
{
    size_t len = 0;
    int messages = 1 + (int)below(8);
    for (int i = 0; i < messages; i++) {
        uint32_t payload = below(300), kind = below(4);
        uint64_t id = next_random();
        if (len + 16 + payload > cap)
            break;
        memcpy(out + len, &payload, 4);
        memcpy(out + len + 4, &kind, 4);
        memcpy(out + len + 8, &id, 8);
        for (uint32_t b = 0; b < payload; b++)
            out[len + 16 + b] = (unsigned char)next_random();
        len += 16 + payload;
    }
    return len;
}

static long messages_seen, errors_seen;

static void fuzz_pipe(void)
{
    unsigned char stream[8192];
    size_t len = build_stream(stream, sizeof stream);
    mutate(stream, len);
    if (below(4) == 0)
        len = below((uint32_t)len + 1); /* cut anywhere */
    int results[2], tasks[2];
    if (pipe2(results, O_CLOEXEC) || pipe2(tasks, O_CLOEXEC))
        abort();
    if (write(results[1], stream, len) != (ssize_t)len)
        abort();
    close(results[1]);
    close(tasks[0]);
    sf_proc_channel *ch = NULL;
    if (sf_proc_channel_open(&ch, getpid(), tasks[1], results[0], -1, SF_PROC_NO_PIDFD) != 0)
        abort();
    size_t taken = 0;
    for (;;) {
        sf_proc_msg msg;
        int rc = sf_proc_recv(ch, &msg, sf_now_ns() + 1000000000);
        if (rc != 0) {
            if (rc != -EPIPE) { /* end of input is the only way out */
                fprintf(stderr, "fuzz_proc: recv returned %d\n", rc);
                abort();
            }
            break;
        }
        taken += 16 + (size_t)msg.len;
        if (taken > len) { /* a message the worker never sent */
            fprintf(stderr, "fuzz_proc: a message beyond the input\n");
            abort();
        }
        messages_seen++;
    }
    sf_proc_channel_close(ch);
}

static void fuzz_ring(void)
{
    int fd = sf_proc_ring_create(4096);
    if (fd < 0)
        abort();
    sf__ring *writer = sf__ring_map(fd), *reader = sf__ring_map(fd);
    if (!writer || !reader)
        abort();
    /* never more than fits (8 records of at most 416 bytes, and a pad, in
     * 4096): a put would wait for room */
    unsigned char payload[400];
    int records = (int)below(9);
    for (int i = 0; i < records; i++) {
        uint32_t len = below(sizeof payload);
        for (uint32_t b = 0; b < len; b++)
            payload[b] = (unsigned char)next_random();
        if (sf__ring_put(writer, (uint64_t)i, below(4), payload, len, -1) < 0)
            abort();
        /* the reader takes some, so the head wraps and pads appear */
        sf_proc_msg msg;
        if (below(2) && sf__ring_peek(reader, &msg) == 1)
            sf__ring_consume(reader, &msg);
    }
    /* what a worker that corrupts its memory may leave in the shared part */
    size_t bytes = (size_t)lseek(fd, 0, SEEK_END);
    unsigned char *shared = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shared == MAP_FAILED)
        abort();
    if (below(3) == 0) {
        _Atomic uint64_t *head = (_Atomic uint64_t *)shared;
        uint64_t moves[] = {1, 8, 16, 4096, 4097, (uint64_t)1 << 40, UINT64_MAX};
        atomic_fetch_add(head, moves[below(7)]);
    }
    mutate(shared + 6 * 64, bytes - 6 * 64);
    for (int i = 0; i < 1000; i++) {
        sf_proc_msg msg;
        int rc = sf__ring_peek(reader, &msg);
        if (rc <= 0) {
            errors_seen += rc < 0;
            break;
        }
        const unsigned char *data = (const unsigned char *)msg.data;
        volatile unsigned char sum = 0;
        for (uint32_t b = 0; b < msg.len; b++)
            sum ^= data[b]; /* ASan stops any read outside the mapping */
        messages_seen++;
        sf__ring_consume(reader, &msg);
    }
    munmap(shared, bytes);
    sf__ring_unmap(writer);
    sf__ring_unmap(reader);
    close(fd);
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    if (!rng_state)
        rng_state = 1;
    signal(SIGPIPE, SIG_IGN);
    for (long r = 0; r < rounds; r++) {
        fuzz_pipe();
        fuzz_ring();
    }
    printf("fuzz_proc: %ld rounds, %ld messages decoded, %ld corrupt rings refused, no fault\n",
           rounds, messages_seen, errors_seen);
    return 0;
}
