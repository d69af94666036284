// A persistent worker pool for the kernels' parallel-for: workers spin briefly on a generation counter before
// sleeping, so the thousands of short parallel regions of a step do not each pay a thread wake-up.
// Work split and results are the caller's (static ranges by thread index), so they do not depend on the pool.
#include "CKernelsX86.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define GLIDE_PAUSE() _mm_pause()
#else
#define GLIDE_PAUSE() ((void)0)
#endif

#define GLIDE_POOL_MAX_WORKERS 63
#define GLIDE_POOL_SPINS 20000      /* ~50-100 us of pause loops before a worker sleeps */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;     /* one parallel region at a time */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cond = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned long generation;
static _Atomic long pending;
static glide_pool_task task_fn;
static void *task_ctx;
static long task_threads;
static int worker_count;
static _Thread_local int inside_region;
static unsigned long created_generation;

static void *worker_main(void *arg) {
    long index = (long)(intptr_t)arg;
    /* Created (under pool_lock) before the region that needs it is published: start from the generation of
       that moment, not from whatever it is when this thread first runs. */
    unsigned long seen = created_generation;
    inside_region = 1;
    for (;;) {
        unsigned long now;
        int spins = 0;
        while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen && spins < GLIDE_POOL_SPINS) {
            GLIDE_PAUSE();
            spins++;
        }
        if (now == seen) {
            pthread_mutex_lock(&wake_lock);
            while ((now = atomic_load_explicit(&generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&wake_cond, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = now;
        if (index < task_threads) task_fn(task_ctx, index, task_threads);
        atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel);
    }
    return NULL;
}

static void reset_in_child(void);
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, reset_in_child); }

/* A forked child has only the forking thread: it starts a pool of its own. */
static void reset_in_child(void) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    pool_lock = fresh; wake_lock = fresh; wake_cond = fresh_cond;
    worker_count = 0;
    inside_region = 0;
}

int glide_pool_run(long threads, glide_pool_task fn, void *ctx) {
    static pthread_once_t registered = PTHREAD_ONCE_INIT;
    if (threads <= 1 || threads > GLIDE_POOL_MAX_WORKERS + 1 || inside_region) return 0;
    pthread_once(&registered, register_fork_handler);
    if (pthread_mutex_trylock(&pool_lock) != 0) return 0;    /* another thread's region is running */
    created_generation = atomic_load_explicit(&generation, memory_order_acquire);
    while (worker_count < threads - 1) {
        pthread_t id;
        if (pthread_create(&id, NULL, worker_main, (void *)(intptr_t)(worker_count + 1)) != 0) break;
        pthread_detach(id);
        worker_count++;
    }
    if (worker_count < threads - 1) { pthread_mutex_unlock(&pool_lock); return 0; }
    task_fn = fn; task_ctx = ctx; task_threads = threads;
    atomic_store_explicit(&pending, worker_count, memory_order_release);
    pthread_mutex_lock(&wake_lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&wake_cond);
    pthread_mutex_unlock(&wake_lock);
    inside_region = 1;
    fn(ctx, 0, threads);
    inside_region = 0;
    long spins = 0;
    while (atomic_load_explicit(&pending, memory_order_acquire) > 0) {
        GLIDE_PAUSE();
        if (++spins > 1000000) { sched_yield(); spins = 0; }
    }
    pthread_mutex_unlock(&pool_lock);
    return 1;
}
