/* lib/ops/matmul.c: okto_matmul and okto_gemm. CLBlast does the math for big shapes, okto's own
 * kernel (cl/gemm.cl) for small ones; big products are partitioned across compute lanes.
 *
 * Partition rule (measured with okto-bench on the 2-core PoCL machine, see README):
 *   - up to OKTO__GEMM_SMALL multiply-adds (32-cubed): one task on okto's own kernel. Measured
 *     as sequential graphs: 1024 8-cubed products 4.0 ms own kernel / 11.8 ms CLBlast (its host
 *     time per call dominates); 256 32-cubed 5.1 / 4.1 ms (about even); 256 64-cubed 23.4 /
 *     11.4 ms (CLBlast's kernels win);
 *   - below OKTO__GEMM_PART flops (~320-cubed): one CLBlast task; two panels of a 256-cubed
 *     product measured no faster than one call (1.9 against 2.1 ms, within the noise), of a
 *     384-cubed one 3.3 against 3.5 ms, of a 512-cubed one 8 against 16 ms;
 *   - else, with m large enough: row panels of C, at least one per compute lane and at most
 *     OKTO__GEMM_PANEL_ROWS rows each, dealt to the lanes, each reading its rows of op(A) and all
 *     of op(B), so panels run side by side and later ops on C's rows wait only for their panel.
 *     Panels of about 512 rows are faster than one call even on one queue here (2048-cubed:
 *     one call 690 ms, 4 panels 508 ms, 8 panels 526 ms), as they fit the caches better;
 *   - else (small m, large k): split-K: each lane computes op(A)[:, k-range] op(B)[k-range, :]
 *     into a partial of its own, and one device task sums the partials in part order (the same
 *     bits under every policy) into C.
 *
 * CLBlast on out-of-order lanes: CLBlast takes no event wait list (upstream issue #337) and may
 * enqueue several kernels per call, which on an out-of-order queue would start before their
 * inputs are ready. Options were: (a) a barrier with the wait list on the lane's queue — correct
 * but it holds back every later command of the lane, including unrelated work; (b) a small
 * in-order queue per lane used only for CLBlast, fronted by a marker with the wait list — the
 * marker orders only the CLBlast call; the lane's other work keeps flowing. okto uses (b): the
 * marker measured ~0.2 us of host time on PoCL. (a) was not timed: its cost is the work it
 * holds back, which depends on the graph; (b) has none by construction. A third option, okto's
 * own kernel, is what small shapes use (above). */
#include "internal.h"

#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

#define OKTO__GEMM_SMALL (32.0 * 32.0 * 32.0)   /* m*n*k at or below: own kernel */
#define OKTO__GEMM_PART (2.0 * 320 * 320 * 320) /* flops at or above: partition */
#define OKTO__GEMM_PANEL_MIN_ROWS 32
#define OKTO__GEMM_PANEL_ROWS 512

/* CLBlast picks its "direct" GEMM kernel below XGEMM_MIN_INDIRECT_SIZE (per device, from its
 * tuning database; PoCL CPUs get the defaults). On PoCL the direct kernel is the slower one:
 * 512x1024x1024 took 90 ms direct against 62 ms indirect, and 512-cubed 11.6 ms against 7.8 ms
 * as two panels. So for CPU devices okto lowers the threshold to 128-cubed, once per device,
 * before its first CLBlast call; smaller products use okto's own kernel or stay direct. */
static void clblast_tune(okto_context *ctx)
{
    pthread_mutex_lock(&ctx->prog_lock);
    if (!ctx->clblast_ready && (ctx->device_type & CL_DEVICE_TYPE_CPU)) {
        const char *names[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
        const size_t values[1] = {128};
        for (int i = -1; i < ctx->nsub; i++) {
            CLBlastStatusCode st = CLBlastOverrideParameters(
                i < 0 ? ctx->device : ctx->sub[i], "GemmRoutine", CLBlastPrecisionSingle, 1,
                names, values);
            if (st != CLBlastSuccess)
                okto__log(ctx, OKTO_LOG_INFO, "CLBlast GEMM tuning override refused (%d)",
                          (int)st);
        }
    }
    ctx->clblast_ready = 1;
    pthread_mutex_unlock(&ctx->prog_lock);
}

typedef struct gemm_call {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    size_t ao, lda, bo, ldb, co, ldc;
} gemm_call;

/* CLBlast 1.5.3 (Debian 12) is not safe to call from several threads while its caches fill:
 * two threads that both miss the program cache both compile and store (upstream issue #486,
 * fixed after 1.5.3), seen here as std::bad_alloc from two lanes calling at the same moment.
 * Once a device's GEMM program is cached, calls only read the caches (under CLBlast's own
 * mutex) and may run at once. So the first call per device takes this lock; later ones skip it
 * and the lanes' host threads overlap their ~40 us of CLBlast host time. */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_int *clblast_warm_flag(okto_context *ctx, cl_command_queue q)
{
    cl_device_id dev = NULL;
    clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
    for (int i = 0; i < ctx->nsub; i++)
        if (ctx->sub[i] == dev)
            return &ctx->clblast_warm[1 + i];
    return &ctx->clblast_warm[0];
}

static cl_int enqueue_clblast(okto__task *t, const okto__exec *x, cl_uint nwait,
                              const cl_event *wait, cl_event *done)
{
    const gemm_call *g = t->data;
    cl_command_queue q = x->queue;
    if (!x->in_order && okto__lane_blas_queue(x->lane, &q) != OKTO_OK)
        return CL_OUT_OF_RESOURCES;
    /* The marker orders the call after its inputs (q is in-order) and its event marks when
     * the task really starts: CLBlast's own event covers only its last kernel. */
    cl_int err = clEnqueueMarkerWithWaitList(q, x->in_order ? 0 : nwait,
                                             x->in_order || !nwait ? NULL : wait, &t->ev_start);
    if (err != CL_SUCCESS)
        return err;
    atomic_int *warm = clblast_warm_flag(x->ctx, q);
    int cold = !atomic_load(warm);
    if (cold)
        pthread_mutex_lock(&clblast_lock);
    CLBlastStatusCode st = CLBlastSgemm(
        CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, g->m, g->n, g->k, g->alpha, g->a, g->ao,
        g->lda, g->b, g->bo, g->ldb, g->beta, g->c, g->co, g->ldc, &q, done);
    if (cold) {
        if (st == CLBlastSuccess)
            atomic_store(warm, 1);
        pthread_mutex_unlock(&clblast_lock);
    }
    /* the lane flushes its own queue; the in-order BLAS queue beside it is flushed here, so a
     * lane waiting on this event never waits on a command that was never submitted (GPU
     * drivers need not submit unflushed commands) */
    if (st == CLBlastSuccess && q != x->queue)
        clFlush(q);
    /* CLBlast passes OpenCL errors through as they are; its own codes are below -1000 */
    return st == CLBlastSuccess ? CL_SUCCESS : (cl_int)st;
}

static okto_status record_clblast(okto_graph *g, const gemm_call *c, okto__access *acc, int nacc,
                                  int part, int nparts)
{
    gemm_call *d = malloc(sizeof *d);
    if (!d)
        return okto__fail(g->ctx, OKTO_ENOMEM, "okto_matmul: out of host memory");
    *d = *c;
    double flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
    okto__task t = {.op = "matmul", .part = part, .nparts = nparts, .cls = OKTO__COMPUTE,
                    .flops = flops,
                    .bytes = 4.0 * ((double)c->m * c->k + (double)c->k * c->n + 2.0 * c->m * c->n),
                    .acc = acc, .nacc = nacc, .enqueue = enqueue_clblast, .data = d};
    t.shape_key = (uint64_t)c->m * 1000003u ^ (uint64_t)c->n * 7919u ^ (uint64_t)c->k << 40 ^
                  (uint64_t)(c->ta | c->tb << 1) << 62;
    int ti = okto__graph_add(g, &t);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
}

static okto_status record_small(okto_graph *g, const gemm_call *c, okto__access *acc, int nacc)
{
    cl_int m = (cl_int)c->m, n = (cl_int)c->n, kk = (cl_int)c->k;
    cl_int ao = (cl_int)c->ao, lda = (cl_int)c->lda, ta = c->ta;
    cl_int bo = (cl_int)c->bo, ldb = (cl_int)c->ldb, tb = c->tb;
    cl_int co = (cl_int)c->co, ldc = (cl_int)c->ldc;
    const okto__karg args[] = {
        OKTO__KV(m),  OKTO__KV(n),   OKTO__KV(kk), OKTO__KV(c->alpha), OKTO__KV(c->a),
        OKTO__KV(ao), OKTO__KV(lda), OKTO__KV(ta), OKTO__KV(c->b),     OKTO__KV(bo),
        OKTO__KV(ldb), OKTO__KV(tb), OKTO__KV(c->beta), OKTO__KV(c->c), OKTO__KV(co),
        OKTO__KV(ldc)};
    cl_kernel k;
    okto_status s = okto__kernel_args(g->ctx, "okto_gemm_small", "okto_matmul",
                                      (int)(sizeof args / sizeof *args), args, &k);
    if (s != OKTO_OK)
        return s;
    okto__task t = {.op = "matmul", .cls = OKTO__COMPUTE,
                    .flops = 2.0 * (double)c->m * (double)c->n * (double)c->k,
                    .bytes = 4.0 * ((double)c->m * c->k + (double)c->k * c->n + 2.0 * c->m * c->n),
                    .acc = acc, .nacc = nacc, .kernel = k, .work_dim = 2,
                    /* 4 groups: these products are at most 32-cubed */
                    .global = {16, 16, 1}, .local = {8, 8, 1}, .has_local = 1};
    t.shape_key = (uint64_t)c->m * 1000003u ^ (uint64_t)c->n * 7919u ^ (uint64_t)c->k << 40 ^
                  (uint64_t)(c->ta | c->tb << 1) << 62 ^ 1;
    int ti = okto__graph_add(g, &t);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
}

static okto_status record_splitk_sum(okto_graph *g, const okto_tensor *c, const okto_tensor *p,
                                     int parts, float alpha, float beta)
{
    cl_int n = (cl_int)(c->rows * c->cols), np = parts;
    const okto__karg args[] = {OKTO__KT(c, 0),  OKTO__KT(p, 0),     OKTO__KV(np),
                               OKTO__KV(n),     OKTO__KV(alpha),    OKTO__KV(beta)};
    okto__access acc[2] = {okto__acc(c, 0, c->rows, beta == 0.0f ? OKTO__W : OKTO__RW),
                           okto__acc(p, 0, p->rows, OKTO__R)};
    okto__task t = {.op = "matmul-sum", .shape_key = (uint64_t)n * 64 + (uint64_t)parts,
                    .part = parts, .nparts = parts + 1, .flops = (double)n * parts,
                    .bytes = 4.0 * n * (parts + 2), .acc = acc, .nacc = 2};
    return okto__record_1d(g, "okto_gemm_splitk_sum", "okto_matmul", t, (size_t)n, 6, args);
}

static okto_status check(okto_graph *g, okto_tensor *c, const okto_tensor *a,
                         const okto_tensor *b, unsigned flags, const char *op)
{
    okto_status s = okto__check_graph(g, op);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, c, op, "c");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, a, op, "a");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, b, op, "b");
    if (s != OKTO_OK)
        return s;
    if (flags & ~(unsigned)(OKTO_TRANS_A | OKTO_TRANS_B | OKTO_ACCUMULATE))
        return okto__fail(g->ctx, OKTO_EINVAL, "%s: unknown flags 0x%x", op, flags);
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    size_t m = ta ? a->cols : a->rows, ka = ta ? a->rows : a->cols;
    size_t kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
    if (ka != kb || c->rows != m || c->cols != n)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "%s: shapes do not match: c is %zux%zu, op(a) is %zux%zu (a %zux%zu%s), "
                          "op(b) is %zux%zu (b %zux%zu%s); need c = m x n, op(a) = m x k, "
                          "op(b) = k x n",
                          op, c->rows, c->cols, m, ka, a->rows, a->cols, ta ? ", transposed" : "",
                          kb, n, b->rows, b->cols, tb ? ", transposed" : "");
    const okto_tensor *in[2] = {a, b};
    for (int i = 0; i < 2; i++)
        if (okto__rows_overlap(in[i], c))
            return okto__fail(g->ctx, OKTO_EINVAL, "%s: c overlaps %s (same tensor rows)", op,
                              i ? "b" : "a");
    return OKTO_OK;
}

static okto_status gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                        const okto_tensor *b, float beta, unsigned flags, const char *op)
{
    okto_status s = check(g, c, a, b, flags, op);
    if (s != OKTO_OK)
        return s;
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    size_t m = c->rows, n = c->cols, k = ta ? a->rows : a->cols;
    gemm_call base = {ta, tb, m, n, k, alpha, beta,
                      a->st->mem, b->st->mem, c->st->mem,
                      a->row0 * a->cols, a->cols, b->row0 * b->cols, b->cols,
                      c->row0 * c->cols, c->cols};
    int cmode = beta == 0.0f ? OKTO__W : OKTO__RW;
    double mnk = (double)m * (double)n * (double)k;
    int lanes = g->ctx->ncompute, start = g->ntasks;

    if (mnk <= OKTO__GEMM_SMALL) {
        okto__access acc[3] = {okto__acc(c, 0, m, cmode), okto__acc(a, 0, a->rows, OKTO__R),
                               okto__acc(b, 0, b->rows, OKTO__R)};
        return record_small(g, &base, acc, 3);
    }
    clblast_tune(g->ctx);
    if (lanes < 2 || 2.0 * mnk < OKTO__GEMM_PART) {
        okto__access acc[3] = {okto__acc(c, 0, m, cmode), okto__acc(a, 0, a->rows, OKTO__R),
                               okto__acc(b, 0, b->rows, OKTO__R)};
        return record_clblast(g, &base, acc, 3, 0, 1);
    }
    if (m >= (size_t)lanes * OKTO__GEMM_PANEL_MIN_ROWS) {
        /* row panels of C: a multiple of the lanes, none over OKTO__GEMM_PANEL_ROWS rows */
        int per_lane = (int)((m + (size_t)lanes * OKTO__GEMM_PANEL_ROWS - 1) /
                             ((size_t)lanes * OKTO__GEMM_PANEL_ROWS));
        int parts = lanes * per_lane;
        for (int p = 0; p < parts && s == OKTO_OK; p++) {
            size_t r0 = okto__part_row(m, p, parts), r1 = okto__part_row(m, p + 1, parts);
            gemm_call pc = base;
            pc.m = r1 - r0;
            pc.co += r0 * c->cols;
            pc.ao += ta ? r0 : r0 * a->cols; /* op(A) rows are A's columns when transposed */
            okto__access acc[3] = {okto__acc(c, r0, r1, cmode),
                                   ta ? okto__acc(a, 0, a->rows, OKTO__R)
                                      : okto__acc(a, r0, r1, OKTO__R),
                                   okto__acc(b, 0, b->rows, OKTO__R)};
            s = record_clblast(g, &pc, acc, 3, p, parts);
        }
    } else {
        /* split-K into per-lane partials, summed on the device */
        okto_tensor *partial = NULL;
        s = okto_tensor_create(g->ctx, (size_t)lanes * m, n, &partial);
        for (int p = 0; p < lanes && s == OKTO_OK; p++) {
            size_t k0 = okto__part_row(k, p, lanes), k1 = okto__part_row(k, p + 1, lanes);
            gemm_call pc = base;
            pc.k = k1 - k0;
            pc.alpha = 1.0f;
            pc.beta = 0.0f;
            pc.c = partial->st->mem;
            pc.co = (size_t)p * m * n;
            pc.ao += ta ? k0 * a->cols : k0;
            pc.bo += tb ? k0 : k0 * b->cols;
            okto__access acc[3] = {okto__acc(partial, (size_t)p * m, (size_t)(p + 1) * m, OKTO__W),
                                   ta ? okto__acc(a, k0, k1, OKTO__R)
                                      : okto__acc(a, 0, a->rows, OKTO__R),
                                   tb ? okto__acc(b, 0, b->rows, OKTO__R)
                                      : okto__acc(b, k0, k1, OKTO__R)};
            s = record_clblast(g, &pc, acc, 3, p, lanes + 1);
        }
        if (s == OKTO_OK)
            s = record_splitk_sum(g, c, partial, lanes, alpha, beta);
        /* the graph holds the partials' storage from here on */
        okto_tensor_destroy(partial);
    }
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}

okto_status okto_matmul(okto_graph *g, okto_tensor *c, const okto_tensor *a, const okto_tensor *b,
                        unsigned flags)
{
    float beta = (flags & OKTO_ACCUMULATE) ? 1.0f : 0.0f;
    return gemm(g, c, 1.0f, a, b, beta, flags, "okto_matmul");
}

okto_status okto_gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                      const okto_tensor *b, float beta, unsigned flags)
{
    return gemm(g, c, alpha, a, b, beta, flags & ~(unsigned)OKTO_ACCUMULATE, "okto_gemm");
}
