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
 * with the wait list on an in-order queue, then the call.
 *
 * Batched products (rank 3 and 4). The last two dimensions are the matrices, the leading ones
 * batch dimensions that broadcast as NumPy's matmul does (a [B, M, K] times b [K, N] or
 * [1, K, N]: b's one matrix serves every batch). Every operand is seen as [n0, n1, rows, cols]
 * with c's batch shape, stride 0 along the dimensions it broadcasts, and then:
 *   - one product in all (n0 n1 = 1): the 2-D path above, panels and split-K included;
 *   - products of at most OKTO__GEMM_SMALL_BATCHED multiply-adds (12-cubed, measured below):
 *     okto_gemm_small_batched, one launch for the whole batch on a fixed grid (its third
 *     dimension strides over the products);
 *   - else, when each operand's batch steps by one stride (the batch dimensions merge, or one
 *     of them is 1): one CLBlastSgemmStridedBatched call (stride 0 for a broadcast operand,
 *     which CLBlast 1.5.3 takes), or, for products big enough for CLBlast's indirect kernel,
 *     one CLBlastSgemm per product in one task (its strided-batched indirect path is wrong:
 *     below, at direct_bound);
 *   - else (a rank-4 batch whose dimensions do not merge, e.g. a [B0, 1, M, K] x b [B0, B1, K,
 *     N]): one strided-batched call per index of the first batch dimension.
 * A batch of enough work (OKTO__GEMM_PART flops in all) is split across the compute lanes by
 * ranges of its first batch dimension that has more than one product: each part writes only
 * its products of c and reads only the operands' matching products, so later ops on a part's
 * products wait for that part alone. Every element of c is one dot product summed in k order
 * by one work item (or CLBlast's fixed tiling), so every policy gives the same bits. */
#include "op.h"

#include <clblast_c.h>
#include <string.h>

static okto_status matmul_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_MATMUL = {
    .name = "matmul",
    .family = "matmul",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "2-D to 4-D (leading dimensions batch, broadcast as NumPy), one unit stride per "
               "matrix (a transposed view is a transposed operand); else copied",
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
/* Per product, at or below: okto's batched kernel. One strided-batched CLBlast call pays its
 * host cost once for the whole batch, so the own kernel wins only for the tiniest products
 * (median of 15 sequential runs of one batched matmul on the 2-core PoCL machine, own kernel /
 * CLBlast: 1024 8-cubed 0.55 / 1.8 ms, 1024 12-cubed 0.70 / 0.76 ms, 1024 16-cubed 3.2 / 1.5
 * ms; 256 32-cubed 6.5 / 2.6 ms; 64 16-cubed 0.18 / 0.11 ms). */
#define OKTO__GEMM_SMALL_BATCHED (12.0 * 12.0 * 12.0)
#define OKTO__GEMM_PANEL_MIN_ROWS 32
#define OKTO__GEMM_PANEL_ROWS 512

typedef struct gemm_call {
    int ta, tb;
    size_t m, n, k;
    float alpha, beta;
    cl_mem a, b, c;
    size_t ao, lda, bo, ldb, co, ldc;
    int host;            /* the host lane's CBLAS, not CLBlast (lib/lane_host.c) */
    float *ha, *hb, *hc; /* host: the storages' memory (okto__storage.host) */
} gemm_call;

static okto__host_gemm host_call(const gemm_call *g, size_t count, size_t sa, size_t sb, size_t sc)
{
    okto__host_gemm h = {g->ta, g->tb,  g->m,  g->n,  g->k,   g->alpha, g->beta,
                         g->ha, g->hb,  g->hc, g->ao, g->lda, g->bo,    g->ldb,
                         g->co, g->ldc, count, sa,    sb,     sc};
    return h;
}

static cl_int enqueue_clblast(const okto__exec *x)
{
    const gemm_call *g = x->data;
    if (g->host) {
        okto__host_gemm h = host_call(g, 1, 0, 0, 0);
        return okto__host_sgemm(x, &h);
    }
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
                      (uint64_t)(c->ta | c->tb << 1) << 62 ^ (uint64_t)c->host << 61);
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
                      ldc,
                      okto__ctx_host_lane(r->ctx) > 0 && A->v.st->host && B->v.st->host &&
                          c->st->host,
                      A->v.st->host,
                      B->v.st->host,
                      c->st->host};
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
        pc.hc = partial.st->host;
        pc.host = base.host && pc.hc;
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

/* ---- batched products -------------------------------------------------------------------------- */

const okto__op_desc okto__desc_MATMUL_BATCHED = {
    .name = "matmul.batched",
    .family = "matmul",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "3-D and 4-D: batch dimensions of any strides (0 where an operand broadcasts), "
               "one unit stride per matrix; else copied",
    .call = "CLBlastSgemmStridedBatched",
    .dtype_note = "f16/bf16 converted to f32, multiplied in f32, converted back",
    .partitioned = 1};

/* A batch of products: every operand as [n0, n1, rows, cols] (batch strides in elements, 0 where
 * it broadcasts), its matrices as CLBlast takes them. */
typedef struct bmat {
    okto_tensor v; /* the rank-4 view */
    int trans;     /* the matrices are stored transposed */
    size_t ld;
} bmat;

/* t's matrices as CLBlast takes them (one unit stride, as as_mat), or 0. */
static int as_bmat(const okto_tensor *t, bmat *m)
{
    m->v = *t;
    m->v.heap = 0;
    size_t rows = t->shape[2], cols = t->shape[3];
    if (cols == 1 || t->stride[3] == 1) {
        m->trans = 0;
        m->ld = rows == 1 ? cols : (size_t)t->stride[2];
        return m->ld >= cols;
    }
    if (rows == 1 || t->stride[2] == 1) {
        m->trans = 1;
        m->ld = (size_t)t->stride[3];
        return m->ld >= rows;
    }
    return 0;
}

/* t (rank 2 to 4) seen with c's batch shape lead[2]: batch dimensions aligned at the end, stride
 * 0 along the ones t broadcasts (size 1 or missing). */
static void batch_view(const okto_tensor *t, const size_t lead[2], okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->rank = 4;
    int lr = t->rank - 2;
    out->shape[2] = t->shape[t->rank - 2], out->stride[2] = t->stride[t->rank - 2];
    out->shape[3] = t->shape[t->rank - 1], out->stride[3] = t->stride[t->rank - 1];
    for (int i = 0; i < 2; i++) {
        int j = i - (2 - lr);
        out->shape[i] = lead[i];
        out->stride[i] = j >= 0 && lead[i] > 1 && t->shape[j] == lead[i] ? t->stride[j] : 0;
    }
}

/* The batch of v as one stride: the two batch dimensions merge (or one of them is 1). */
static int merge_batch(const okto_tensor *v, size_t *stride)
{
    size_t n0 = v->shape[0], n1 = v->shape[1];
    if (n0 == 1)
        *stride = n1 > 1 ? (size_t)v->stride[1] : 0;
    else if (n1 == 1)
        *stride = (size_t)v->stride[0];
    else if (v->stride[0] == v->stride[1] * (int64_t)n1)
        *stride = (size_t)v->stride[1];
    else
        return 0;
    return 1;
}

typedef struct gemm_batch_call {
    gemm_call g;
    size_t sa, sb, sc, count; /* batch strides in elements, products */
    int loop;                 /* one CLBlastSgemm per product (below) */
} gemm_batch_call;

/* CLBlast 1.5.3's strided-batched GEMM is wrong on its indirect path (products of at least
 * XGEMM_MIN_INDIRECT_SIZE cubed: 128 on CPUs after okto__clblast_tune), found twice here:
 *   - it drops a matrix's buffer offset when it uses the matrix in place instead of padding a
 *     copy (sizes that are multiples of its tiles): the second lane's part of a [32, 256, 256]
 *     x [32, 256, 64] batch came out as the first part's products (max error 1.7);
 *   - with a transposed A of stride 0 (a broadcast, as conv's dcols = W^T dy) every product
 *     after the first is wrong (288 x 256 x 32, batch 2: max error 1.4).
 * Its direct kernel (smaller products) and CLBlastSgemm's indirect path are right. So products
 * at or above the direct bound are issued as one CLBlastSgemm per product, in one task: there
 * the batched call measured no faster anyway (32 x [32 x 1024 x 288]: 122-131 ms batched, 130-150
 * ms as 32 calls; 32 x 256 x 256 x 64: 43-49 against 38-49 ms), since each product's work
 * dwarfs a call's ~43 us of host time. Smaller products stay one strided-batched call. */
static double direct_bound(okto_context *ctx)
{
    /* CPUs: okto__clblast_tune's 128; other devices keep CLBlast's database value, assumed
     * above 64 (its defaults are several hundred) */
    return okto__device_is_cpu(okto__ctx_device(ctx)) ? 128.0 * 128 * 128 : 64.0 * 64 * 64;
}

static cl_int enqueue_clblast_batched(const okto__exec *x)
{
    const gemm_batch_call *c = x->data;
    const gemm_call *g = &c->g;
    if (g->host) {
        okto__host_gemm h = host_call(g, c->count, c->sa, c->sb, c->sc);
        return okto__host_sgemm(x, &h);
    }
    cl_command_queue q;
    cl_int err = okto__exec_foreign_begin(x, &q);
    if (err != CL_SUCCESS)
        return err;
    if (c->loop) {
        CLBlastStatusCode st = CLBlastSuccess;
        for (size_t i = 0; i < c->count && st == CLBlastSuccess; i++) {
            int took = okto__clblast_begin(x->ctx, q, OKTO__CLBLAST_SGEMM);
            st = CLBlastSgemm(
                CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, g->m, g->n, g->k, g->alpha, g->a,
                g->ao + i * c->sa, g->lda, g->b, g->bo + i * c->sb, g->ldb, g->beta, g->c,
                g->co + i * c->sc, g->ldc, &q, i + 1 == c->count ? x->done : NULL);
            okto__clblast_end(x->ctx, q, OKTO__CLBLAST_SGEMM, took, st == CLBlastSuccess);
        }
        if (st == CLBlastSuccess)
            okto__exec_foreign_end(x, q);
        return st == CLBlastSuccess ? CL_SUCCESS : (cl_int)st;
    }
    int took = okto__clblast_begin(x->ctx, q, OKTO__CLBLAST_SGEMM_BATCHED);
    CLBlastStatusCode st = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, g->ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        g->tb ? CLBlastTransposeYes : CLBlastTransposeNo, g->m, g->n, g->k, g->alpha, g->a, g->ao,
        g->lda, c->sa, g->b, g->bo, g->ldb, c->sb, g->beta, g->c, g->co, g->ldc, c->sc, c->count,
        &q, x->done);
    okto__clblast_end(x->ctx, q, OKTO__CLBLAST_SGEMM_BATCHED, took, st == CLBlastSuccess);
    if (st == CLBlastSuccess)
        okto__exec_foreign_end(x, q);
    return st == CLBlastSuccess ? CL_SUCCESS : (cl_int)st;
}

static uint64_t batch_key(size_t m, size_t n, size_t k, size_t count, int ta, int tb)
{
    return (uint64_t)m * 1000003u ^ (uint64_t)n * 7919u ^ (uint64_t)k << 40 ^
           (uint64_t)count * 2654435761u ^ (uint64_t)(ta | tb << 1) << 62;
}

static void batch_access(okto__tb *t, const okto_tensor *c, const bmat *A, const bmat *B, int cmode)
{
    okto__tb_access(t, c, cmode);
    okto__tb_access(t, &A->v, OKTO__R);
    okto__tb_access(t, &B->v, OKTO__R);
}

/* One strided-batched CLBlast call over the products of c (their batch merged: merge_batch). */
static okto_status record_clblast_batched(okto__rec *r, const okto_tensor *c, float alpha,
                                          const bmat *A, const bmat *B, float beta, int ta, int tb,
                                          int part, int nparts)
{
    size_t m = c->shape[2], n = c->shape[3], k = ta ? A->v.shape[2] : A->v.shape[3];
    size_t count = c->shape[0] * c->shape[1];
    gemm_batch_call bc = {
        {ta ^ A->trans,
         tb ^ B->trans,
         m,
         n,
         k,
         alpha,
         beta,
         A->v.st->mem,
         B->v.st->mem,
         c->st->mem,
         A->v.st->base + A->v.offset,
         A->ld,
         B->v.st->base + B->v.offset,
         B->ld,
         c->st->base + c->offset,
         m == 1 ? n : (size_t)c->stride[2],
         okto__ctx_host_lane(r->ctx) > 0 && A->v.st->host && B->v.st->host && c->st->host,
         A->v.st->host,
         B->v.st->host,
         c->st->host},
        0,
        0,
        0,
        count,
        0};
    merge_batch(&A->v, &bc.sa);
    merge_batch(&B->v, &bc.sb);
    merge_batch(c, &bc.sc);
    /* CLBlast 1.5.3 refuses c_stride 0 (CLBlastInvalidDimension) even for one product; a
     * broadcast operand's stride 0 it takes */
    if (bc.sc == 0)
        bc.sc = m * bc.g.ldc;
    bc.loop = (double)m * (double)n * (double)k >= direct_bound(r->ctx);
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_MATMUL_BATCHED);
    t.dtype = OKTO_F32;
    okto__tb_enqueue(&t, enqueue_clblast_batched, &bc, sizeof bc);
    batch_access(&t, c, A, B, beta == 0.0f ? OKTO__W : OKTO__RW);
    double mnk = (double)m * (double)n * (double)k * (double)count;
    okto__tb_cost(&t, 2.0 * mnk,
                  4.0 * (double)count * ((double)m * k + (double)k * n + 2.0 * m * n),
                  batch_key(m, n, k, count, bc.g.ta, bc.g.tb) ^ (uint64_t)bc.g.host << 61);
    okto__tb_part(&t, part, nparts);
    return okto__tb_commit(&t);
}

/* okto's own kernel over every product of c in one launch (products of at most
 * OKTO__GEMM_SMALL_BATCHED multiply-adds). */
static okto_status record_small_batched(okto__rec *r, const okto_tensor *c, float alpha,
                                        const bmat *A, const bmat *B, float beta, int ta, int tb,
                                        int part, int nparts)
{
    size_t m = c->shape[2], n = c->shape[3], k = ta ? A->v.shape[2] : A->v.shape[3];
    size_t count = c->shape[0] * c->shape[1];
    int sta = ta ^ A->trans, stb = tb ^ B->trans;
    okto__tb t;
    okto__tb_init(&t, r, OKTO__OP_MATMUL_BATCHED);
    okto__tb_kernel(&t, "gemm", OKTO_F32, NULL, "okto_gemm_small_batched");
    okto__tb_arg_ulong(&t, m);
    okto__tb_arg_ulong(&t, n);
    okto__tb_arg_ulong(&t, k);
    okto__tb_arg_float(&t, alpha);
    okto__tb_arg_tensor(&t, &A->v);
    okto__tb_arg_ulong(&t, A->ld);
    okto__tb_arg_int(&t, sta);
    okto__tb_arg_long(&t, A->v.stride[0]);
    okto__tb_arg_long(&t, A->v.stride[1]);
    okto__tb_arg_tensor(&t, &B->v);
    okto__tb_arg_ulong(&t, B->ld);
    okto__tb_arg_int(&t, stb);
    okto__tb_arg_long(&t, B->v.stride[0]);
    okto__tb_arg_long(&t, B->v.stride[1]);
    okto__tb_arg_float(&t, beta);
    okto__tb_arg_tensor(&t, c);
    okto__tb_arg_ulong(&t, m == 1 ? n : (size_t)c->stride[2]);
    okto__tb_arg_long(&t, c->stride[0]);
    okto__tb_arg_long(&t, c->stride[1]);
    okto__tb_arg_ulong(&t, c->shape[1]);
    okto__tb_arg_ulong(&t, count);
    /* a fixed grid (the launch rule): a group of 8 x 8 items per product at a time, the third
     * dimension striding over the products */
    size_t global[3] = {8, 8, okto__rec_device(r)->grid_groups}, local[3] = {8, 8, 1};
    okto__tb_range(&t, 3, global, local);
    batch_access(&t, c, A, B, beta == 0.0f ? OKTO__W : OKTO__RW);
    double mnk = (double)m * (double)n * (double)k * (double)count;
    okto__tb_cost(&t, 2.0 * mnk,
                  4.0 * (double)count * ((double)m * k + (double)k * n + 2.0 * m * n),
                  batch_key(m, n, k, count, sta, stb) ^ 1);
    okto__tb_part(&t, part, nparts);
    return okto__tb_commit(&t);
}

static void bmat_slice(const bmat *x, int dim, size_t i0, size_t len, bmat *out)
{
    *out = *x;
    okto__view_slice(&x->v, dim, i0, len, &out->v);
}

/* C = alpha op(A) op(B) + beta C over a batch of more than one product, all f32 [n0, n1, r, c]
 * views of one batch shape; C's matrices row-dense. */
static okto_status batched_f32(okto__rec *r, const okto_tensor *c, float alpha, const bmat *A,
                               const bmat *B, float beta, int ta, int tb)
{
    size_t m = c->shape[2], n = c->shape[3], k = ta ? A->v.shape[2] : A->v.shape[3];
    double mnk = (double)m * (double)n * (double)k;
    double flops = 2.0 * mnk * (double)(c->shape[0] * c->shape[1]);
    int small = mnk <= OKTO__GEMM_SMALL_BATCHED;
    if (!small)
        okto__clblast_tune(r->ctx);
    /* parts: ranges of the first batch dimension with more than one product */
    int dim = c->shape[0] > 1 ? 0 : 1, lanes = okto__ctx_compute_lanes(r->ctx), parts = 1;
    if (lanes > 1 && flops >= OKTO__GEMM_PART)
        parts = (size_t)lanes < c->shape[dim] ? lanes : (int)c->shape[dim];
    okto_status s = OKTO_OK;
    for (int p = 0; p < parts && s == OKTO_OK; p++) {
        size_t i0 = okto__part_row(c->shape[dim], p, parts);
        size_t len = okto__part_row(c->shape[dim], p + 1, parts) - i0;
        okto_tensor cp;
        bmat ap, bp;
        okto__view_slice(c, dim, i0, len, &cp);
        bmat_slice(A, dim, i0, len, &ap);
        bmat_slice(B, dim, i0, len, &bp);
        size_t sa, sb, sc;
        if (small) {
            s = record_small_batched(r, &cp, alpha, &ap, &bp, beta, ta, tb, p, parts);
        } else if (merge_batch(&cp, &sc) && merge_batch(&ap.v, &sa) && merge_batch(&bp.v, &sb)) {
            s = record_clblast_batched(r, &cp, alpha, &ap, &bp, beta, ta, tb, p, parts);
        } else {
            /* the batch does not merge: one call per index of the first batch dimension */
            for (size_t i = 0; i < cp.shape[0] && s == OKTO_OK; i++) {
                okto_tensor ci;
                bmat ai, bi;
                okto__view_slice(&cp, 0, i, 1, &ci);
                bmat_slice(&ap, 0, i, 1, &ai);
                bmat_slice(&bp, 0, i, 1, &bi);
                s = record_clblast_batched(r, &ci, alpha, &ai, &bi, beta, ta, tb, p, parts);
            }
        }
    }
    return s;
}

/* ---- the public calls -------------------------------------------------------------------------- */

/* An operand in float32 with matrices CLBlast takes: itself, a contiguous copy, or a float copy
 * of a half type. */
static okto_status operand(okto__rec *r, const okto_tensor *t, okto_tensor *out)
{
    okto_status s = OKTO_OK;
    okto_tensor v4;
    bmat m;
    size_t one[2] = {1, 1};
    batch_view(t, one, &v4); /* its matrices; the batch strides do not matter here */
    if (t->dtype != OKTO_F32) {
        s = okto__rec_temp(r, OKTO_F32, t->rank, t->shape, out);
        if (s == OKTO_OK)
            s = okto_cast(r->g, out, t);
    } else if (!as_bmat(&v4, &m)) {
        s = okto__rec_layout(r, t, 0, out);
    } else {
        *out = *t;
        out->heap = 0;
    }
    return s;
}

/* The batch shape of c (its leading dimensions, padded in front to 2), and whether a's and b's
 * broadcast to it. */
static int batch_shape(const okto_tensor *c, const okto_tensor *a, const okto_tensor *b,
                       size_t lead[2])
{
    int lc = c->rank - 2;
    if (c->rank < a->rank || c->rank < b->rank)
        return 0;
    for (int i = 0; i < 2; i++) {
        int j = i - (2 - lc);
        lead[i] = j >= 0 ? c->shape[j] : 1;
        const okto_tensor *ops[2] = {a, b};
        size_t want = 1;
        for (int o = 0; o < 2; o++) {
            int jo = i - (2 - (ops[o]->rank - 2));
            size_t d = jo >= 0 ? ops[o]->shape[jo] : 1;
            if (d != 1 && want != 1 && d != want)
                return 0;
            if (d != 1)
                want = d;
        }
        if (want != lead[i])
            return 0;
    }
    return 1;
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
    if (s == OKTO_OK && (a->rank < 2 || b->rank < 2 || c->rank < 2))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "c is %s, a is %s, b is %s: all must be 2-D to 4-D (matrices in the "
                           "last two dimensions)",
                           OKTO__DESC(c), OKTO__DESC(a), OKTO__DESC(b));
    if (s == OKTO_OK && (a->dtype != c->dtype || b->dtype != c->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "c is %s, a is %s, b is %s: dtypes differ",
                           OKTO__DESC(c), OKTO__DESC(a), OKTO__DESC(b));
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    size_t lead[2] = {1, 1};
    if (s == OKTO_OK) {
        size_t ar = a->shape[a->rank - 2], ac = a->shape[a->rank - 1];
        size_t br = b->shape[b->rank - 2], bcol = b->shape[b->rank - 1];
        size_t m = ta ? ac : ar, ka = ta ? ar : ac, kb = tb ? bcol : br, n = tb ? br : bcol;
        if (ka != kb || c->shape[c->rank - 2] != m || c->shape[c->rank - 1] != n)
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "shapes do not match: c is %s, op(a) is %zux%zu (a %s%s), op(b) "
                               "is %zux%zu (b %s%s); need c = m x n, op(a) = m x k, op(b) = k x n",
                               OKTO__DESC(c), m, ka, OKTO__DESC(a), ta ? ", transposed" : "", kb, n,
                               OKTO__DESC(b), tb ? ", transposed" : "");
        else if (!batch_shape(c, a, b, lead))
            s = okto__rec_fail(&r, OKTO_EINVAL,
                               "batch dimensions do not match: c is %s, a is %s, b is %s; c's "
                               "leading dimensions must be a's and b's broadcast (each equal "
                               "or 1, aligned at the end), and c at least as many",
                               OKTO__DESC(c), OKTO__DESC(a), OKTO__DESC(b));
    }
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, c, "c", a, "a", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, c, "c", b, "b", 0);
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    if (accumulate_ok)
        beta = (flags & OKTO_ACCUMULATE) ? 1.0f : 0.0f;
    okto_tensor av, bv;
    s = operand(&r, a, &av);
    if (s == OKTO_OK)
        s = operand(&r, b, &bv);
    /* C: row-dense f32 matrices as they are; else a float temporary, filled from c when beta
     * reads it */
    okto_tensor cv = *c, c4;
    bmat C;
    batch_view(c, lead, &c4);
    int direct = c->dtype == OKTO_F32 && as_bmat(&c4, &C) && !C.trans;
    cv.heap = 0;
    if (s == OKTO_OK && !direct) {
        s = okto__rec_temp(&r, OKTO_F32, c->rank, c->shape, &cv);
        if (s == OKTO_OK && beta != 0.0f)
            s = okto_cast(g, &cv, c);
    }
    if (s == OKTO_OK && lead[0] * lead[1] == 1) {
        /* one product: the 2-D path on the matrices */
        okto_tensor m2[3];
        const okto_tensor *src[3] = {&cv, &av, &bv};
        mat A, B;
        for (int i = 0; i < 3; i++) {
            const okto_tensor *t = src[i];
            m2[i] = *t;
            m2[i].rank = 2;
            m2[i].shape[0] = t->shape[t->rank - 2], m2[i].stride[0] = t->stride[t->rank - 2];
            m2[i].shape[1] = t->shape[t->rank - 1], m2[i].stride[1] = t->stride[t->rank - 1];
            m2[i].shape[2] = m2[i].shape[3] = 1, m2[i].stride[2] = m2[i].stride[3] = 0;
        }
        if (!as_mat(&m2[1], &A) || !as_mat(&m2[2], &B))
            s = okto__rec_fail(&r, OKTO_EINVAL, "internal: an operand is no matrix");
        else
            s = gemm_f32(&r, &m2[0], alpha, &A, &B, beta, ta, tb);
    } else if (s == OKTO_OK) {
        okto_tensor a4, b4;
        bmat A, B;
        batch_view(&cv, lead, &c4);
        batch_view(&av, lead, &a4);
        batch_view(&bv, lead, &b4);
        if (!as_bmat(&a4, &A) || !as_bmat(&b4, &B))
            s = okto__rec_fail(&r, OKTO_EINVAL, "internal: an operand is no batch of matrices");
        else
            s = batched_f32(&r, &c4, alpha, &A, &B, beta, ta, tb);
    }
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

/* t with its matrices transposed (the last two dimensions swapped: a view) */
static okto_tensor tr(const okto_tensor *t)
{
    okto_tensor v;
    okto__view_swap(t, t->rank - 2, t->rank - 1, &v);
    return v;
}

/* dst += alpha x y, where the product's batch is c's: straight into dst when dst has that
 * batch, else (dst was broadcast across it) through a temporary summed down to dst's shape. */
static okto_status add_product(okto__grad *gr, okto_tensor *dst, float alpha, const okto_tensor *x,
                               const okto_tensor *y, const okto_tensor *c)
{
    okto_graph *g = okto__grad_graph(gr);
    int full = dst->rank == c->rank;
    for (int i = 0; full && i < c->rank - 2; i++)
        full = dst->shape[i] == c->shape[i];
    if (full)
        return okto_gemm(g, dst, alpha, x, y, 1.0f, 0);
    size_t shape[OKTO_MAX_RANK];
    memcpy(shape, c->shape, sizeof shape);
    shape[c->rank - 2] = dst->shape[dst->rank - 2];
    shape[c->rank - 1] = dst->shape[dst->rank - 1];
    okto_tensor t;
    okto_status s = okto__grad_temp(gr, dst->dtype, c->rank, shape, &t);
    if (s == OKTO_OK)
        s = okto_gemm(g, &t, alpha, x, y, 0.0f, 0);
    return s == OKTO_OK ? okto_sum_to(g, dst, &t, OKTO_ACCUMULATE) : s;
}

/* c = alpha op(a) op(b) + beta c, with A = op(a), B = op(b) (matrices in the last two
 * dimensions, batches broadcast):
 *   dA = alpha dC B^T, so da += alpha dC B^T (a plain) or alpha B dC^T (a transposed);
 *   dB = alpha A^T dC, so db += alpha A^T dC (b plain) or alpha dC^T A (b transposed);
 *   dc (the old c) += beta dC;
 * each summed over the batch dimensions its operand was broadcast along. Transposes are views,
 * which the GEMM takes as transposed operands. */
static okto_status matmul_grad(okto__grad *gr, const okto__ad_node *n)
{
    const okto_tensor *dc = okto__grad_out(gr, 0), *a = &n->t[0], *b = &n->t[1];
    okto_tensor *da = okto__grad_in(gr, 0), *db = okto__grad_in(gr, 1);
    okto_tensor *dc0 = n->nin > 2 ? okto__grad_in(gr, 2) : NULL;
    float alpha = n->f[0];
    int ta = n->i[0], tb = n->i[1];
    okto_tensor A = ta ? tr(a) : *a, B = tb ? tr(b) : *b, dct = tr(dc);
    okto_tensor At = tr(&A), Bt = tr(&B);
    okto_status s = OKTO_OK;
    if (da)
        s = ta ? add_product(gr, da, alpha, &B, &dct, dc) : add_product(gr, da, alpha, dc, &Bt, dc);
    if (s == OKTO_OK && db)
        s = tb ? add_product(gr, db, alpha, &dct, &A, dc) : add_product(gr, db, alpha, &At, dc, dc);
    if (s == OKTO_OK && dc0)
        s = okto_axpy(okto__grad_graph(gr), dc0, n->f[1], dc);
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
