/* lib/launch.c: the coordinator's running half. A launch posts one job per planned lane; each
 * lane thread walks its list, collects the events of the task's dependencies (waiting on the
 * host only until a dependency has been *enqueued*, never until it has finished), enqueues the
 * task with that wait list and publishes its event. okto_graph_wait waits for the lane threads
 * and then for the exit tasks' events. */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

typedef struct lane_job {
    okto__job base;
    okto_graph *g;
    int lane;                    /* plan lane */
    cl_event *wait;              /* scratch wait list, max deps long */
} lane_job;

static void lane_done(okto_graph *g)
{
    pthread_mutex_lock(&g->lock);
    if (--g->lanes_left == 0)
        pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void wake_waiters(okto_graph *g)
{
    /* seq_cst pairs with the waiter's increment-then-check: either it sees the new state or we
     * see it waiting and take the lock it sleeps under */
    if (atomic_load(&g->waiters) > 0) {
        pthread_mutex_lock(&g->lock);
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
    }
}

static void run_fail(okto_graph *g, int ti, const char *what, cl_int err)
{
    pthread_mutex_lock(&g->lock);
    if (g->run_status == OKTO_OK) {
        const okto__task *t = &g->tasks[ti];
        g->run_status = err == CL_OUT_OF_RESOURCES || err == CL_MEM_OBJECT_ALLOCATION_FAILURE
                            ? OKTO_ENOMEM : OKTO_ECL;
        snprintf(g->run_error, sizeof g->run_error,
                 "task %d (%s, part %d of %d, lane %d) failed: %s: %s (%d)", ti, t->op,
                 t->part, t->nparts ? t->nparts : 1, t->lane, what, okto__cl_name(err),
                 (int)err);
    }
    atomic_store(&g->abort, 1);
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* Returns 0 once task d of this run is enqueued, -1 if the run was aborted meanwhile.
 *
 * It yields before it sleeps: the task waited for is usually a few microseconds of host work
 * away on another lane thread, and on a machine with fewer cores than threads (PoCL's workers,
 * the lanes, the caller) sched_yield hands the core to exactly that work, while a condition
 * variable costs a wake-up of tens to hundreds of microseconds. Measured with okto-train's
 * default step (112 tasks of a few us): 64 spins then sleep gave heft 0.59x of sequential,
 * 2000 yields then sleep 0.93x. The bound keeps a long wait from burning a core. */
#define OKTO__WAIT_YIELDS 2000
static int wait_enqueued(okto_graph *g, int d, unsigned gen)
{
    okto__task *t = &g->tasks[d];
    for (int spin = 0; spin < OKTO__WAIT_YIELDS; spin++) {
        if (atomic_load_explicit(&t->gen, memory_order_acquire) == gen)
            return 0;
        if (atomic_load(&g->abort))
            return -1;
        sched_yield();
    }
    pthread_mutex_lock(&g->lock);
    atomic_fetch_add(&g->waiters, 1);
    while (atomic_load(&t->gen) != gen && !atomic_load(&g->abort))
        pthread_cond_wait(&g->cond, &g->lock);
    atomic_fetch_sub(&g->waiters, 1);
    pthread_mutex_unlock(&g->lock);
    return atomic_load(&t->gen) == gen ? 0 : -1;
}

static cl_int enqueue_kernel(okto__task *t, const okto__exec *x, cl_uint nwait,
                             const cl_event *wait, cl_event *done)
{
    return clEnqueueNDRangeKernel(x->queue, t->kernel, t->work_dim, NULL, t->global,
                                  t->has_local ? t->local : NULL, nwait, nwait ? wait : NULL,
                                  done);
}

static void run_lane(okto__job *base)
{
    lane_job *job = (lane_job *)base;
    okto_graph *g = job->g;
    okto_context *ctx = g->ctx;
    const okto__plan *p = &g->plan;
    unsigned gen = g->gen;
    int seq = p->sched == OKTO_SCHED_SEQUENTIAL;
    okto__lane *lane = seq ? &ctx->seq : &ctx->lanes[job->lane];
    okto__exec x = {ctx, seq ? NULL : lane, lane->queue, seq || !lane->out_of_order};

    for (int k = 0; k < p->count[job->lane]; k++) {
        if (atomic_load_explicit(&g->abort, memory_order_relaxed))
            break;
        int ti = p->order[job->lane][k];
        okto__task *t = &g->tasks[ti];
        cl_uint nwait = 0;
        if (!seq) {
            int ok = 1;
            for (int d = 0; d < t->ndeps && ok; d++) {
                okto__task *dt = &g->tasks[t->deps[d]];
                if (dt->lane == job->lane && x.in_order)
                    continue; /* the queue orders it already */
                if (dt->lane != job->lane && wait_enqueued(g, t->deps[d], gen) < 0)
                    ok = 0;
                else if (dt->ev)
                    job->wait[nwait++] = dt->ev;
            }
            if (!ok)
                break;
        }
        cl_event ev = NULL;
        cl_int err = (t->enqueue ? t->enqueue : enqueue_kernel)(t, &x, nwait, job->wait, &ev);
        if (err != CL_SUCCESS) {
            run_fail(g, ti, t->enqueue ? "enqueue" : "clEnqueueNDRangeKernel", err);
            break;
        }
        t->ev = ev;
        if (t->flush && !seq)
            clFlush(x.queue);
        /* seq_cst, not just release: wake_waiters then loads g->waiters, and a release store
         * may be reordered after that load (store-load reordering, seen on x86), so the
         * publisher could read waiters == 0 while the waiter, having bumped it, still reads
         * the old gen and sleeps with nobody left to wake it (a lost wakeup: a hang) */
        atomic_store(&t->gen, gen);
        if (!seq)
            wake_waiters(g);
    }
    clFlush(x.queue);
    lane_done(g);
}

void okto__release_events(okto_graph *g)
{
    for (int i = 0; i < g->ntasks; i++) {
        if (g->tasks[i].ev) {
            clReleaseEvent(g->tasks[i].ev);
            g->tasks[i].ev = NULL;
        }
        if (g->tasks[i].ev_start) {
            clReleaseEvent(g->tasks[i].ev_start);
            g->tasks[i].ev_start = NULL;
        }
    }
    g->has_run = 0;
}

static void inflight(okto_graph *g, int delta)
{
    for (int i = 0; i < g->nstores; i++)
        atomic_fetch_add(&g->stores[i].st->inflight, delta);
}

/* heft checked against the sequential plan. HEFT's model cannot see everything that costs
 * time (on a CPU device the lanes' threads and the kernels share the cores; a hand-off between
 * lanes costs tens of us under PoCL), so a graph of many tiny dependent tasks can run slower
 * on its HEFT plan than in one in-order queue. The heft policy therefore runs its first two
 * launches on the heft plan (the perf model learns), a third on the sequential plan (the first
 * run on a queue is slow: not counted), then alternates the two plans for six runs and keeps
 * whichever was faster, sequential only when clearly so (by 10%): the best of three runs each,
 * interleaved, because on a shared machine other work only ever makes a run slower and the
 * machine's speed drifts. okto_graph_report says which plan ran. Changing the graph or its
 * policy starts the trial over. */
#define OKTO__TRIAL_WARM 3 /* heft, heft, sequential: not timed */
#define OKTO__TRIAL_EACH 3
#define OKTO__TRIAL_RUNS (OKTO__TRIAL_WARM + 2 * OKTO__TRIAL_EACH)

static okto_sched heft_plan_for_run(const okto_graph *g)
{
    if (g->trial.decided)
        return g->trial.choice;
    int n = g->trial.runs;
    if (n < OKTO__TRIAL_WARM)
        return n < OKTO__TRIAL_WARM - 1 ? OKTO_SCHED_HEFT : OKTO_SCHED_SEQUENTIAL;
    return (n - OKTO__TRIAL_WARM) % 2 ? OKTO_SCHED_SEQUENTIAL : OKTO_SCHED_HEFT;
}

static void heft_observe(okto_graph *g, double ms)
{
    if (g->trial.decided)
        return;
    int n = g->trial.runs++;
    double *best = n < OKTO__TRIAL_WARM ? NULL
                   : (n - OKTO__TRIAL_WARM) % 2 ? &g->trial.seq_ms
                                                : &g->trial.heft_ms;
    if (best && (*best == 0 || ms < *best))
        *best = ms;
    if (g->trial.runs == OKTO__TRIAL_RUNS) {
        g->trial.decided = 1;
        g->trial.choice = g->trial.seq_ms < 0.9 * g->trial.heft_ms ? OKTO_SCHED_SEQUENTIAL
                                                                   : OKTO_SCHED_HEFT;
        okto__log(g->ctx, OKTO_LOG_INFO,
                  "heft trial of a %d-task graph: heft plan %.3f ms, sequential plan %.3f ms: "
                  "keeping %s", g->ntasks, g->trial.heft_ms, g->trial.seq_ms,
                  okto_sched_name(g->trial.choice));
    }
}

okto_status okto__launch(okto_graph *g)
{
    okto_context *ctx = g->ctx;
    okto__release_events(g);
    okto_sched sched = okto__graph_sched(g);
    if (sched == OKTO_SCHED_HEFT)
        sched = heft_plan_for_run(g);
    int stale = !g->planned || g->plan.sched != sched ||
                (sched == OKTO_SCHED_HEFT &&
                 g->plan.perf_version != atomic_load(&ctx->perf.version));
    if (stale) {
        okto_status s = okto__plan_make(g, sched);
        if (s != OKTO_OK)
            return s;
        free(g->jobs);
        int maxdeps = 1;
        for (int i = 0; i < g->ntasks; i++)
            if (g->tasks[i].ndeps > maxdeps)
                maxdeps = g->tasks[i].ndeps;
        /* one allocation: the jobs, then each job's wait-list scratch */
        size_t jobs_bytes = (size_t)g->plan.nlanes * sizeof(lane_job);
        g->jobs = malloc(jobs_bytes + (size_t)g->plan.nlanes * (size_t)maxdeps * sizeof(cl_event));
        if (!g->jobs) {
            g->planned = 0;
            return okto__fail(ctx, OKTO_ENOMEM, "okto_graph_launch: out of host memory");
        }
        cl_event *scratch = (cl_event *)((char *)g->jobs + jobs_bytes);
        for (int l = 0; l < g->plan.nlanes; l++) {
            lane_job *j = &((lane_job *)g->jobs)[l];
            j->base.run = run_lane;
            j->g = g;
            j->lane = l;
            j->wait = scratch + (size_t)l * (size_t)maxdeps;
        }
    }
    g->gen++;
    if (g->gen == 0)
        g->gen = 1;
    atomic_store(&g->abort, 0);
    g->run_status = OKTO_OK;
    g->run_error[0] = 0;
    int posted = 0;
    for (int l = 0; l < g->plan.nlanes; l++)
        posted += g->plan.count[l] > 0;
    g->lanes_left = posted;
    inflight(g, 1);
    g->t_launch = okto__now_ms();
    /* all lanes get this launch's jobs in one step, in the same order relative to every other
     * launch: that order is what rules out two lanes waiting on each other across graphs */
    pthread_mutex_lock(&ctx->post_lock);
    for (int l = 0; l < g->plan.nlanes; l++)
        if (g->plan.count[l] > 0)
            okto__lane_post(sched == OKTO_SCHED_SEQUENTIAL ? &ctx->seq : &ctx->lanes[l],
                            &((lane_job *)g->jobs)[l].base);
    pthread_mutex_unlock(&ctx->post_lock);
    return OKTO_OK;
}

/* Names the first task whose event ended in an error (a kernel that failed on the device), or
 * else the task whose wait failed. */
static void find_failed_event(okto_graph *g, int waited)
{
    for (int i = 0; i < g->ntasks; i++) {
        cl_int st = CL_COMPLETE;
        if (g->tasks[i].ev &&
            clGetEventInfo(g->tasks[i].ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st,
                           NULL) == CL_SUCCESS &&
            st < 0) {
            run_fail(g, i, "execution", st);
            return;
        }
    }
    run_fail(g, waited, "clWaitForEvents", CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
}

okto_status okto__wait(okto_graph *g)
{
    pthread_mutex_lock(&g->lock);
    while (g->lanes_left > 0)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);

    /* Every enqueued task is waited for, failed run or not, so nothing is still running when
     * the events are released or the tensors are freed. Exit tasks cover the rest in a good
     * run; after a failure some successors were never enqueued, so wait for them all. */
    int failed = g->run_status != OKTO_OK;
    for (int i = 0; i < g->ntasks; i++) {
        okto__task *t = &g->tasks[i];
        if (t->ev && (failed || t->nsucc == 0)) {
            cl_int err = clWaitForEvents(1, &t->ev);
            if (err != CL_SUCCESS && !failed) {
                find_failed_event(g, i);
                failed = 1;
                i = -1; /* restart: wait for everything */
            }
        }
    }
    g->t_done = okto__now_ms();
    inflight(g, -1);
    g->runs++;
    g->has_run = 1;
    okto_status s = g->run_status;
    if (s != OKTO_OK) {
        okto__fail(g->ctx, s, "%s", g->run_error);
    } else {
        /* learn while the model is young, then now and then to follow drift */
        if (g->runs <= 4 || g->runs % 16 == 0)
            okto__perf_learn(g);
        if (okto__graph_sched(g) == OKTO_SCHED_HEFT)
            heft_observe(g, g->t_done - g->t_launch);
    }
    return s;
}

okto_status okto_graph_launch(okto_graph *g)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_launch: g must not be NULL");
    int idle = 0;
    if (!atomic_compare_exchange_strong(&g->busy, &idle, 1))
        return okto__fail(g->ctx, OKTO_EBUSY,
                          "okto_graph_launch: this graph is already in flight; wait for it");
    okto_status s = okto__launch(g);
    if (s != OKTO_OK)
        atomic_store(&g->busy, 0);
    return s;
}

okto_status okto_graph_wait(okto_graph *g)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_wait: g must not be NULL");
    int launched = 1;
    if (!atomic_compare_exchange_strong(&g->busy, &launched, 2))
        return launched == 0 ? OKTO_OK
                             : okto__fail(g->ctx, OKTO_EBUSY,
                                          "okto_graph_wait: another thread is waiting already");
    okto_status s = okto__wait(g);
    atomic_store(&g->busy, 0);
    /* OKTO_TRACE: written once the graph is idle again, because okto_graph_trace refuses a
     * graph in flight (its events are being replaced) */
    if (s == OKTO_OK && g->ctx->cfg.trace_path[0])
        okto_graph_trace(g, g->ctx->cfg.trace_path);
    return s;
}

okto_status okto_graph_run(okto_graph *g)
{
    okto_status s = okto_graph_launch(g);
    return s != OKTO_OK ? s : okto_graph_wait(g);
}
