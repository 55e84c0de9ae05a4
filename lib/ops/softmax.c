/* lib/ops/softmax.c: okto_softmax (over the last dimension) and okto_softmax_xent (fused
 * softmax and cross-entropy loss and gradient, int32 labels). Kernels in cl/softmax.cl, one
 * work-group per row.
 *
 * Both see their input as rows (all leading dimensions) x the last one, and split by rows, one
 * part per compute lane (okto__rec_parts); a part reads and writes only its rows. The loss of
 * softmax_xent is a mean over all rows: each part writes its rows' losses into a rows-long
 * float32 temporary, and okto_reduce_all (MEAN) averages them on the device with its tree
 * reduction, so the host never sees the per-row values.
 *
 * Labels: an i32 tensor of one label per row ([rows] or [rows, 1]), each in [0, classes). A label
 * out of range makes that row's loss NaN, leaves its gradient without the onehot term (never a
 * read out of bounds) and sets a device flag the run reports as OKTO_EINVAL (okto__rec_check). */
#include "op.h"

#include <stdint.h>
#include <string.h>

#define OKTO__SM_MAXL 256 /* cl/softmax.cl's local arrays: -DOKTO_SM_MAXL */

static okto_status softmax_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status xent_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_SOFTMAX = {.name = "softmax",
                                          .family = "softmax",
                                          .dtypes = OKTO__DT_FLOATS,
                                          .layouts =
                                              "rows of the last dimension dense (else copied)",
                                          .partitioned = 1,
                                          .backward = softmax_grad};
const okto__op_desc okto__desc_SOFTMAX_XENT = {
    .name = "softmax_xent",
    .family = "softmax",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "rows of the last dimension dense (else copied); labels i32",
    .partitioned = 1,
    .backward = xent_grad};

/* Work-group size for rows of `cols` elements: a power of two up to the row length, the
 * kernel's limit and OKTO__SM_MAXL; on a CPU one item per row, which walks it contiguously
 * (as rowkit's kernels: the group's barriers cost more than they share there; the gpt's
 * attention scores, 32768 rows of 64, in one traced step: 55 ms of kernel time over 4 tasks with
 * a group of 64 per row, 16 ms with one item). */
static okto_status pick_local(okto__rec *r, okto__kid kid, size_t cols, size_t *l)
{
    if (okto__device_is_cpu(okto__rec_device(r))) {
        *l = 1;
        return OKTO_OK;
    }
    size_t wg = OKTO__SM_MAXL;
    okto_status s = okto__kernel_wg_size(r->ctx, kid, &wg);
    if (s != OKTO_OK)
        return s;
    size_t lim = wg < OKTO__SM_MAXL ? wg : OKTO__SM_MAXL, p = 1;
    while (p * 2 <= lim && p < cols)
        p <<= 1;
    *l = p;
    return OKTO_OK;
}

static okto_status kernel(okto__tb *t, okto_dtype dt, const char *name)
{
    char extra[32];
    snprintf(extra, sizeof extra, "-DOKTO_SM_MAXL=%d", OKTO__SM_MAXL);
    okto__tb_kernel(t, "softmax", dt, extra, name);
    return t->status;
}

/* in as a dense-rows 2-D view (a copy when it is not one). */
static okto_status rows_of(okto__rec *r, const okto_tensor *in, okto_tensor *m)
{
    okto_tensor v;
    okto_status s = okto__rec_layout(r, in, 1, &v);
    if (s == OKTO_OK && !okto__view_2d(&v, m))
        s = okto__rec_fail(r, OKTO_EINVAL, "internal: %s has no 2-D view", OKTO__DESC(&v));
    return s;
}

okto_status okto_softmax(okto_graph *g, okto_tensor *out, const okto_tensor *in)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_SOFTMAX, "okto_softmax");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
    if (s == OKTO_OK && (!okto__same_shape(out, in) || out->dtype != in->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "in is %s but out is %s", OKTO__DESC(in),
                           OKTO__DESC(out));
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", in, "in", 1);
    okto_tensor x, y, o;
    if (s == OKTO_OK)
        s = rows_of(&r, in, &x);
    /* out: written as dense rows, or through a temporary */
    int direct = s == OKTO_OK && okto__rows_dense(out) && okto__view_2d(out, &y);
    if (s == OKTO_OK && !direct &&
        (s = okto__rec_temp(&r, out->dtype, out->rank, out->shape, &o)) == OKTO_OK)
        okto__view_2d(&o, &y);
    size_t rows = s == OKTO_OK ? x.shape[0] : 0, cols = s == OKTO_OK ? x.shape[1] : 0;
    int nparts = okto__rec_parts(&r, rows, (double)rows * (double)cols);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, yi;
        okto__view_slice(&x, 0, r0, r1 - r0, &xi);
        okto__view_slice(&y, 0, r0, r1 - r0, &yi);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_SOFTMAX);
        if ((s = kernel(&t, in->dtype, "okto_softmax_rows")) != OKTO_OK ||
            (s = pick_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_long(&t, xi.shape[0] > 1 ? xi.stride[0] : (int64_t)cols);
        okto__tb_arg_tensor(&t, &yi);
        okto__tb_arg_long(&t, yi.shape[0] > 1 ? yi.stride[0] : (int64_t)cols);
        okto__tb_arg_long(&t, (int64_t)(r1 - r0));
        okto__tb_arg_long(&t, (int64_t)cols);
        size_t global[2] = {l, okto__rec_device(&r)->grid_groups}, local[2] = {l, 1};
        okto__tb_range(&t, 2, global, local);
        okto__tb_access(&t, &xi, OKTO__R);
        okto__tb_access(&t, &yi, OKTO__W);
        double n = (double)(r1 - r0) * (double)cols;
        okto__tb_cost(&t, 5 * n, 3 * n * (double)okto_dtype_size(in->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)cols);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    if (s == OKTO_OK && !direct)
        s = okto_copy(g, out, &o);
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_SOFTMAX, .nin = 1, .nout = 1,
                                                 .t = {in, out}, .saved = 1u << 1,
                                                 .overwrite = 1});
    return okto__rec_end(&r, s);
}

okto_status okto_softmax_xent(okto_graph *g, okto_tensor *loss, okto_tensor *grad,
                              const okto_tensor *logits, const okto_tensor *labels)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_SOFTMAX_XENT, "okto_softmax_xent");
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, logits, "logits", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, labels, "labels", OKTO__DT_BIT(OKTO_I32));
    if (s == OKTO_OK && loss)
        s = okto__rec_output(&r, loss, "loss", OKTO__DT_FLOATS);
    if (s == OKTO_OK && grad)
        s = okto__rec_output(&r, grad, "grad", OKTO__DT_FLOATS);
    if (s == OKTO_OK && !loss && !grad)
        s = okto__rec_fail(&r, OKTO_EINVAL, "loss and grad are both NULL");
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    size_t cols = logits->shape[logits->rank - 1], rows = okto__numel(logits) / cols;
    if (okto__numel(labels) != rows || (labels->rank > 1 && labels->shape[labels->rank - 1] != 1))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "logits is %s (%zu rows) but labels is %s (expected "
                           "i32[%zu] or i32[%zu,1])",
                           OKTO__DESC(logits), rows, OKTO__DESC(labels), rows, rows);
    if (s == OKTO_OK && loss && (okto__numel(loss) != 1 || loss->dtype != logits->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "logits is %s but loss is %s (expected one element "
                           "of %s)",
                           OKTO__DESC(logits), OKTO__DESC(loss), okto_dtype_name(logits->dtype));
    if (s == OKTO_OK && grad && (!okto__same_shape(grad, logits) || grad->dtype != logits->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "logits is %s but grad is %s", OKTO__DESC(logits),
                           OKTO__DESC(grad));
    /* grad may be logits itself; nothing written may overlap anything else */
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, grad, "grad", logits, "logits", 1);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, grad, "grad", labels, "labels", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, loss, "loss", logits, "logits", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, loss, "loss", labels, "labels", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, loss, "loss", grad, "grad", 0);
    okto_tensor x, lab, gy, gtmp, rowloss, flag, adgrad;
    /* the gradient pass reads grad: make one when the caller did not ask for it */
    if (s == OKTO_OK && !grad && okto__ad_active(&r, 2, (const okto_tensor *[]){logits, loss}) &&
        (s = okto__rec_temp(&r, logits->dtype, logits->rank, logits->shape, &adgrad)) == OKTO_OK)
        grad = &adgrad;
    if (s == OKTO_OK)
        s = rows_of(&r, logits, &x);
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, labels, 0, &lab);
    int gdirect = !grad || (okto__rows_dense(grad) && okto__view_2d(grad, &gy));
    if (s == OKTO_OK && !gdirect &&
        (s = okto__rec_temp(&r, grad->dtype, grad->rank, grad->shape, &gtmp)) == OKTO_OK)
        okto__view_2d(&gtmp, &gy);
    if (s == OKTO_OK && loss)
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){rows}, &rowloss);
    /* a check flag per part, so the parts touch disjoint regions; zeroed now, and by the engine
     * after a run that set one */
    int nparts = okto__rec_parts(&r, rows, (double)rows * (double)cols);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_I32, 1, (size_t[]){4 * (size_t)nparts}, &flag);
    if (s == OKTO_OK) {
        int zero[4 * OKTO_MAX_COMPUTE_LANES] = {0};
        s = okto_tensor_write(&flag, zero);
    }
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, li, gi, ri, fi;
        okto__view_flat(&flag, 4 * (size_t)p, 4 * (size_t)p + 4, &fi);
        if ((s = okto__rec_check(&r, &fi, "the label of row %d is %d, outside [0, %d)")) != OKTO_OK)
            break;
        okto__view_slice(&x, 0, r0, r1 - r0, &xi);
        okto__view_flat(&lab, r0, r1, &li);
        if (grad)
            okto__view_slice(&gy, 0, r0, r1 - r0, &gi);
        if (loss)
            okto__view_flat(&rowloss, r0, r1, &ri);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_SOFTMAX_XENT);
        if ((s = kernel(&t, logits->dtype, "okto_softmax_xent_rows")) != OKTO_OK ||
            (s = pick_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        /* a missing output's slot gets logits as a placeholder: the kernel never writes it */
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_long(&t, xi.shape[0] > 1 ? xi.stride[0] : (int64_t)cols);
        okto__tb_arg_tensor(&t, &li);
        okto__tb_arg_tensor(&t, grad ? &gi : &xi);
        okto__tb_arg_long(&t, grad && gi.shape[0] > 1 ? gi.stride[0] : (int64_t)cols);
        okto__tb_arg_tensor(&t, loss ? &ri : &fi);
        okto__tb_arg_tensor(&t, &fi);
        okto__tb_arg_long(&t, (int64_t)(r1 - r0));
        okto__tb_arg_long(&t, (int64_t)cols);
        okto__tb_arg_long(&t, (int64_t)r0);
        okto__tb_arg_int(&t, grad != NULL);
        okto__tb_arg_int(&t, loss != NULL);
        okto__tb_arg_float(&t, (float)rows);
        size_t global[2] = {l, okto__rec_device(&r)->grid_groups}, local[2] = {l, 1};
        okto__tb_range(&t, 2, global, local);
        okto__tb_access(&t, &xi, OKTO__R);
        okto__tb_access(&t, &li, OKTO__R);
        if (grad)
            okto__tb_access(&t, &gi, OKTO__W);
        if (loss)
            okto__tb_access(&t, &ri, OKTO__W);
        okto__tb_access(&t, &fi, OKTO__RW);
        double n = (double)(r1 - r0) * (double)cols;
        okto__tb_cost(&t, 5 * n, (grad ? 3 : 2) * n * (double)okto_dtype_size(logits->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)cols ^ (uint64_t)(grad != NULL));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    /* the mean over rows, on the device (a tree reduction; partitioned when rows is large) */
    if (s == OKTO_OK && loss) {
        if (loss->dtype == OKTO_F32) {
            s = okto_reduce_all(g, loss, &rowloss, OKTO_REDUCE_MEAN);
        } else {
            okto_tensor l32;
            s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){1}, &l32);
            if (s == OKTO_OK)
                s = okto_reduce_all(g, &l32, &rowloss, OKTO_REDUCE_MEAN);
            if (s == OKTO_OK)
                s = okto_cast(g, loss, &l32);
        }
    }
    if (s == OKTO_OK && !gdirect)
        s = okto_copy(g, grad, &gtmp);
    if (s == OKTO_OK && loss)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_SOFTMAX_XENT, .nin = 1,
                                                 .nout = 1, .naux = 2,
                                                 .t = {logits, loss, labels, grad},
                                                 .saved = 1u << 3, .overwrite = 1});
    return okto__rec_end(&r, s);
}

/* ---- gradient rules (lib/autograd) ------------------------------------------------------------ */

/* y = softmax(x): dx += y (dy - sum(dy y)) over each row */
static okto_status softmax_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    if (!dx)
        return OKTO_OK;
    return okto_softmax_backward(okto__grad_graph(gr), dx, okto__grad_out(gr, 0), &n->t[1],
                                 OKTO_ACCUMULATE);
}

/* loss = mean(-log softmax(logits)[label]), whose gradient the forward wrote into grad (the
 * mean's 1/rows included): dlogits += grad dloss */
static okto_status xent_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    const okto_tensor *grad = &n->t[3];
    if (!dx)
        return OKTO_OK;
    okto_tensor dl;
    okto__view_bcast(okto__grad_out(gr, 0), grad->rank, grad->shape, &dl);
    dl.rank = grad->rank;
    return okto_zip_backward(okto__grad_graph(gr), dx, NULL, grad, grad, &dl, OKTO_ZIP_MUL,
                             OKTO_ACCUMULATE);
}
