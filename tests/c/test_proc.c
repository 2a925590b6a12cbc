/* test_proc.c -- the process transport without Python: forked workers
 * that echo, crash, exit with a code, hang, or move large payloads.  Every
 * worker is reaped by the test that started it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "streamfutures_proc.h"
#include "test.h"

static int gate_fd = -1;   /* the worker's read end of a gate pipe */
static int worker_ring_fd = -1, worker_result_fd = -1;

/* A worker that corrupts its result ring, as a crashing one may: a head
 * beyond the ring, a head off the record grid, or a record whose length
 * runs past what was published.  The layout is proc_ring.c's: the head at
 * offset 0, the data after six 64-byte lines. */
static void smash_ring(char how)
{
    size_t bytes = (size_t)lseek(worker_ring_fd, 0, SEEK_END);
    char *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, worker_ring_fd, 0);
    if (base == MAP_FAILED)
        _exit(8);
    _Atomic uint64_t *head = (_Atomic uint64_t *)base;
    uint64_t h = atomic_load(head);
    if (how == 'h')
        atomic_store(head, h + ((uint64_t)1 << 40));
    else if (how == 'a')
        atomic_store(head, h + 8);
    else { /* a record claiming 4 GiB, of which 32 bytes are published */
        char *record = base + 6 * 64 + (h & (bytes - 6 * 64 - 1));
        uint32_t len = 0xfffffff0u, kind = 1;
        memcpy(record, &len, 4);
        memcpy(record + 4, &kind, 4);
        atomic_store(head, h + 32);
    }
    /* ring the doorbell (proc.c's kind) so a parent asleep looks now */
    uint32_t doorbell[4] = {0, 0xfffffffdu, 0, 0};
    if (write(worker_result_fd, doorbell, sizeof doorbell) != sizeof doorbell)
        _exit(8);
    for (;;)
        pause(); /* only a kill ends it */
}
static char big_reply[3 << 20];

/* One task = one item; the reply echoes it (kind 1), or is 2 MB (kind 2). */
static int handle(void *ctx, sf_proc_server *server, const sf_proc_msg *task)
{
    (void)ctx;
    const char *text = task->data;
    if (task->len == 5 && memcmp(text, "crash", 5) == 0)
        abort();
    if (task->len == 5 && memcmp(text, "exit7", 5) == 0)
        _exit(7);
    if (task->len == 4 && memcmp(text, "hang", 4) == 0)
        for (;;)
            pause();
    if (task->len == 4 && memcmp(text, "gate", 4) == 0) {
        char byte;
        if (read(gate_fd, &byte, 1) != 1)
            _exit(9);
    }
    if (task->len == 7 && memcmp(text, "smash:", 6) == 0)
        smash_ring(text[6]);
    if (task->len >= 4 && memcmp(text, "big:", 4) == 0)
        return sf_proc_reply(server, task->id, 2, big_reply, (uint32_t)atoi(text + 4));
    return sf_proc_reply(server, task->id, 1, task->data, task->len);
}

typedef struct worker {
    sf_proc_channel *ch;
    int pid, gate_w;
} worker;

static worker start_worker_with(int use_ring)
{
    int tasks[2], results[2], gate[2];
    int ring = use_ring ? sf_proc_ring_create(1 << 16) : -1;
    worker w = {NULL, -1, -1};
    if (pipe2(tasks, O_CLOEXEC) || pipe2(results, O_CLOEXEC) || pipe2(gate, O_CLOEXEC) ||
        (use_ring && ring < 0))
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a failed test */
        close(tasks[1]);
        close(results[0]);
        close(gate[1]);
        gate_fd = gate[0];
        worker_ring_fd = ring;
        worker_result_fd = results[1];
        _exit(sf_proc_serve(tasks[0], results[1], ring, handle, NULL, NULL) == 0 ? 0 : 3);
    }
    close(tasks[0]);
    close(results[1]);
    close(gate[0]);
    w.pid = pid;
    w.gate_w = gate[1];
    if (sf_proc_channel_open(&w.ch, pid, tasks[1], results[0], ring, SF_PROC_OPEN_PIDFD) != 0)
        abort();
    sf_proc_msg ready;
    if (sf_proc_recv(w.ch, &ready, -1) != 0 || ready.kind != SF_PROC_KIND_READY)
        abort();
    return w;
}

static worker start_worker(void) { return start_worker_with(1); }

/* Close the channel and reap the worker; returns its wait status. */
static int stop_worker(worker *w)
{
    int status = 0;
    sf_proc_channel_close(w->ch);
    close(w->gate_w);
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static int64_t in_ms(int ms) { return sf_now_ns() + (int64_t)ms * 1000000; }

static void echo_many(int *failed_, int use_ring)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker_with(use_ring);
    enum { N = 20000 };
    char text[32];
    for (uint64_t i = 0; i < N; i++) {
        int len = snprintf(text, sizeof text, "task %llu", (unsigned long long)i);
        CHECK_EQ(sf_proc_send(w.ch, i, 0, text, (uint32_t)len), 0);
    }
    for (uint64_t i = 0; i < N; i++) {
        sf_proc_msg msg;
        int len = snprintf(text, sizeof text, "task %llu", (unsigned long long)i);
        CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
        CHECK_EQ(msg.id, i);
        CHECK_EQ(msg.kind, 1);
        CHECK_EQ(msg.len, len);
        CHECK(memcmp(msg.data, text, (size_t)len) == 0);
    }
    int status = stop_worker(&w);
    CHECK_EQ(status, 0); /* end of input: a clean exit (the wait status says how else) */
}

TEST(proc_echoes_many_tasks_in_order_through_the_ring) { echo_many(failed_, 1); }
TEST(proc_echoes_many_tasks_in_order_through_the_pipe) { echo_many(failed_, 0); }

TEST(proc_large_payloads_both_ways_do_not_deadlock)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    static char payload[1 << 20];
    memset(payload, 'x', sizeof payload);
    /* 20 MB of tasks queued before reading anything, 2 MB replies each
     * other task: both pipes fill up many times over */
    for (uint64_t i = 0; i < 20; i++) {
        if (i % 2)
            CHECK_EQ(sf_proc_send(w.ch, i, 0, "big:2000000", 11), 0);
        else
            CHECK_EQ(sf_proc_send(w.ch, i, 0, payload, sizeof payload), 0);
    }
    for (uint64_t i = 0; i < 20; i++) {
        sf_proc_msg msg;
        CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(20000)), 0);
        CHECK_EQ(msg.id, i);
        CHECK_EQ(msg.len, i % 2 ? 2000000 : sizeof payload);
    }
    stop_worker(&w);
}

TEST(proc_crash_returns_earlier_results_then_epipe)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "one", 3), 0);
    CHECK_EQ(sf_proc_send(w.ch, 2, 0, "two", 3), 0);
    CHECK_EQ(sf_proc_send(w.ch, 3, 0, "crash", 5), 0);
    CHECK_EQ(sf_proc_send(w.ch, 4, 0, "four", 4), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.id, 1);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.id, 2);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    int status = stop_worker(&w);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

static void corrupt_ring(int *failed_, const char *task)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "one", 3), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.id, 1);
    CHECK_EQ(sf_proc_send(w.ch, 2, 0, task, 7), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPROTO);
    CHECK_EQ(sf_proc_kill(w.ch, SIGKILL), 0);
    int status = stop_worker(&w);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(proc_a_ring_head_beyond_the_ring_is_refused_not_followed) { corrupt_ring(failed_, "smash:h"); }
TEST(proc_a_ring_head_off_the_record_grid_is_refused) { corrupt_ring(failed_, "smash:a"); }
TEST(proc_a_record_longer_than_what_was_published_is_refused) { corrupt_ring(failed_, "smash:l"); }

static void note_signal(int signo) { (void)signo; }
static int stop_on_signal(void *ctx) { (void)ctx; return 7; }

/* An idle worker interrupted by a signal tells its embedder (who runs its
 * signal handlers, and may stop serving), instead of reading on. */
TEST(proc_a_signal_reaches_the_embedder_of_an_idle_worker)
{
    int tasks[2], results[2];
    if (pipe2(tasks, O_CLOEXEC) || pipe2(results, O_CLOEXEC))
        abort();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct sigaction sa = {.sa_handler = note_signal}; /* no SA_RESTART */
        sigaction(SIGUSR1, &sa, NULL);
        close(tasks[1]);
        close(results[0]);
        int rc = sf_proc_serve(tasks[0], results[1], -1, handle, stop_on_signal, NULL);
        _exit(rc == 7 ? 7 : 3);
    }
    close(tasks[0]);
    close(results[1]);
    sf_proc_channel *ch = NULL;
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_channel_open(&ch, pid, tasks[1], results[0], -1, SF_PROC_OPEN_PIDFD), 0);
    CHECK_EQ(sf_proc_recv(ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.kind, SF_PROC_KIND_READY);
    /* a signal that lands before the worker sleeps in read() interrupts
     * nothing: send until one lands in it */
    int rc = -ETIMEDOUT;
    for (int attempt = 0; attempt < 100 && rc == -ETIMEDOUT; attempt++) {
        CHECK_EQ(sf_proc_kill(ch, SIGUSR1), 0);
        rc = sf_proc_recv(ch, &msg, in_ms(100));
    }
    CHECK_EQ(rc, -EPIPE);
    sf_proc_channel_close(ch);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

TEST(proc_exit_code_is_seen)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "exit7", 5), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    /* sending to a dead worker is not an error by itself; recv reports it */
    CHECK_EQ(sf_proc_send(w.ch, 2, 0, "late", 4), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    int status = stop_worker(&w);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

TEST(proc_a_hung_worker_times_out_and_can_be_killed)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "fine", 4), 0);
    CHECK_EQ(sf_proc_send(w.ch, 2, 0, "hang", 4), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.id, 1);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(50)), -ETIMEDOUT);
    CHECK_EQ(sf_proc_kill(w.ch, SIGKILL), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    int status = stop_worker(&w);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(proc_exit_message_stops_the_worker_after_its_results)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "a", 1), 0);
    CHECK_EQ(sf_proc_send(w.ch, 2, SF_PROC_KIND_EXIT, NULL, 0), 0);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
    CHECK_EQ(msg.id, 1);
    CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), -EPIPE);
    int status = stop_worker(&w);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A finished result is sent before the next task starts: here the next
 * task cannot finish until the parent has seen the previous result (it
 * opens the gate only then). */
TEST(proc_results_of_slow_tasks_are_not_held_back)
{
    signal(SIGPIPE, SIG_IGN);
    worker w = start_worker();
    sf_proc_msg msg;
    CHECK_EQ(sf_proc_send(w.ch, 1, 0, "fast", 4), 0);
    CHECK_EQ(sf_proc_send(w.ch, 2, 0, "gate", 4), 0);
    CHECK_EQ(sf_proc_send(w.ch, 3, 0, "gate", 4), 0);
    for (uint64_t i = 1; i <= 3; i++) {
        CHECK_EQ(sf_proc_recv(w.ch, &msg, in_ms(10000)), 0);
        CHECK_EQ(msg.id, i);
        CHECK_EQ(write(w.gate_w, "g", 1), 1);
    }
    stop_worker(&w);
}
