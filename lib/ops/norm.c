/* lib/ops/norm.c: okto_layernorm and okto_rmsnorm over the last dimension, and their backward
 * ops. Kernels in cl/norm.cl (their header gives the launch shapes and the summation order).
 *
 * Forward and dx are row kernels, split into row parts across the compute lanes (a part reads
 * and writes only its rows). dweight and dbias are sums over every row, kept deterministic by
 * the kernels' blocking: the rows are cut into nblocks blocks of block_rows (a function of the
 * shape and the device only), each block's column sums go to a float32 scratch [nblocks, cols]
 * (the blocks split across parts, each part writing its own blocks' rows of the scratch), and
 * one okto_norm_reduce_partials task per gradient adds the blocks in order. So the bits depend
 * on neither the policy nor the number of lanes. */
#include "rowkit.h"

#include <math.h>

static okto_status norm_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_LAYERNORM = {.name = "layernorm",
                                            .family = "norm",
                                            .dtypes = OKTO__DT_FLOATS,
                                            .layouts = "any strides (copied); mean, rstd f32",
                                            .partitioned = 1,
                                            .backward = norm_grad};
const okto__op_desc okto__desc_LAYERNORM_BACKWARD = {.name = "layernorm.backward",
                                                     .family = "norm",
                                                     .dtypes = OKTO__DT_FLOATS,
                                                     .layouts = "any strides (copied)",
                                                     .partitioned = 1};
const okto__op_desc okto__desc_LAYERNORM_BACKWARD_PARAMS = {
    .name = "layernorm.backward_params",
    .family = "norm",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "any strides (copied); blocked partial sums",
    .partitioned = 1};
const okto__op_desc okto__desc_RMSNORM = {.name = "rmsnorm",
                                          .family = "norm",
                                          .dtypes = OKTO__DT_FLOATS,
                                          .layouts = "any strides (copied); rstd f32",
                                          .partitioned = 1,
                                          .backward = norm_grad};
const okto__op_desc okto__desc_RMSNORM_BACKWARD = {.name = "rmsnorm.backward",
                                                   .family = "norm",
                                                   .dtypes = OKTO__DT_FLOATS,
                                                   .layouts = "any strides (copied)",
                                                   .partitioned = 1};
const okto__op_desc okto__desc_RMSNORM_BACKWARD_PARAMS = {
    .name = "rmsnorm.backward_params",
    .family = "norm",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "any strides (copied); blocked partial sums",
    .partitioned = 1};

static uint64_t key(size_t rows, size_t cols, unsigned tag)
{
    return ((uint64_t)rows << 32) ^ (uint64_t)cols ^ ((uint64_t)tag << 60);
}

/* ---- forward ---------------------------------------------------------------------------------- */

static okto_status norm_fwd(okto_graph *g, int rms, okto_tensor *y, okto_tensor *mean,
                            okto_tensor *rstd, const okto_tensor *x, const okto_tensor *weight,
                            const okto_tensor *bias, float eps)
{
    okto__op op = rms ? OKTO__OP_RMSNORM : OKTO__OP_LAYERNORM;
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, rms ? "okto_rmsnorm" : "okto_layernorm");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rk_same(&r, x, "x", y, "y", 1);
    size_t cols = s == OKTO_OK ? x->shape[x->rank - 1] : 0;
    size_t rows = s == OKTO_OK ? okto__numel(x) / cols : 0;
    if (s == OKTO_OK && weight &&
        (s = okto__rec_tensor(&r, weight, "weight", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_vec(&r, weight, "weight", x, cols);
    if (s == OKTO_OK && bias &&
        (s = okto__rec_tensor(&r, bias, "bias", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_vec(&r, bias, "bias", x, cols);
    if (s == OKTO_OK && mean)
        s = okto__rk_stat(&r, mean, "mean", x, "x", rows, 1);
    if (s == OKTO_OK && rstd)
        s = okto__rk_stat(&r, rstd, "rstd", x, "x", rows, 1);
    if (s == OKTO_OK && !(eps > 0.0f && eps < INFINITY))
        s = okto__rec_fail(&r, OKTO_EINVAL, "eps is %g; it must be finite and > 0", (double)eps);
    if (s == OKTO_OK) {
        const okto_tensor *outs[] = {y, mean, rstd}, *ins[] = {x, weight, bias};
        const char *on[] = {"y", "mean", "rstd"}, *in[] = {"x", "weight", "bias"};
        s = okto__rk_disjoint(&r, 3, outs, on, 3, ins, in, 1);
    }
    okto_tensor x2, w1, b1;
    okto__rk_out yo = {0}, mo = {0}, ro = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, x, &x2);
    if (s == OKTO_OK && weight)
        s = okto__rk_in1d(&r, weight, &w1);
    if (s == OKTO_OK && bias)
        s = okto__rk_in1d(&r, bias, &b1);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, y, 1, 0, &yo);
    /* the kernels always write the statistics: scratch when the caller wants none */
    okto_tensor mscratch, rscratch;
    if (s == OKTO_OK && !rms && !mean &&
        (s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){rows}, &mscratch)) == OKTO_OK)
        mean = &mscratch;
    if (s == OKTO_OK && !rstd &&
        (s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){rows}, &rscratch)) == OKTO_OK)
        rstd = &rscratch;
    if (s == OKTO_OK && !rms)
        s = okto__rk_out_begin(&r, mean, 0, 0, &mo);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, rstd, 0, 0, &ro);
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, rows, (double)rows * (double)cols) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, yi, mi, ri;
        okto__view_slice(&x2, 0, r0, r1 - r0, &xi);
        okto__view_slice(&yo.m, 0, r0, r1 - r0, &yi);
        okto__view_flat(&ro.m, r0, r1, &ri);
        if (!rms)
            okto__view_flat(&mo.m, r0, r1, &mi);
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "norm", x->dtype, NULL,
                        rms ? "okto_rmsnorm_fwd" : "okto_layernorm_fwd");
        if ((s = t.status) != OKTO_OK || (s = okto__rk_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        /* an absent weight or bias: the kernel never reads its slot (x as a placeholder) */
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_tensor(&t, weight ? &w1 : &xi);
        if (!rms)
            okto__tb_arg_tensor(&t, bias ? &b1 : &xi);
        okto__tb_arg_tensor(&t, &yi);
        if (!rms)
            okto__tb_arg_tensor(&t, &mi);
        okto__tb_arg_tensor(&t, &ri);
        okto__tb_arg_ulong(&t, r1 - r0);
        okto__tb_arg_ulong(&t, cols);
        okto__tb_arg_float(&t, eps);
        okto__tb_arg_int(&t, weight != NULL);
        if (!rms)
            okto__tb_arg_int(&t, bias != NULL);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &xi, OKTO__R);
        if (weight)
            okto__tb_access(&t, &w1, OKTO__R);
        if (bias && !rms)
            okto__tb_access(&t, &b1, OKTO__R);
        okto__tb_access(&t, &yi, OKTO__W);
        if (!rms)
            okto__tb_access(&t, &mi, OKTO__W);
        okto__tb_access(&t, &ri, OKTO__W);
        double n = (double)(r1 - r0) * (double)cols;
        okto__tb_cost(&t, 8 * n, 3 * n * (double)okto_dtype_size(x->dtype),
                      key(r1 - r0, cols, (unsigned)rms));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &yo, s);
    if (!rms && mean != &mscratch)
        s = okto__rk_out_end(&r, &mo, s);
    if (rstd != &rscratch)
        s = okto__rk_out_end(&r, &ro, s);
    /* the gradient reads x, the weight and the statistics (the scratch ones when the caller
     * asked for none: the kernels always write them) */
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = op, .nin = 3, .nout = 1, .naux = 2,
                                                 .t = {x, weight, bias, y, rms ? NULL : mean,
                                                       rstd},
                                                 .saved = 1u | 2u | 16u | 32u, .overwrite = 1,
                                                 .f = {eps}, .i = {rms}});
    return okto__rec_end(&r, s);
}

static okto_status norm_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    okto_tensor *dx = okto__grad_in(gr, 0), *dw = okto__grad_in(gr, 1), *db = okto__grad_in(gr, 2);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    const okto_tensor *w = n->t[1].st ? &n->t[1] : NULL;
    if (!dx && !dw && !db)
        return OKTO_OK;
    if (n->i[0])
        return dx || dw ? okto_rmsnorm_backward(g, dx, dw, dy, &n->t[0], w, &n->t[5],
                                                OKTO_ACCUMULATE)
                        : OKTO_OK;
    return okto_layernorm_backward(g, dx, dw, db, dy, &n->t[0], w, &n->t[4], &n->t[5],
                                   OKTO_ACCUMULATE);
}

okto_status okto_layernorm(okto_graph *g, okto_tensor *y, okto_tensor *mean, okto_tensor *rstd,
                           const okto_tensor *x, const okto_tensor *weight, const okto_tensor *bias,
                           float eps)
{
    return norm_fwd(g, 0, y, mean, rstd, x, weight, bias, eps);
}

okto_status okto_rmsnorm(okto_graph *g, okto_tensor *y, okto_tensor *rstd, const okto_tensor *x,
                         const okto_tensor *weight, float eps)
{
    return norm_fwd(g, 1, y, NULL, rstd, x, weight, NULL, eps);
}

/* ---- backward ---------------------------------------------------------------------------------- */

/* Row blocks of the dweight / dbias partials: about 64 * grid_groups * 8 items in the partial
 * kernel (4096 on a 2-core CPU), at most 1024 blocks and at most one per row. */
static void blocking(const okto__device *d, size_t rows, size_t cols, size_t *nblocks,
                     size_t *block_rows)
{
    size_t target = 512 * d->grid_groups, nb = (target + cols - 1) / cols;
    nb = nb < 1 ? 1 : nb > 1024 ? 1024 : nb;
    nb = nb > rows ? rows : nb;
    *block_rows = (rows + nb - 1) / nb;
    *nblocks = (rows + *block_rows - 1) / *block_rows;
}

/* out (+)= the sum of part's nblocks rows, in block order. */
static okto_status reduce_partials(okto__rec *r, okto__op op, const okto_tensor *part,
                                   okto__rk_out *o, size_t nblocks, size_t cols, int acc)
{
    okto__tb t;
    okto__tb_init(&t, r, op);
    okto__tb_kernel(&t, "norm", o->m.dtype, NULL, "okto_norm_reduce_partials");
    okto__tb_arg_tensor(&t, part);
    okto__tb_arg_tensor(&t, &o->m);
    okto__tb_arg_ulong(&t, nblocks);
    okto__tb_arg_ulong(&t, cols);
    okto__tb_arg_int(&t, acc);
    okto__tb_range_1d(&t, cols);
    okto__tb_access(&t, part, OKTO__R);
    okto__tb_access(&t, &o->m, acc ? OKTO__RW : OKTO__W);
    double n = (double)nblocks * (double)cols;
    okto__tb_cost(&t, 4 * n, 4 * n, key(nblocks, cols, 7));
    return okto__tb_commit(&t);
}

static okto_status norm_bwd(okto_graph *g, int rms, okto_tensor *dx, okto_tensor *dweight,
                            okto_tensor *dbias, const okto_tensor *dy, const okto_tensor *x,
                            const okto_tensor *weight, const okto_tensor *mean,
                            const okto_tensor *rstd, unsigned flags)
{
    okto__op op = rms ? OKTO__OP_RMSNORM_BACKWARD : OKTO__OP_LAYERNORM_BACKWARD;
    okto__op pop = rms ? OKTO__OP_RMSNORM_BACKWARD_PARAMS : OKTO__OP_LAYERNORM_BACKWARD_PARAMS;
    okto__rec r;
    okto_status s =
        okto__rec_begin(&r, g, op, rms ? "okto_rmsnorm_backward" : "okto_layernorm_backward");
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    if (s == OKTO_OK)
        s = okto__rk_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rk_same(&r, x, "x", dy, "dy", 1);
    if (s == OKTO_OK && !dx && !dweight && !dbias)
        s = okto__rec_fail(&r, OKTO_EINVAL, "dx, dweight%s are all NULL", rms ? "" : " and dbias");
    size_t cols = s == OKTO_OK ? x->shape[x->rank - 1] : 0;
    size_t rows = s == OKTO_OK ? okto__numel(x) / cols : 0;
    if (s == OKTO_OK && dx && (s = okto__rec_output(&r, dx, "dx", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_same(&r, x, "x", dx, "dx", 1);
    if (s == OKTO_OK && dweight &&
        (s = okto__rec_output(&r, dweight, "dweight", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_vec(&r, dweight, "dweight", x, cols);
    if (s == OKTO_OK && dbias &&
        (s = okto__rec_output(&r, dbias, "dbias", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_vec(&r, dbias, "dbias", x, cols);
    if (s == OKTO_OK && weight &&
        (s = okto__rec_tensor(&r, weight, "weight", OKTO__DT_FLOATS)) == OKTO_OK)
        s = okto__rk_vec(&r, weight, "weight", x, cols);
    if (s == OKTO_OK && !rms)
        s = okto__rk_stat(&r, mean, "mean", x, "x", rows, 0);
    if (s == OKTO_OK)
        s = okto__rk_stat(&r, rstd, "rstd", x, "x", rows, 0);
    if (s == OKTO_OK) {
        const okto_tensor *outs[] = {dx, dweight, dbias}, *ins[] = {dy, x, weight, mean, rstd};
        const char *on[] = {"dx", "dweight", "dbias"};
        const char *in[] = {"dy", "x", "weight", "mean", "rstd"};
        s = okto__rk_disjoint(&r, 3, outs, on, rms ? 4 : 5,
                              rms ? (const okto_tensor *[]){dy, x, weight, rstd} : ins,
                              rms ? (const char *[]){"dy", "x", "weight", "rstd"} : in, !acc);
    }
    okto_tensor x2, dy2, w1, m1, r1v;
    okto__rk_out dxo = {0}, dwo = {0}, dbo = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, x, &x2);
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, dy, &dy2);
    if (s == OKTO_OK && weight)
        s = okto__rk_in1d(&r, weight, &w1);
    if (s == OKTO_OK && !rms)
        s = okto__rk_in1d(&r, mean, &m1);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, rstd, &r1v);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, dx, 1, acc, &dxo);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, dweight, 0, acc, &dwo);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, dbias, 0, acc, &dbo);
    double esz = s == OKTO_OK ? (double)okto_dtype_size(x->dtype) : 0;

    /* dx: row parts */
    int nparts = dx && s == OKTO_OK ? okto__rec_parts(&r, rows, (double)rows * (double)cols) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t a = okto__part_row(rows, p, nparts), b = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, dyi, dxi, mi, ri;
        okto__view_slice(&x2, 0, a, b - a, &xi);
        okto__view_slice(&dy2, 0, a, b - a, &dyi);
        okto__view_slice(&dxo.m, 0, a, b - a, &dxi);
        okto__view_flat(&r1v, a, b, &ri);
        if (!rms)
            okto__view_flat(&m1, a, b, &mi);
        okto__tb t;
        okto__tb_init(&t, &r, op);
        okto__tb_kernel(&t, "norm", x->dtype, NULL,
                        rms ? "okto_rmsnorm_bwd_dx" : "okto_layernorm_bwd_dx");
        if ((s = t.status) != OKTO_OK || (s = okto__rk_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        okto__tb_arg_tensor(&t, &dyi);
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_tensor(&t, weight ? &w1 : &xi);
        if (!rms)
            okto__tb_arg_tensor(&t, &mi);
        okto__tb_arg_tensor(&t, &ri);
        okto__tb_arg_tensor(&t, &dxi);
        okto__tb_arg_ulong(&t, b - a);
        okto__tb_arg_ulong(&t, cols);
        okto__tb_arg_int(&t, weight != NULL);
        okto__tb_arg_int(&t, acc);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &dyi, OKTO__R);
        okto__tb_access(&t, &xi, OKTO__R);
        if (weight)
            okto__tb_access(&t, &w1, OKTO__R);
        if (!rms)
            okto__tb_access(&t, &mi, OKTO__R);
        okto__tb_access(&t, &ri, OKTO__R);
        okto__tb_access(&t, &dxi, acc ? OKTO__RW : OKTO__W);
        double n = (double)(b - a) * (double)cols;
        okto__tb_cost(&t, 12 * n, (acc ? 4 : 3) * n * esz, key(b - a, cols, 2 + (unsigned)rms));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }

    /* dweight, dbias: per-block partials (blocks split across parts), then the ordered sums */
    if (s == OKTO_OK && (dweight || dbias)) {
        size_t nb, br;
        blocking(okto__rec_device(&r), rows, cols, &nb, &br);
        okto_tensor pw, pb;
        if (dweight)
            s = okto__rec_temp(&r, OKTO_F32, 2, (size_t[]){nb, cols}, &pw);
        if (s == OKTO_OK && dbias)
            s = okto__rec_temp(&r, OKTO_F32, 2, (size_t[]){nb, cols}, &pb);
        int np = s == OKTO_OK ? okto__rec_parts(&r, nb, (double)rows * (double)cols) : 0;
        for (int p = 0; p < np && s == OKTO_OK; p++) {
            size_t b0 = okto__part_row(nb, p, np), b1 = okto__part_row(nb, p + 1, np);
            size_t a = b0 * br, b = b1 * br < rows ? b1 * br : rows;
            okto_tensor xi, dyi, mi, ri, pwi, pbi;
            okto__view_slice(&x2, 0, a, b - a, &xi);
            okto__view_slice(&dy2, 0, a, b - a, &dyi);
            okto__view_flat(&r1v, a, b, &ri);
            if (!rms)
                okto__view_flat(&m1, a, b, &mi);
            if (dweight)
                okto__view_slice(&pw, 0, b0, b1 - b0, &pwi);
            if (dbias)
                okto__view_slice(&pb, 0, b0, b1 - b0, &pbi);
            okto__tb t;
            okto__tb_init(&t, &r, pop);
            okto__tb_kernel(&t, "norm", x->dtype, NULL,
                            rms ? "okto_rmsnorm_bwd_w" : "okto_layernorm_bwd_wb");
            okto__tb_arg_tensor(&t, &dyi);
            okto__tb_arg_tensor(&t, &xi);
            if (!rms)
                okto__tb_arg_tensor(&t, &mi);
            okto__tb_arg_tensor(&t, &ri);
            /* an absent partial: never written (its slot gets the other one) */
            okto__tb_arg_tensor(&t, dweight ? &pwi : &pbi);
            if (!rms)
                okto__tb_arg_tensor(&t, dbias ? &pbi : &pwi);
            okto__tb_arg_ulong(&t, b - a);
            okto__tb_arg_ulong(&t, cols);
            okto__tb_arg_ulong(&t, br);
            if (!rms) {
                okto__tb_arg_int(&t, dweight != NULL);
                okto__tb_arg_int(&t, dbias != NULL);
            }
            okto__rk_range_2d(&t, cols, b1 - b0);
            okto__tb_access(&t, &dyi, OKTO__R);
            okto__tb_access(&t, &xi, OKTO__R);
            if (!rms)
                okto__tb_access(&t, &mi, OKTO__R);
            okto__tb_access(&t, &ri, OKTO__R);
            if (dweight)
                okto__tb_access(&t, &pwi, OKTO__W);
            if (dbias)
                okto__tb_access(&t, &pbi, OKTO__W);
            double n = (double)(b - a) * (double)cols;
            okto__tb_cost(&t, 6 * n, 2 * n * esz, key(b - a, cols, 4 + (unsigned)rms));
            okto__tb_part(&t, p, np);
            s = okto__tb_commit(&t);
        }
        if (s == OKTO_OK && dweight)
            s = reduce_partials(&r, pop, &pw, &dwo, nb, cols, acc);
        if (s == OKTO_OK && dbias)
            s = reduce_partials(&r, pop, &pb, &dbo, nb, cols, acc);
    }
    s = okto__rk_out_end(&r, &dxo, s);
    s = okto__rk_out_end(&r, &dwo, s);
    s = okto__rk_out_end(&r, &dbo, s);
    return okto__rec_end(&r, s);
}

okto_status okto_layernorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                    okto_tensor *dbias, const okto_tensor *dy, const okto_tensor *x,
                                    const okto_tensor *weight, const okto_tensor *mean,
                                    const okto_tensor *rstd, unsigned flags)
{
    return norm_bwd(g, 0, dx, dweight, dbias, dy, x, weight, mean, rstd, flags);
}

okto_status okto_rmsnorm_backward(okto_graph *g, okto_tensor *dx, okto_tensor *dweight,
                                  const okto_tensor *dy, const okto_tensor *x,
                                  const okto_tensor *weight, const okto_tensor *rstd,
                                  unsigned flags)
{
    return norm_bwd(g, 1, dx, dweight, NULL, dy, x, weight, NULL, rstd, flags);
}
