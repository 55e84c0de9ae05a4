/* lib/lane_host.c: the host lane: tasks that a lane thread runs on the CPU itself with the
 * system's CBLAS (OpenBLAS), on the device's own buffers, mapped without a copy.
 *
 * Where. Only on CPU devices (PoCL): their buffers live in host memory, so a map is a pointer,
 * not a copy, and the BLAS runs on the same cores the device would. A build without CBLAS has
 * no host lane (okto_host_blas() returns NULL, okto-probe says so); OKTO_HOST_LANE=0 or
 * config.host_lane = 0 turns it off.
 *
 * How a host task joins the graph. It runs on the thread of the lane the plan gave it, in that
 * lane's place in the order, so the dependency rules are the device tasks' own:
 *   1. it maps its operands on the lane's queue with the task's wait list (non-blocking), so the
 *      maps complete when the task's dependencies have (and, on an in-order lane, the lane's
 *      earlier commands), then waits for the maps on the host;
 *   2. calls cblas_sgemm on the mapped pointers (a batch: one call per product);
 *   3. unmaps, and a marker after the unmaps is the task's event, which later tasks of any lane
 *      wait on like any other. The first map's event is the task's start (okto__task_times).
 * The lane thread is busy while the BLAS runs; another lane's thread keeps enqueueing meanwhile
 * (the plan spreads a big product's row panels over the lanes, so two panels run side by side).
 * A dependency that failed (the maps' wait fails) skips the call and fails the task as a device
 * task whose enqueue failed: the run stops enqueueing, drains, and names this task and the wait.
 * Every unmap waits for its map, and a failed task waits for its unmaps, so nothing of it still
 * runs once the run has returned.
 *
 * Threads. The BLAS runs with OKTO_HOST_THREADS threads per task (default 1): PoCL's workers
 * and OpenBLAS's own threads spinning on the same cores measured slower than one BLAS thread
 * per lane with the lanes side by side (README, "Host lane"). OpenBLAS's thread count is
 * process-wide: it is set before each call when it differs, so a program that changes it
 * between okto's calls gets its own setting back only for its own calls. */
#include "ctx.h"
#include "op.h"

#include <stdlib.h>
#include <string.h>

#ifdef OKTO_HAVE_CBLAS
#include <cblas.h>
#ifdef OKTO_HAVE_OPENBLAS
/* openblas_config.h (included by cblas.h) declares these; repeated for builds against another
 * cblas.h in the same include path */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
#endif
#endif

const char *okto_host_blas(void)
{
#if defined(OKTO_HAVE_OPENBLAS)
    return openblas_get_config();
#elif defined(OKTO_HAVE_CBLAS)
    return "CBLAS";
#else
    return NULL;
#endif
}

int okto_context_host_lane(const okto_context *ctx) { return ctx ? ctx->host_lane : 0; }

int okto__ctx_host_lane(const okto_context *ctx) { return ctx->host_lane; }

/* Decides ctx->host_lane at context start (context.c): threads per host task, or 0. */
void okto__host_lane_init(okto_context *ctx)
{
    ctx->host_lane = 0;
#ifdef OKTO_HAVE_CBLAS
    if (ctx->cfg.host_lane == 0 || !okto__device_is_cpu(&ctx->dev))
        return;
    int threads = 1;
    const char *e = getenv("OKTO_HOST_THREADS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == '\0' && v >= 1 && v <= 64)
            threads = (int)v;
        else
            okto__log(ctx, OKTO_LOG_WARN,
                      "OKTO_HOST_THREADS=\"%s\": expected 1 to 64; using 1 (said once per "
                      "context)",
                      e);
    }
    ctx->host_lane = threads;
#endif
}

/* The elements a stored matrix (rows x cols, row stride ld) spans, over count products stepping
 * by stride. */
static size_t extent(size_t rows, size_t cols, size_t ld, size_t count, size_t stride)
{
    if (rows == 0 || cols == 0)
        return 0;
    return (rows - 1) * ld + cols + (count ? count - 1 : 0) * stride;
}

static void drop(cl_event *e)
{
    if (*e) {
        clReleaseEvent(*e);
        *e = NULL;
    }
}

cl_int okto__host_sgemm(const okto__exec *x, const okto__host_gemm *g)
{
#ifndef OKTO_HAVE_CBLAS
    (void)g;
    if (x->call)
        *x->call = "the host lane (this build has no CBLAS)";
    return CL_INVALID_OPERATION;
#else
    cl_command_queue q = x->queue;
    /* operands: c, a, b; a's and b's stored matrices are m x k / k x n or their transposes */
    cl_mem mem[3] = {g->c, g->a, g->b};
    size_t off[3] = {g->co, g->ao, g->bo};
    size_t span[3] = {extent(g->m, g->n, g->ldc, g->count, g->sc),
                      g->ta ? extent(g->k, g->m, g->lda, g->count, g->sa)
                            : extent(g->m, g->k, g->lda, g->count, g->sa),
                      g->tb ? extent(g->n, g->k, g->ldb, g->count, g->sb)
                            : extent(g->k, g->n, g->ldb, g->count, g->sb)};
    cl_map_flags flags[3] = {g->beta == 0.0f ? CL_MAP_WRITE : CL_MAP_READ | CL_MAP_WRITE,
                             CL_MAP_READ, CL_MAP_READ};
    void *p[3] = {NULL, NULL, NULL};
    cl_event mev[3] = {NULL, NULL, NULL}, uev[3] = {NULL, NULL, NULL};
    cl_int err = CL_SUCCESS, werr = CL_SUCCESS;
    const char *call = NULL;
    int nmapped = 0;
    for (int i = 0; i < 3; i++) {
        if (span[i] == 0)
            continue;
        p[i] = clEnqueueMapBuffer(q, mem[i], CL_FALSE, flags[i], off[i] * sizeof(float),
                                  span[i] * sizeof(float), x->nwait, x->nwait ? x->wait : NULL,
                                  &mev[i], &err);
        if (err != CL_SUCCESS) {
            p[i] = NULL;
            mev[i] = NULL;
            call = "clEnqueueMapBuffer";
            goto unmap;
        }
        nmapped++;
    }
    {
        cl_event wl[3];
        cl_uint nw = 0;
        for (int i = 0; i < 3; i++)
            if (mev[i])
                wl[nw++] = mev[i];
        werr = nw ? clWaitForEvents(nw, wl) : CL_SUCCESS;
    }
    if (werr == CL_SUCCESS && g->m && g->n) {
#ifdef OKTO_HAVE_OPENBLAS
        if (openblas_get_num_threads() != x->ctx->host_lane)
            openblas_set_num_threads(x->ctx->host_lane);
#endif
        const float *a = p[1], *b = p[2];
        float *c = p[0];
        for (size_t i = 0; i < g->count; i++)
            cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans,
                        g->tb ? CblasTrans : CblasNoTrans, (int)g->m, (int)g->n, (int)g->k,
                        g->alpha, a ? a + i * g->sa : NULL, (int)g->lda,
                        b ? b + i * g->sb : NULL, (int)g->ldb, g->beta, c + i * g->sc,
                        (int)g->ldc);
    }
unmap:;
    /* each unmap waits for its map: on an out-of-order queue an unmap could otherwise run while
     * a map that failed to be waited for is still copying (seen as a crash in PoCL's map) */
    cl_uint nu = 0;
    for (int i = 0; i < 3; i++) {
        if (!p[i])
            continue;
        cl_event e = NULL;
        cl_int uerr = clEnqueueUnmapMemObject(q, mem[i], p[i], mev[i] ? 1 : 0,
                                              mev[i] ? &mev[i] : NULL, &e);
        if (uerr == CL_SUCCESS)
            uev[nu++] = e;
        else if (err == CL_SUCCESS && werr == CL_SUCCESS) {
            err = uerr;
            call = "clEnqueueUnmapMemObject";
        }
    }
    if (err == CL_SUCCESS && werr != CL_SUCCESS) {
        /* a dependency failed, or the wait did: the task fails as a device task whose enqueue
         * failed, and the run drains */
        err = werr;
        call = "clWaitForEvents";
    }
    if (err == CL_SUCCESS) {
        err = clEnqueueMarkerWithWaitList(q, nu, nu ? uev : NULL, x->done);
        if (err != CL_SUCCESS) {
            *x->done = NULL;
            call = "clEnqueueMarkerWithWaitList";
        }
    }
    /* the unmaps and the marker must reach the device before another lane waits on them */
    clFlush(q);
    if (err != CL_SUCCESS && nu)
        clWaitForEvents(nu, uev); /* nothing of this task may still run when the run returns */
    for (cl_uint i = 0; i < nu; i++)
        drop(&uev[i]);
    if (err == CL_SUCCESS && x->start && mev[0]) {
        *x->start = mev[0];
        mev[0] = NULL;
    }
    for (int i = 0; i < 3; i++)
        drop(&mev[i]);
    (void)nmapped;
    if (err != CL_SUCCESS && call && x->call)
        *x->call = call;
    return err;
#endif
}
