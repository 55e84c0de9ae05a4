/* lib/ops/matmul.c: okto_matmul and okto_gemm. CLBlast does the math for big shapes, okto's own
 * kernel (cl/gemm.cl) for small ones; big products are partitioned across compute lanes.
 *
 * Layouts. An operand with a unit stride in its last dimension is a row-major matrix with
 * ld = its row stride; one with a unit stride in its first is a transposed view of one, which
 * becomes a transposed operand (no copy). Anything else is copied to a contiguous temporary
 * first. C must be row-dense (else it is computed into a temporary and copied back).
 *
 * Dtypes. f32 throughout. f16 and bf16 are converted to float temporaries, multiplied in float
 * and converted back: PoCL has no cl_khr_fp16, CLBlast's HGEMM needs it, and no GEMM exists for
 * bfloat16 (docs/ops.md says so).
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
 * CLBlast takes no event wait list (upstream issue #337) and may enqueue several kernels per
 * call: each call goes through the lane backend's foreign-call recipe (lib/lane.c), a marker
 * with the wait list on an in-order queue, then the call. */
#include "op.h"

#include <clblast_c.h>
#include <string.h>

static okto_status matmul_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_MATMUL = {
    .name = "matmul",
    .family = "matmul",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "2-D, one unit stride (a transposed view is a transposed operand); else copied",
    .call = "CLBlastSgemm",
    .dtype_note = "f16/bf16 converted to f32, multiplied in f32, converted back",
    .partitioned = 1,
    .backward = matmul_grad};
const okto__op_desc okto__desc_MATMUL_SUM = {.name = "matmul.sum",
                                             .family = "matmul",
                                             .dtypes = OKTO__DT_BIT(OKTO_F32),
                                             .layouts = "contiguous (internal)",
                                             .partitioned = 0};

#define OKTO__GEMM_SMALL (32.0 * 32.0 * 32.0)   /* m*n*k at or below: own kernel */
#define OKTO__GEMM_PART (2.0 * 320 * 320 * 320) /* flops at or above: partition */
#define OKTO__GEMM_PANEL_MIN_ROWS 32
#define OKTO__GEMM_PANEL_ROWS 512

typedef struct gemm_call {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    size_t ao, lda, bo, ldb, co, ldc;
} gemm_call;

static cl_int enqueue_clblast(const okto__exec *x)
{
    const gemm_call *g = x->data;
    cl_command_queue q;
    cl_int err = okto__exec_foreign_begin(x, &q);
    if (err != CL_SUCCESS)
        return err;
    int took = okto__clblast_begin(x->ctx, q, OKTO__CLBLAST_SGEMM);
    CLBlastStatusCode st = CLBlastSgemm(
        CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, g->m, g->n, g->k, g->alpha, g->a, g->ao,
        g->lda, g->b, g->bo, g->ldb, g->beta, g->c, g->co, g->ldc, &q, x->done);
    okto__clblast_end(x->ctx, q, OKTO__CLBLAST_SGEMM, took, st == CLBlastSuccess);
    if (st == CLBlastSuccess)
        okto__exec_foreign_end(x, q);
    /* CLBlast passes OpenCL errors through as they are; its own codes are below -1000 */
    return st == CLBlastSuccess ? CL_SUCCESS : (cl_int)st;
}

/* A matrix operand as CLBlast and cl/gemm.cl take it. */
typedef struct mat {
    okto_tensor v;  /* the 2-D view */
    int trans;      /* stored transposed: the view is rows x cols of the transpose */
    size_t off, ld; /* elements */
} mat;

static int as_mat(const okto_tensor *t, mat *m)
{
    m->v = *t;
    m->v.heap = 0;
    m->off = t->st->base + t->offset;
    if (t->shape[1] == 1 || t->stride[1] == 1) {
        m->trans = 0;
        m->ld = t->shape[0] == 1 ? t->shape[1] : (size_t)t->stride[0];
        return m->ld >= t->shape[1];
    }
    if (t->shape[0] == 1 || t->stride[0] == 1) {
        m->trans = 1;
        m->ld = (size_t)t->stride[1];
        return m->ld >= t->shape[0];
    }
    return 0;
}

static okto_status record_clblast(okto__rec *r, const gemm_call *c, const okto_tensor acc[3],
                                  int cmode, int part, int nparts)
{
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_MATMUL);
    t.dtype = OKTO_F32;
    okto__tb_enqueue(&t, enqueue_clblast, c, sizeof *c);
    okto__tb_access(&t, &acc[0], cmode);
    okto__tb_access(&t, &acc[1], OKTO__R);
    okto__tb_access(&t, &acc[2], OKTO__R);
    double flops = 2.0 * (double)c->m * (double)c->n * (double)c->k;
    okto__tb_cost(&t, flops, 4.0 * ((double)c->m * c->k + (double)c->k * c->n + 2.0 * c->m * c->n),
                  (uint64_t)c->m * 1000003u ^ (uint64_t)c->n * 7919u ^ (uint64_t)c->k << 40 ^
                      (uint64_t)(c->ta | c->tb << 1) << 62);
    okto__tb_part(&t, part, nparts);
    return okto__tb_commit(&t);
}

static okto_status record_small(okto__rec *r, const gemm_call *c, const okto_tensor acc[3],
                                int cmode)
{
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_MATMUL);
    okto__tb_kernel(&t, "gemm", OKTO_F32, NULL, "okto_gemm_small");
    okto__tb_arg_ulong(&t, c->m);
    okto__tb_arg_ulong(&t, c->n);
    okto__tb_arg_ulong(&t, c->k);
    okto__tb_arg_float(&t, c->alpha);
    OKTO__TB_ARG(&t, c->a);
    okto__tb_arg_ulong(&t, c->ao);
    okto__tb_arg_ulong(&t, c->lda);
    okto__tb_arg_int(&t, c->ta);
    OKTO__TB_ARG(&t, c->b);
    okto__tb_arg_ulong(&t, c->bo);
    okto__tb_arg_ulong(&t, c->ldb);
    okto__tb_arg_int(&t, c->tb);
    okto__tb_arg_float(&t, c->beta);
    OKTO__TB_ARG(&t, c->c);
    okto__tb_arg_ulong(&t, c->co);
    okto__tb_arg_ulong(&t, c->ldc);
    /* 4 groups: these products are at most 32-cubed */
    size_t global[2] = {16, 16}, local[2] = {8, 8};
    okto__tb_range(&t, 2, global, local);
    okto__tb_access(&t, &acc[0], cmode);
    okto__tb_access(&t, &acc[1], OKTO__R);
    okto__tb_access(&t, &acc[2], OKTO__R);
    okto__tb_cost(&t, 2.0 * (double)c->m * (double)c->n * (double)c->k,
                  4.0 * ((double)c->m * c->k + (double)c->k * c->n + 2.0 * c->m * c->n),
                  (uint64_t)c->m * 1000003u ^ (uint64_t)c->n * 7919u ^ (uint64_t)c->k << 40 ^
                      (uint64_t)(c->ta | c->tb << 1) << 62 ^ 1);
    return okto__tb_commit(&t);
}

static okto_status record_splitk_sum(okto__rec *r, const okto_tensor *c, const okto_tensor *p,
                                     int parts, float alpha, float beta)
{
    size_t n = okto__numel(c);
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_MATMUL_SUM);
    okto__tb_kernel(&t, "gemm", OKTO_F32, NULL, "okto_gemm_splitk_sum");
    okto__tb_arg_tensor(&t, c);
    okto__tb_arg_tensor(&t, p);
    okto__tb_arg_int(&t, parts);
    okto__tb_arg_ulong(&t, n);
    okto__tb_arg_float(&t, alpha);
    okto__tb_arg_float(&t, beta);
    okto__tb_range_1d(&t, n);
    okto__tb_access(&t, c, beta == 0.0f ? OKTO__W : OKTO__RW);
    okto__tb_access(&t, p, OKTO__R);
    okto__tb_cost(&t, (double)n * parts, 4.0 * (double)n * (parts + 2), (uint64_t)n * 64 + parts);
    okto__tb_part(&t, parts, parts + 1);
    return okto__tb_commit(&t);
}

/* C = alpha op(A) op(B) + beta C for f32 operands that are matrices (as_mat) and a row-dense C. */
static okto_status gemm_f32(okto__rec *r, const okto_tensor *c, float alpha, const mat *A,
                            const mat *B, float beta, int ta, int tb)
{
    size_t m = c->shape[0], n = c->shape[1], k = ta ? A->v.shape[0] : A->v.shape[1];
    /* a transposed view flips the operand's transpose flag; CLBlast sees the stored matrix */
    int sta = ta ^ A->trans, stb = tb ^ B->trans;
    size_t ldc = c->shape[0] == 1 ? c->shape[1] : (size_t)c->stride[0];
    gemm_call base = {sta,
                      stb,
                      m,
                      n,
                      k,
                      alpha,
                      beta,
                      A->v.st->mem,
                      B->v.st->mem,
                      c->st->mem,
                      A->off,
                      A->ld,
                      B->off,
                      B->ld,
                      c->st->base + c->offset,
                      ldc};
    int cmode = beta == 0.0f ? OKTO__W : OKTO__RW;
    double mnk = (double)m * (double)n * (double)k;
    int lanes = okto__ctx_compute_lanes(r->ctx);
    okto_tensor acc[3] = {*c, A->v, B->v};
    if (mnk <= OKTO__GEMM_SMALL)
        return record_small(r, &base, acc, cmode);
    okto__clblast_tune(r->ctx);
    if (lanes < 2 || 2.0 * mnk < OKTO__GEMM_PART)
        return record_clblast(r, &base, acc, cmode, 0, 1);
    okto_status s = OKTO_OK;
    if (m >= (size_t)lanes * OKTO__GEMM_PANEL_MIN_ROWS) {
        /* row panels of C: a multiple of the lanes, none over OKTO__GEMM_PANEL_ROWS rows */
        int per_lane = (int)((m + (size_t)lanes * OKTO__GEMM_PANEL_ROWS - 1) /
                             ((size_t)lanes * OKTO__GEMM_PANEL_ROWS));
        int parts = lanes * per_lane;
        for (int p = 0; p < parts && s == OKTO_OK; p++) {
            size_t r0 = okto__part_row(m, p, parts), r1 = okto__part_row(m, p + 1, parts);
            gemm_call pc = base;
            pc.m = r1 - r0;
            pc.co += r0 * ldc;
            /* rows of op(A): rows of the stored A, or its columns when transposed */
            pc.ao += sta ? r0 : r0 * A->ld;
            okto_tensor pa[3];
            okto__view_slice(c, 0, r0, r1 - r0, &pa[0]);
            okto__view_slice(&A->v, ta ? 1 : 0, r0, r1 - r0, &pa[1]);
            pa[2] = B->v;
            s = record_clblast(r, &pc, pa, cmode, p, parts);
        }
        return s;
    }
    /* split-K into per-lane partials, summed on the device */
    okto_tensor partial;
    s = okto__rec_temp(r, OKTO_F32, 2, (size_t[]){(size_t)lanes * m, n}, &partial);
    for (int p = 0; p < lanes && s == OKTO_OK; p++) {
        size_t k0 = okto__part_row(k, p, lanes), k1 = okto__part_row(k, p + 1, lanes);
        gemm_call pc = base;
        pc.k = k1 - k0;
        pc.alpha = 1.0f;
        pc.beta = 0.0f;
        pc.c = partial.st->mem;
        pc.co = partial.st->base + (size_t)p * m * n;
        pc.ldc = n;
        pc.ao += sta ? k0 * A->ld : k0;
        pc.bo += stb ? k0 : k0 * B->ld;
        okto_tensor pa[3];
        okto__view_slice(&partial, 0, (size_t)p * m, m, &pa[0]);
        okto__view_slice(&A->v, ta ? 0 : 1, k0, k1 - k0, &pa[1]);
        okto__view_slice(&B->v, tb ? 1 : 0, k0, k1 - k0, &pa[2]);
        s = record_clblast(r, &pc, pa, OKTO__W, p, lanes + 1);
    }
    if (s == OKTO_OK)
        s = record_splitk_sum(r, c, &partial, lanes, alpha, beta);
    return s;
}

/* An operand as a float32 matrix: itself, a contiguous copy, or a float copy of a half type. */
static okto_status operand(okto__rec *r, const okto_tensor *t, mat *m)
{
    okto_tensor v = *t;
    okto_status s = OKTO_OK;
    if (t->dtype != OKTO_F32) {
        s = okto__rec_temp(r, OKTO_F32, 2, t->shape, &v);
        if (s == OKTO_OK)
            s = okto_cast(r->g, &v, t);
    } else if (!as_mat(t, m)) {
        s = okto__rec_layout(r, t, 0, &v);
    }
    if (s == OKTO_OK && !as_mat(&v, m))
        s = okto__rec_fail(r, OKTO_EINVAL, "internal: %s is no matrix", OKTO__DESC(&v));
    return s;
}

static okto_status gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                        const okto_tensor *b, float beta, unsigned flags, const char *fn,
                        int accumulate_ok)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_MATMUL, fn);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, c, "c", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, a, "a", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, b, "b", OKTO__DT_FLOATS);
    unsigned known = OKTO_TRANS_A | OKTO_TRANS_B | (accumulate_ok ? OKTO_ACCUMULATE : 0);
    if (s == OKTO_OK && (flags & ~known))
        s = okto__rec_fail(&r, OKTO_EINVAL, "unknown flags 0x%x%s", flags & ~known,
                           !accumulate_ok && (flags & OKTO_ACCUMULATE)
                               ? " (OKTO_ACCUMULATE is okto_matmul's; okto_gemm has beta)"
                               : "");
    if (s == OKTO_OK && (a->rank != 2 || b->rank != 2 || c->rank != 2))
        s = okto__rec_fail(&r, OKTO_EINVAL, "c is %s, a is %s, b is %s: all must be 2-D",
                           OKTO__DESC(c), OKTO__DESC(a), OKTO__DESC(b));
    if (s == OKTO_OK && (a->dtype != c->dtype || b->dtype != c->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "c is %s, a is %s, b is %s: dtypes differ",
                           OKTO__DESC(c), OKTO__DESC(a), OKTO__DESC(b));
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    if (s == OKTO_OK) {
        size_t m = ta ? a->shape[1] : a->shape[0], ka = ta ? a->shape[0] : a->shape[1];
        size_t kb = tb ? b->shape[1] : b->shape[0], n = tb ? b->shape[0] : b->shape[1];
        if (ka != kb || c->shape[0] != m || c->shape[1] != n)
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "shapes do not match: c is %s, op(a) is %zux%zu (a %s%s), op(b) "
                               "is %zux%zu (b %s%s); need c = m x n, op(a) = m x k, op(b) = k x n",
                               OKTO__DESC(c), m, ka, OKTO__DESC(a), ta ? ", transposed" : "", kb, n,
                               OKTO__DESC(b), tb ? ", transposed" : "");
    }
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, c, "c", a, "a", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, c, "c", b, "b", 0);
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    if (accumulate_ok)
        beta = (flags & OKTO_ACCUMULATE) ? 1.0f : 0.0f;
    mat A, B, C;
    s = operand(&r, a, &A);
    if (s == OKTO_OK)
        s = operand(&r, b, &B);
    /* C: row-dense f32 as it is; else a float temporary, filled from c when beta reads it */
    okto_tensor cv = *c;
    int direct = c->dtype == OKTO_F32 && as_mat(c, &C) && !C.trans;
    if (s == OKTO_OK && !direct) {
        s = okto__rec_temp(&r, OKTO_F32, 2, c->shape, &cv);
        if (s == OKTO_OK && beta != 0.0f)
            s = okto_cast(g, &cv, c);
    }
    if (s == OKTO_OK)
        s = gemm_f32(&r, &cv, alpha, &A, &B, beta, ta, tb);
    if (s == OKTO_OK && !direct)
        s = okto_cast(g, c, &cv);
    if (s == OKTO_OK) {
        /* inputs a, b, and c itself when beta reads it */
        okto__ad_call ad = {.op = OKTO__OP_MATMUL, .nin = 3, .nout = 1, .t = {a, b, c, c},
                            .saved = 3u, .identity = beta == 1.0f ? 4u : 0u,
                            .f = {alpha, beta}, .i = {ta, tb}};
        if (beta == 0.0f)
            ad.nin = 2, ad.t[2] = c, ad.t[3] = NULL, ad.overwrite = 1;
        s = okto__ad_record(&r, &ad);
    }
    return okto__rec_end(&r, s);
}

/* c = alpha op(a) op(b) + beta c, with A = op(a), B = op(b):
 *   dA = alpha dC B^T, so da += alpha dC B^T (a plain) or alpha B dC^T (a transposed);
 *   dB = alpha A^T dC, so db += alpha A^T dC (b plain) or alpha dC^T A (b transposed);
 *   dc (the old c) += beta dC.
 * Transposes are views, which the GEMM takes as transposed operands. */
static okto_status matmul_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    const okto_tensor *dc = okto__grad_out(gr, 0);
    okto_tensor *da = okto__grad_in(gr, 0), *db = okto__grad_in(gr, 1);
    okto_tensor *dc0 = n->nin > 2 ? okto__grad_in(gr, 2) : NULL;
    const okto_tensor *a = &n->t[0], *b = &n->t[1];
    float alpha = n->f[0];
    int ta = n->i[0], tb = n->i[1];
    okto_tensor A, B, At, Bt, dct;
    if (ta)
        okto__view_swap(a, 0, 1, &A), At = *a;
    else
        A = *a, okto__view_swap(a, 0, 1, &At);
    if (tb)
        okto__view_swap(b, 0, 1, &B), Bt = *b;
    else
        B = *b, okto__view_swap(b, 0, 1, &Bt);
    okto__view_swap(dc, 0, 1, &dct);
    okto_status s = OKTO_OK;
    if (da)
        s = ta ? okto_gemm(g, da, alpha, &B, &dct, 1.0f, 0)
               : okto_gemm(g, da, alpha, dc, &Bt, 1.0f, 0);
    if (s == OKTO_OK && db)
        s = tb ? okto_gemm(g, db, alpha, &dct, &A, 1.0f, 0)
               : okto_gemm(g, db, alpha, &At, dc, 1.0f, 0);
    if (s == OKTO_OK && dc0)
        s = okto_axpy(g, dc0, n->f[1], dc);
    return s;
}

okto_status okto_matmul(okto_graph *g, okto_tensor *c, const okto_tensor *a, const okto_tensor *b,
                        unsigned flags)
{
    return gemm(g, c, 1.0f, a, b, 0.0f, flags, "okto_matmul", 1);
}

okto_status okto_gemm(okto_graph *g, okto_tensor *c, float alpha, const okto_tensor *a,
                      const okto_tensor *b, float beta, unsigned flags)
{
    return gemm(g, c, alpha, a, b, beta, flags, "okto_gemm", 0);
}
