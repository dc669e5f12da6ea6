// A small thread pool for Ponder's parallel loops (see include/ckernels.h, ponder_pool_run).
//
// Dispatch's concurrentPerform wakes a sleeping worker through the kernel on every call; decoding a
// 0.5B model makes ~200 parallel calls per token, and on a 2-core VM the wake-ups and context
// switches cost more than the products (perf: 10% of samples in _raw_spin_unlock_irqrestore under
// _dispatch_root_queue_poke_slow). Here workers spin for a while after each job, then sleep on a
// condition variable, as OpenMP runtimes and OpenBLAS's server do.
//
// Every worker takes part in every job and acknowledges it before the caller returns, so a worker can
// never carry a claim from one job into the next. Parts are claimed dynamically; which thread runs a
// part never changes what the part computes.

#include "ckernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PONDER_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define PONDER_RELAX() __asm__ __volatile__("yield")
#else
#define PONDER_RELAX() ((void)0)
#endif

#define PONDER_POOL_MAX 256
// Pauses a worker spins before it sleeps: some 0.2-1 ms, longer than the gaps between a decoding
// step's products, far shorter than a phase without parallel work.
#define PONDER_SPIN 20000
// Pauses between two sched_yield calls while spinning: when another process holds this core (a
// shared machine, or more threads than cores), the thread being waited for may be queued behind
// the spinner, which would otherwise burn its whole time slice. Unloaded, a yield returns at once.
#define PONDER_YIELD_EVERY 256

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int workers;
    _Atomic int busy;  // a job is running (a second caller runs its loop inline)
    _Atomic long generation;
    _Atomic long next;
    _Atomic long acked;  // workers finished with the current generation
    _Atomic int sleepers;
    long parts;
    ponder_body_fn body;
    void *arg;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static _Thread_local int inside_job;

static void claim_parts(void) {
    long parts = pool.parts;
    for (;;) {
        long p = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed);
        if (p >= parts) return;
        pool.body(pool.arg, p);
    }
}

static void *worker(void *start) {
    inside_job = 1;
    // The generation when it was started, before the job that started it was published: reading it
    // here instead could see that job's and wait for the next.
    long seen = (long)(intptr_t)start;
    for (;;) {
        long g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < PONDER_SPIN) {
                if (spins % PONDER_YIELD_EVERY == 0) sched_yield();
                PONDER_RELAX();
                continue;
            }
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
            spins = 0;
        }
        seen = g;
        claim_parts();
        atomic_fetch_add_explicit(&pool.acked, 1, memory_order_release);
    }
    return NULL;
}

/// Starts workers until there are `n` (never fewer than before); returns how many exist.
static int ensure_workers(int n) {
    if (n > PONDER_POOL_MAX) n = PONDER_POOL_MAX;
    while (pool.workers < n) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker, (void *)(intptr_t)atomic_load(&pool.generation));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers++;
    }
    return pool.workers;
}

void ponder_pool_run(long parts, long threads, ponder_body_fn body, void *arg) {
    int expected = 0;
    if (parts <= 1 || threads <= 1 || inside_job ||
        !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        for (long p = 0; p < parts; p++) body(arg, p);
        return;
    }
    int workers = ensure_workers((int)(threads - 1));
    pool.parts = parts;
    pool.body = body;
    pool.arg = arg;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.acked, 0, memory_order_relaxed);
    // Sequentially consistent, like the sleepers count below and the worker's own increment and
    // re-check: a worker that is about to sleep either sees this job or is seen asleep and woken.
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    inside_job = 1;
    claim_parts();
    inside_job = 0;
    // Every part is claimed once the caller's loop ends; each worker acknowledges after its last.
    for (long spins = 1; atomic_load_explicit(&pool.acked, memory_order_acquire) < workers; spins++) {
        if (spins % PONDER_YIELD_EVERY == 0) sched_yield();
        PONDER_RELAX();
    }
    atomic_store_explicit(&pool.busy, 0, memory_order_release);
}

// Autograd's depth of `noGrad` (while above 0 no op records), one count for every thread: the sampler
// decodes slices of a batch on several threads at once, each entering and leaving `noGrad`.
static _Atomic long nograd_depth;

long ponder_nograd_add(long delta) { return atomic_fetch_add_explicit(&nograd_depth, delta, memory_order_relaxed) + delta; }

long ponder_nograd_depth(void) { return atomic_load_explicit(&nograd_depth, memory_order_relaxed); }
