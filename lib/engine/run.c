/* lib/engine/run.c: the coordinator's running half, and the run object that owns a run's
 * events. A launch posts one job per planned lane; each lane thread walks its list, collects
 * the events of the task's dependencies (waiting on the host only until a dependency has been
 * *enqueued*, never until it has finished), enqueues the task with that wait list and publishes
 * its event. okto_graph_wait waits for the lane threads and then for the exit tasks' events. */
#include "engine.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

typedef struct lane_job {
    okto__job base;
    okto_graph *g;
    int lane;       /* plan lane */
    cl_event *wait; /* wait-list scratch */
} lane_job;

static void run_fail(okto_graph *g, int ti, const char *what, cl_int err)
{
    pthread_mutex_lock(&g->lock);
    if (g->run_status == OKTO_OK) {
        const okto__task *t = &g->tasks[ti];
        g->run_status = okto__cl_status(err);
        snprintf(g->run_error, sizeof g->run_error,
                 "task %d (%s, part %d of %d, lane %d) failed: %s: %s (%d)", ti,
                 okto__ops[t->op]->name, t->part, t->nparts ? t->nparts : 1,
                 g->plan.lane ? g->plan.lane[ti] : -1, what, okto__cl_name(err), (int)err);
    }
    atomic_store(&g->abort, 1);
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void CL_CALLBACK done_cb(cl_event e, cl_int status, void *data)
{
    (void)e;
    cl_event user = data;
    clSetUserEventStatus(user, status < 0 ? status : CL_COMPLETE);
    clReleaseEvent(user);
}

/* The last lane to finish enqueueing completes okto_graph_launch_ex's done event: a marker
 * after every exit task, whose completion sets the user event. */
static void signal_done(okto_graph *g, okto__lane *lane)
{
    okto__run *r = &g->run;
    if (!r->done_user)
        return;
    if (atomic_load(&g->abort)) {
        clSetUserEventStatus(r->done_user, CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
        return;
    }
    cl_event *ev = malloc((size_t)(g->ntasks ? g->ntasks : 1) * sizeof *ev), marker = NULL;
    cl_uint n = 0;
    for (int i = 0; ev && i < g->ntasks; i++)
        if (g->tasks[i].nsucc == 0 && r->ev[i])
            ev[n++] = r->ev[i];
    cl_int err = ev ? clEnqueueMarkerWithWaitList(lane->queue, n, n ? ev : NULL, &marker)
                    : CL_OUT_OF_HOST_MEMORY;
    free(ev);
    if (err == CL_SUCCESS) {
        clRetainEvent(r->done_user);
        err = clSetEventCallback(marker, CL_COMPLETE, done_cb, r->done_user);
        if (err != CL_SUCCESS)
            clReleaseEvent(r->done_user);
        clReleaseEvent(marker);
        clFlush(lane->queue);
    }
    if (err != CL_SUCCESS)
        clSetUserEventStatus(r->done_user, err);
}

static void lane_done(okto_graph *g, okto__lane *lane)
{
    pthread_mutex_lock(&g->lock);
    if (--g->lanes_left == 0) {
        signal_done(g, lane);
        pthread_cond_broadcast(&g->cond);
    }
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
    atomic_uint *tg = &g->run.gen[d];
    for (int spin = 0; spin < OKTO__WAIT_YIELDS; spin++) {
        if (atomic_load_explicit(tg, memory_order_acquire) == gen)
            return 0;
        if (atomic_load(&g->abort))
            return -1;
        sched_yield();
    }
    pthread_mutex_lock(&g->lock);
    atomic_fetch_add(&g->waiters, 1);
    while (atomic_load(tg) != gen && !atomic_load(&g->abort))
        pthread_cond_wait(&g->cond, &g->lock);
    atomic_fetch_sub(&g->waiters, 1);
    pthread_mutex_unlock(&g->lock);
    return atomic_load(tg) == gen ? 0 : -1;
}

/* Sets the lane's kernel object's arguments from the task's records and enqueues it. */
static cl_int enqueue_kernel(okto_graph *g, okto__lane *lane, const okto__task *t, cl_uint nwait,
                             const cl_event *wait, cl_event *done, const char **call)
{
    cl_kernel k;
    *call = "clCreateKernel";
    cl_int err = okto__lane_kernel(lane, t->kid, &k);
    /* the table still too small: growing it failed, not clCreateKernel (the fault sweep,
     * tests/fault, found that named as the call) */
    if (err != CL_SUCCESS && t->kid >= lane->nkernels)
        *call = "out of host memory growing the lane's kernel table";
    if (err != CL_SUCCESS)
        return err;
    *call = "clSetKernelArg";
    const unsigned char *p = g->args + t->args;
    for (cl_uint i = 0; i < t->nargs; i++) {
        uint32_t hdr[2];
        memcpy(hdr, p, 8);
        const void *val = p + 8;
        if (hdr[0] == OKTO__ARG_LOCAL) {
            cl_ulong bytes;
            memcpy(&bytes, val, sizeof bytes);
            err = clSetKernelArg(k, i, (size_t)bytes, NULL);
        } else {
            err = clSetKernelArg(k, i, hdr[1], val);
        }
        if (err != CL_SUCCESS)
            return err;
        p += 8 + (((size_t)hdr[1] + 7) & ~(size_t)7);
    }
    size_t global[3] = {t->global[0], t->global[1], t->global[2]};
    size_t local[3] = {t->local[0], t->local[1], t->local[2]};
    *call = "clEnqueueNDRangeKernel";
    return clEnqueueNDRangeKernel(lane->queue, k, t->work_dim, NULL, global,
                                  t->has_local ? local : NULL, nwait, nwait ? wait : NULL, done);
}

static void run_lane(okto__job *base, okto__lane *lane)
{
    lane_job *job = (lane_job *)base;
    okto_graph *g = job->g;
    okto__run *r = &g->run;
    const okto__plan *p = &g->plan;
    unsigned gen = r->gen_now;
    int ordered = lane->ops->implies_order, single = p->single_queue;

    for (int k = 0; k < p->count[job->lane]; k++) {
        if (atomic_load_explicit(&g->abort, memory_order_relaxed))
            break;
        int ti = p->order[job->lane][k];
        const okto__task *t = &g->tasks[ti];
        if (t->into) { /* its batch does its work */
            atomic_store(&r->gen[ti], gen);
            continue;
        }
        const uint32_t *deps = okto__task_deps(g, t);
        cl_uint nwait = 0;
        int ok = 1;
        for (uint32_t d = 0; d < t->ndeps && ok && !single; d++) {
            int dl = p->lane[deps[d]];
            if (dl == job->lane && ordered)
                continue; /* the queue orders it already */
            if (dl != job->lane && wait_enqueued(g, (int)deps[d], gen) < 0)
                ok = 0;
            else if (r->ev[deps[d]])
                job->wait[nwait++] = r->ev[deps[d]];
        }
        if (!ok)
            break;
        if (t->ndeps == 0 && r->next_wait)
            for (cl_uint e = 0; e < r->next_wait; e++)
                job->wait[nwait++] = r->ext_wait[e];
        cl_event ev = NULL, start = NULL;
        const char *call;
        cl_int err;
        if (t->kid != OKTO__NO_KERNEL) {
            err = enqueue_kernel(g, lane, t, nwait, job->wait, &ev, &call);
        } else {
            okto__exec x = {.ctx = g->ctx,
                            .lane = lane,
                            .queue = lane->queue,
                            .nwait = nwait,
                            .wait = job->wait,
                            .done = &ev,
                            .start = &start,
                            .data = g->args + t->args};
            call = okto__ops[t->op]->call ? okto__ops[t->op]->call : "enqueue";
            x.call = &call;
            err = t->enqueue(&x);
        }
        if (err != CL_SUCCESS) {
            if (ev)
                clReleaseEvent(ev);
            if (start)
                clReleaseEvent(start);
            run_fail(g, ti, call, err);
            break;
        }
        r->ev[ti] = ev;
        r->ev_start[ti] = start;
        if (p->flush[ti] && !single)
            clFlush(lane->queue);
        /* seq_cst, not just release: wake_waiters then loads g->waiters, and a release store
         * may be reordered after that load (store-load reordering, seen on x86), so the
         * publisher could read waiters == 0 while the waiter, having bumped it, still reads
         * the old gen and sleeps with nobody left to wake it (a lost wakeup: a hang) */
        atomic_store(&r->gen[ti], gen);
        if (!single)
            wake_waiters(g);
    }
    clFlush(lane->queue);
    lane_done(g, lane);
}

cl_int okto__exec_foreign_begin(const okto__exec *x, cl_command_queue *q)
{
    /* a failure here is the marker's (or the queue's), not the foreign call's: the fault sweep
     * (tests/fault) found it reported as CLBlastSgemm */
    const char *call = NULL;
    cl_int err = x->lane->ops->foreign_begin(x->lane, x->nwait, x->wait, q, x->start, &call);
    if (err != CL_SUCCESS && x->call && call)
        *x->call = call;
    return err;
}

void okto__exec_foreign_end(const okto__exec *x, cl_command_queue q)
{
    x->lane->ops->foreign_end(x->lane, q);
}

/* ---- the run object ---------------------------------------------------------------------------- */

void okto__run_release(okto_graph *g)
{
    okto__run *r = &g->run;
    for (int i = 0; i < r->cap; i++) {
        if (r->ev[i]) {
            clReleaseEvent(r->ev[i]);
            r->ev[i] = NULL;
        }
        if (r->ev_start[i]) {
            clReleaseEvent(r->ev_start[i]);
            r->ev_start[i] = NULL;
        }
    }
    for (cl_uint e = 0; e < r->next_wait; e++)
        clReleaseEvent(r->ext_wait[e]);
    free(r->ext_wait);
    r->ext_wait = NULL;
    r->next_wait = 0;
    if (r->done_user) {
        clReleaseEvent(r->done_user);
        r->done_user = NULL;
    }
    r->has_run = 0;
}

void okto__run_free(okto_graph *g)
{
    okto__run_release(g);
    free(g->run.ev);
    free(g->run.ev_start);
    free(g->run.gen);
    free(g->run.jobs);
    free(g->run.scratch);
    memset(&g->run, 0, sizeof g->run);
}

/* Sizes the run for the plan: per-task event slots, one job per lane, wait-list scratch. */
static okto_status run_prepare(okto_graph *g, cl_uint nwait)
{
    okto__run *r = &g->run;
    if (r->cap < g->ntasks) {
        int cap = g->ntasks;
        cl_event *ev = realloc(r->ev, (size_t)cap * sizeof *ev);
        if (ev)
            r->ev = ev;
        cl_event *es = realloc(r->ev_start, (size_t)cap * sizeof *es);
        if (es)
            r->ev_start = es;
        atomic_uint *gen = realloc(r->gen, (size_t)cap * sizeof *gen);
        if (gen)
            r->gen = gen;
        if (!ev || !es || !gen)
            return okto__fail(g->ctx, OKTO_ENOMEM, "okto_graph_launch: out of host memory");
        for (int i = r->cap; i < cap; i++) {
            r->ev[i] = r->ev_start[i] = NULL;
            atomic_init(&r->gen[i], 0);
        }
        r->cap = cap;
    }
    int maxwait = 1;
    for (int i = 0; i < g->ntasks; i++)
        if ((int)g->tasks[i].ndeps + (int)nwait > maxwait)
            maxwait = (int)g->tasks[i].ndeps + (int)nwait;
    free(r->jobs);
    free(r->scratch);
    r->jobs = malloc((size_t)g->plan.nlanes * sizeof(lane_job));
    r->scratch = malloc((size_t)g->plan.nlanes * (size_t)maxwait * sizeof(cl_event));
    r->maxwait = maxwait;
    if (!r->jobs || !r->scratch)
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_graph_launch: out of host memory");
    for (int l = 0; l < g->plan.nlanes; l++) {
        lane_job *j = &((lane_job *)r->jobs)[l];
        j->base.run = run_lane;
        j->g = g;
        j->lane = l;
        j->wait = r->scratch + (size_t)l * (size_t)maxwait;
    }
    return OKTO_OK;
}

/* The graph's storages are in use by this run: EBUSY (and nothing taken) if one of them is in
 * a blocking transfer. */
/* Several devices: a storage's home is the device of the first task that writes it. */
static void set_homes(okto_graph *g)
{
    for (int i = 0; i < g->ntasks; i++) {
        const okto__task *t = &g->tasks[i];
        int dev = g->ctx->lanes[g->plan.lane[i]].dev;
        for (uint32_t a = 0; a < t->nacc; a++) {
            const okto__access *x = &g->acc[t->acc + a];
            int unset = 0;
            if (x->mode & OKTO__W)
                atomic_compare_exchange_strong(&g->stores[x->store].st->home, &unset, dev + 1);
        }
    }
}

static okto_status take_storages(okto_graph *g)
{
    for (int i = 0; i < g->nstores; i++) {
        okto__storage *st = g->stores[i].st;
        int v = atomic_load(&st->busy);
        do {
            if (v < 0) {
                while (i-- > 0)
                    atomic_fetch_sub(&g->stores[i].st->busy, 1);
                return okto__fail(g->ctx, OKTO_EBUSY,
                                  "okto_graph_launch: a blocking read or write of one of the "
                                  "graph's tensors is in progress on another thread");
            }
        } while (!atomic_compare_exchange_weak(&st->busy, &v, v + 1));
    }
    return OKTO_OK;
}

static void give_storages(okto_graph *g)
{
    for (int i = 0; i < g->nstores; i++)
        atomic_fetch_sub(&g->stores[i].st->busy, 1);
}

okto_status okto__launch(okto_graph *g, cl_uint nwait, const cl_event *wait, cl_event *done)
{
    okto_context *ctx = g->ctx;
    okto__run_release(g);
    if (g->err != OKTO_OK)
        return okto__fail(ctx, g->err,
                          "okto_graph_launch: the graph keeps a recording error "
                          "(%s)",
                          g->err_msg);
    okto_status s = okto__deps_analyze(g);
    if (s == OKTO_OK && g->opt_from < g->ntasks)
        s = okto__optimize(g);
    if (s != OKTO_OK)
        return s;
    okto_sched policy = okto__graph_sched(g), sched = policy;
    const okto__sched_ops *ops = okto__sched_get(policy);
    if (ops->choose)
        sched = ops->choose(g);
    const okto__sched_ops *run_ops = okto__sched_get(sched);
    int stale = !g->planned || g->plan.sched != sched ||
                (run_ops->learns && g->plan.perf_version != okto__perf_version(ctx));
    if (stale && (s = okto__plan_make(g, sched)) != OKTO_OK)
        return s;
    if ((s = run_prepare(g, nwait)) != OKTO_OK) {
        g->planned = 0;
        return s;
    }
    if (ctx->ndev > 1 && !g->plan.single_queue)
        set_homes(g);
    okto__run *r = &g->run;
    if (nwait) {
        if (!(r->ext_wait = malloc(nwait * sizeof *r->ext_wait)))
            return okto__fail(ctx, OKTO_ENOMEM, "okto_graph_launch_ex: out of host memory");
        for (cl_uint e = 0; e < nwait; e++) {
            clRetainEvent(wait[e]);
            r->ext_wait[e] = wait[e];
        }
        r->next_wait = nwait;
    }
    if (done) {
        cl_int err;
        r->done_user = clCreateUserEvent(ctx->cl, &err);
        if (err != CL_SUCCESS) {
            r->done_user = NULL;
            okto__run_release(g);
            return okto__fail_cl(ctx, err, "clCreateUserEvent",
                                 "okto_graph_launch_ex's done "
                                 "event");
        }
    }
    if ((s = take_storages(g)) != OKTO_OK) {
        okto__run_release(g);
        return s;
    }
    if (done) {
        clRetainEvent(r->done_user);
        *done = r->done_user;
    }
    r->gen_now++;
    if (r->gen_now == 0)
        r->gen_now = 1;
    atomic_store(&g->abort, 0);
    g->run_status = OKTO_OK;
    g->run_error[0] = 0;
    int posted = 0;
    for (int l = 0; l < g->plan.nlanes; l++)
        posted += g->plan.count[l] > 0;
    g->lanes_left = posted;
    g->t_launch = okto__now_ms();
    if (posted == 0 && r->done_user)
        clSetUserEventStatus(r->done_user, CL_COMPLETE);
    /* all lanes get this launch's jobs in one step, in the same order relative to every other
     * launch: that order is what rules out two lanes waiting on each other across graphs */
    pthread_mutex_lock(&ctx->post_lock);
    for (int l = 0; l < g->plan.nlanes; l++)
        if (g->plan.count[l] > 0)
            okto__lane_post(g->plan.single_queue ? &ctx->seq : &ctx->lanes[l],
                            &((lane_job *)r->jobs)[l].base);
    pthread_mutex_unlock(&ctx->post_lock);
    return OKTO_OK;
}

/* Names the first task whose event ended in an error (a kernel that failed on the device), or
 * else the task whose wait failed. */
static void find_failed_event(okto_graph *g, int waited, cl_int err)
{
    for (int i = 0; i < g->ntasks; i++) {
        cl_int st = CL_COMPLETE;
        if (g->run.ev[i] &&
            clGetEventInfo(g->run.ev[i], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st, NULL) ==
                CL_SUCCESS &&
            st < 0) {
            run_fail(g, i, "execution", st);
            return;
        }
    }
    run_fail(g, waited, "clWaitForEvents", err);
}

/* The device-side checks of a good run (okto__rec_check): read, report the first that is set,
 * reset every one that was to its clear value. */
static void run_checks(okto_graph *g)
{
    cl_command_queue q = g->ctx->xfer;
    for (int i = 0; i < g->nchecks; i++) {
        const okto__check *c = &g->checks[i];
        cl_int flag[4] = {0, 0, 0, 0}, init[4];
        for (int k = 0; k < 4; k++)
            init[k] = c->init[k]; /* what a clear flag holds (okto__rec_check_init) */
        cl_int err = clEnqueueReadBuffer(q, c->st->mem, CL_TRUE, c->offset * sizeof(cl_int),
                                         sizeof flag, flag, 0, NULL, NULL);
        if (err == CL_SUCCESS && flag[0])
            err = clEnqueueWriteBuffer(q, c->st->mem, CL_TRUE, c->offset * sizeof(cl_int),
                                       sizeof init, init, 0, NULL, NULL);
        if (err != CL_SUCCESS) {
            if (g->run_status == OKTO_OK) {
                g->run_status = okto__cl_status(err);
                snprintf(g->run_error, sizeof g->run_error,
                         "reading a device check of %s: "
                         "clEnqueueReadBuffer: %s (%d)",
                         c->prefix, okto__cl_name(err), (int)err);
            }
            continue;
        }
        if (flag[0] && g->run_status == OKTO_OK) {
            char what[256];
            snprintf(what, sizeof what, c->msg, (int)flag[1] + c->base, (int)flag[2],
                     (int)flag[3]);
            g->run_status = OKTO_EINVAL;
            snprintf(g->run_error, sizeof g->run_error, "%s: %s (found on the device)", c->prefix,
                     what);
        }
    }
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
    okto__run *r = &g->run;
    int failed = g->run_status != OKTO_OK;
    for (int i = 0; i < g->ntasks; i++) {
        if (r->ev[i] && (failed || g->tasks[i].nsucc == 0)) {
            cl_int err = clWaitForEvents(1, &r->ev[i]);
            if (err != CL_SUCCESS && !failed) {
                find_failed_event(g, i, err);
                failed = 1;
                i = -1; /* restart: wait for everything */
            }
        }
    }
    if (!failed && g->nchecks)
        run_checks(g);
    g->t_done = okto__now_ms();
    give_storages(g);
    g->runs++;
    r->has_run = 1;
    okto_status s = g->run_status;
    if (s != OKTO_OK) {
        okto__fail(g->ctx, s, "%s", g->run_error);
    } else {
        /* learn while the model is young, then now and then to follow drift */
        if (g->runs <= 4 || g->runs % 16 == 0)
            okto__perf_learn(g);
        const okto__sched_ops *ops = okto__sched_get(okto__graph_sched(g));
        if (ops->observe)
            ops->observe(g, g->t_done - g->t_launch);
    }
    return s;
}

int okto__task_times(const okto_graph *g, int i, cl_ulong *a, cl_ulong *b)
{
    cl_ulong s;
    cl_event ev = g->run.ev && i < g->run.cap ? g->run.ev[i] : NULL;
    if (!ev ||
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof *a, a, NULL) != CL_SUCCESS ||
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof *b, b, NULL) != CL_SUCCESS)
        return 0;
    /* the start marker completes when the task's inputs are ready and its first command may run */
    cl_event st = g->run.ev_start[i];
    if (st &&
        clGetEventProfilingInfo(st, CL_PROFILING_COMMAND_END, sizeof s, &s, NULL) == CL_SUCCESS &&
        s < *a)
        *a = s;
    if (*b < *a)
        *b = *a;
    return 1;
}

/* ---- the public entry points ----------------------------------------------------------------- */

static okto_status launch(okto_graph *g, cl_uint nwait, const cl_event *wait, cl_event *done,
                          const char *fn)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "%s: g must not be NULL", fn);
    if (done)
        *done = NULL;
    if (nwait && !wait)
        return okto__fail(g->ctx, OKTO_EINVAL, "%s: nwait is %u but wait_list is NULL", fn, nwait);
    int idle = OKTO__G_IDLE;
    if (!atomic_compare_exchange_strong(&g->state, &idle, OKTO__G_LAUNCHED))
        return okto__fail(g->ctx, OKTO_EBUSY, "%s: %s", fn,
                          idle == OKTO__G_RECORDING ? "another thread is recording into this "
                                                      "graph"
                                                    : "this graph is already in flight; wait "
                                                      "for it");
    okto_status s = okto__launch(g, nwait, wait, done);
    if (s != OKTO_OK)
        atomic_store(&g->state, OKTO__G_IDLE);
    return s;
}

okto_status okto_graph_launch(okto_graph *g)
{
    return launch(g, 0, NULL, NULL, "okto_graph_launch");
}

okto_status okto_graph_launch_ex(okto_graph *g, cl_uint nwait, const cl_event *wait_list,
                                 cl_event *done)
{
    return launch(g, nwait, wait_list, done, "okto_graph_launch_ex");
}

okto_status okto_graph_wait(okto_graph *g)
{
    if (!g)
        return okto__fail(NULL, OKTO_EINVAL, "okto_graph_wait: g must not be NULL");
    int launched = OKTO__G_LAUNCHED;
    if (!atomic_compare_exchange_strong(&g->state, &launched, OKTO__G_WAITING))
        return launched == OKTO__G_WAITING
                   ? okto__fail(g->ctx, OKTO_EBUSY,
                                "okto_graph_wait: another thread is waiting already")
                   : OKTO_OK; /* nothing in flight */
    okto_status s = okto__wait(g);
    atomic_store(&g->state, OKTO__G_IDLE);
    /* OKTO_TRACE: written once the graph is idle again, because okto_graph_trace refuses a
     * graph in flight (its events are being replaced) */
    if (s == OKTO_OK && g->ctx->cfg.trace_path[0] &&
        okto_graph_trace(g, g->ctx->cfg.trace_path) != OKTO_OK) {
        static atomic_int warned;
        if (!atomic_exchange(&warned, 1))
            okto__log(g->ctx, OKTO_LOG_WARN, "OKTO_TRACE=\"%s\": %s (said once)",
                      g->ctx->cfg.trace_path, okto_last_error(NULL));
    }
    return s;
}

okto_status okto_graph_run(okto_graph *g)
{
    okto_status s = okto_graph_launch(g);
    return s != OKTO_OK ? s : okto_graph_wait(g);
}
