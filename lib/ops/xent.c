/* lib/ops/xent.c: okto_cross_entropy (mean over the rows not labelled ignore_index) and its
 * backward. Kernels in cl/xent.cl: okto_xent_fwd (a row kernel: per-row loss and the saved
 * max / log-sum-exp), okto_xent_count and okto_xent_mean (one work-group each, so the count and
 * the mean have one order) and okto_xent_bwd (one item per element).
 *
 * Everything the mean depends on stays on the device, so a recorded graph replays with new
 * labels and a new upstream gradient. The forward splits into row parts, each with its own
 * check flag ({set, first bad row} kept by atomic_or / atomic_min: the first bad row whatever
 * the order); the engine reports a set flag as OKTO_EINVAL naming the row (the part's first row
 * added) and resets it (okto__rec_check_init). */
#include "rowkit.h"

static okto_status xent_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_CROSS_ENTROPY = {.backward = xent_grad,
                                                .name = "cross_entropy",
                                                .family = "xent",
                                                .dtypes = OKTO__DT_FLOATS,
                                                .layouts =
                                                    "any strides (copied); labels i32; stat f32",
                                                .partitioned = 1};
const okto__op_desc okto__desc_CROSS_ENTROPY_BACKWARD = {.name = "cross_entropy.backward",
                                                         .family = "xent",
                                                         .dtypes = OKTO__DT_FLOATS,
                                                         .layouts =
                                                             "any strides (copied); labels i32",
                                                         .partitioned = 1};

static const char bad_label[] = "row %d has a label outside [0, %d) that is not ignore_index (%d)";

/* The shared argument checks: logits, labels (numel rows), stat (2 * rows float32) if given. */
static okto_status check_common(okto__rec *r, const okto_tensor *logits, const okto_tensor *labels,
                                const okto_tensor *stat, int stat_out, size_t *rows,
                                size_t *classes)
{
    okto_status s = okto__rec_tensor(r, logits, "logits", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(r, labels, "labels", OKTO__DT_BIT(OKTO_I32));
    if (s != OKTO_OK)
        return s;
    *classes = logits->shape[logits->rank - 1];
    *rows = okto__numel(logits) / *classes;
    if (okto__numel(labels) != *rows)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "logits is %s (%zu rows) but labels is %s (expected %zu int32 "
                              "labels)",
                              OKTO__DESC(logits), *rows, OKTO__DESC(labels), *rows);
    if (*classes > 2147483647u)
        return okto__rec_fail(r, OKTO_EINVAL, "logits is %s: more than 2^31 - 1 classes",
                              OKTO__DESC(logits));
    if (stat)
        s = okto__rk_stat(r, stat, "stat", logits, "logits", 2 * *rows, stat_out);
    return s;
}

/* okto_xent_fwd over row parts: per-row loss into rowloss [rows] and stat [2 rows]. */
static okto_status record_fwd(okto__rec *r, okto__op op, const okto_tensor *x2,
                              const okto_tensor *lab, const okto_tensor *rowloss,
                              const okto_tensor *stat, int ignore_index)
{
    size_t rows = x2->shape[0], classes = x2->shape[1];
    int nparts = okto__rec_parts(r, rows, (double)rows * (double)classes);
    okto_status s = OKTO_OK;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, li, lo, si, fi;
        if ((s = okto__rk_flag(r, bad_label, (int)classes, ignore_index, (int)r0, &fi)) != OKTO_OK)
            break;
        okto__view_slice(x2, 0, r0, r1 - r0, &xi);
        okto__view_flat(lab, r0, r1, &li);
        okto__view_flat(rowloss, r0, r1, &lo);
        okto__view_flat(stat, 2 * r0, 2 * r1, &si);
        okto__tb t;
        okto__tb_init(&t, r, op);
        okto__tb_kernel(&t, "xent", x2->dtype, NULL, "okto_xent_fwd");
        if ((s = t.status) != OKTO_OK || (s = okto__rk_local(r, t.kid, classes, &l)) != OKTO_OK)
            break;
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_tensor(&t, &li);
        okto__tb_arg_tensor(&t, &lo);
        okto__tb_arg_tensor(&t, &si);
        okto__tb_arg_ulong(&t, r1 - r0);
        okto__tb_arg_ulong(&t, classes);
        okto__tb_arg_int(&t, ignore_index);
        okto__tb_arg_tensor(&t, &fi);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &xi, OKTO__R);
        okto__tb_access(&t, &li, OKTO__R);
        okto__tb_access(&t, &lo, OKTO__W);
        okto__tb_access(&t, &si, OKTO__W);
        okto__tb_access(&t, &fi, OKTO__RW);
        double n = (double)(r1 - r0) * (double)classes;
        okto__tb_cost(&t, 5 * n, n * (double)okto_dtype_size(x2->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)classes);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* count[0] = the rows whose label is not ignore_index (one work-group). */
static okto_status record_count(okto__rec *r, okto__op op, const okto_tensor *lab, int ignore_index,
                                okto_tensor *count)
{
    size_t rows = okto__numel(lab), l;
    okto_status s = okto__rec_temp(r, OKTO_F32, 1, (size_t[]){1}, count);
    if (s != OKTO_OK)
        return s;
    okto__tb t;
    okto__tb_init(&t, r, op);
    okto__tb_kernel(&t, "xent", OKTO_F32, NULL, "okto_xent_count");
    if ((s = t.status) != OKTO_OK || (s = okto__rk_local(r, t.kid, rows, &l)) != OKTO_OK)
        return s;
    okto__tb_arg_tensor(&t, lab);
    okto__tb_arg_ulong(&t, rows);
    okto__tb_arg_int(&t, ignore_index);
    okto__tb_arg_tensor(&t, count);
    okto__rk_range_one(&t, l);
    okto__tb_access(&t, lab, OKTO__R);
    okto__tb_access(&t, count, OKTO__W);
    okto__tb_cost(&t, (double)rows, 4.0 * (double)rows, (uint64_t)rows ^ (1ull << 62));
    return okto__tb_commit(&t);
}

okto_status okto_cross_entropy(okto_graph *g, okto_tensor *loss, okto_tensor *stat,
                               const okto_tensor *logits, const okto_tensor *labels,
                               int ignore_index)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_CROSS_ENTROPY, "okto_cross_entropy");
    size_t rows = 0, classes = 0;
    if (s == OKTO_OK)
        s = okto__rec_output(&r, loss, "loss", OKTO__DT_FLOATS);
    if (s == OKTO_OK && stat)
        s = okto__rec_output(&r, stat, "stat", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK)
        s = check_common(&r, logits, labels, stat, 1, &rows, &classes);
    if (s == OKTO_OK && okto__numel(loss) != 1)
        s = okto__rec_fail(&r, OKTO_EINVAL, "loss is %s (expected one element)", OKTO__DESC(loss));
    if (s == OKTO_OK) {
        const okto_tensor *outs[] = {loss, stat}, *ins[] = {logits, labels};
        const char *on[] = {"loss", "stat"}, *in[] = {"logits", "labels"};
        s = okto__rk_disjoint(&r, 2, outs, on, 2, ins, in, 0);
    }
    okto_tensor x2, lab, rowloss, st, count, l32;
    okto__rk_out so = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, logits, &x2);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, labels, &lab);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){rows}, &rowloss);
    if (s == OKTO_OK && stat && (s = okto__rk_out_begin(&r, stat, 0, 0, &so)) == OKTO_OK)
        st = so.m;
    if (s == OKTO_OK && !stat)
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){2 * rows}, &st);
    if (s == OKTO_OK)
        s = record_fwd(&r, OKTO__OP_CROSS_ENTROPY, &x2, &lab, &rowloss, &st, ignore_index);
    if (s == OKTO_OK)
        s = record_count(&r, OKTO__OP_CROSS_ENTROPY, &lab, ignore_index, &count);
    /* the mean: into loss itself when it is float32, else through a float32 scalar */
    int direct = s == OKTO_OK && loss->dtype == OKTO_F32;
    if (s == OKTO_OK && direct)
        okto__view_flat(loss, 0, 1, &l32); /* one element: contiguous */
    else if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){1}, &l32);
    if (s == OKTO_OK) {
        size_t l;
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_CROSS_ENTROPY);
        okto__tb_kernel(&t, "xent", OKTO_F32, NULL, "okto_xent_mean");
        if ((s = t.status) == OKTO_OK && (s = okto__rk_local(&r, t.kid, rows, &l)) == OKTO_OK) {
            okto__tb_arg_tensor(&t, &rowloss);
            okto__tb_arg_ulong(&t, rows);
            okto__tb_arg_tensor(&t, &count);
            okto__tb_arg_tensor(&t, &l32);
            okto__rk_range_one(&t, l);
            okto__tb_access(&t, &rowloss, OKTO__R);
            okto__tb_access(&t, &count, OKTO__R);
            okto__tb_access(&t, &l32, OKTO__W);
            okto__tb_cost(&t, (double)rows, 4.0 * (double)rows, (uint64_t)rows ^ (2ull << 62));
            s = okto__tb_commit(&t);
        }
    }
    if (s == OKTO_OK && !direct)
        s = okto_cast(g, loss, &l32);
    if (stat)
        s = okto__rk_out_end(&r, &so, s);
    /* the gradient reads logits, labels and the statistics (kept whether or not the caller
     * asked for them) */
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_CROSS_ENTROPY, .nin = 1,
                                                 .nout = 1, .naux = 2,
                                                 .t = {logits, loss, labels, &st},
                                                 .saved = 1u | 4u | 8u, .overwrite = 1,
                                                 .i = {ignore_index}});
    return okto__rec_end(&r, s);
}

static okto_status xent_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    if (!dx)
        return OKTO_OK;
    return okto_cross_entropy_backward(okto__grad_graph(gr), dx, okto__grad_out(gr, 0), &n->t[0],
                                       &n->t[2], &n->t[3], n->i[0], OKTO_ACCUMULATE);
}

okto_status okto_cross_entropy_backward(okto_graph *g, okto_tensor *dlogits,
                                        const okto_tensor *dloss, const okto_tensor *logits,
                                        const okto_tensor *labels, const okto_tensor *stat,
                                        int ignore_index, unsigned flags)
{
    okto__rec r;
    okto_status s =
        okto__rec_begin(&r, g, OKTO__OP_CROSS_ENTROPY_BACKWARD, "okto_cross_entropy_backward");
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    size_t rows = 0, classes = 0;
    if (s == OKTO_OK)
        s = okto__rk_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dlogits, "dlogits", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dloss, "dloss", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_common(&r, logits, labels, stat, 0, &rows, &classes);
    if (s == OKTO_OK)
        s = okto__rk_same(&r, logits, "logits", dlogits, "dlogits", 1);
    if (s == OKTO_OK && okto__numel(dloss) != 1)
        s = okto__rec_fail(&r, OKTO_EINVAL, "dloss is %s (expected one element)",
                           OKTO__DESC(dloss));
    if (s == OKTO_OK) {
        const okto_tensor *outs[] = {dlogits}, *ins[] = {logits, labels, stat, dloss};
        const char *on[] = {"dlogits"}, *in[] = {"logits", "labels", "stat", "dloss"};
        s = okto__rk_disjoint(&r, 1, outs, on, 4, ins, in, !acc);
    }
    okto_tensor x2, lab, st, count, dl;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, logits, &x2);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, labels, &lab);
    if (s == OKTO_OK && stat)
        s = okto__rk_in1d(&r, stat, &st);
    if (s == OKTO_OK && !stat) { /* recompute the statistics (and report bad labels) */
        okto_tensor rowloss;
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){rows}, &rowloss);
        if (s == OKTO_OK)
            s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){2 * rows}, &st);
        if (s == OKTO_OK)
            s = record_fwd(&r, OKTO__OP_CROSS_ENTROPY_BACKWARD, &x2, &lab, &rowloss, &st,
                           ignore_index);
    }
    if (s == OKTO_OK)
        s = record_count(&r, OKTO__OP_CROSS_ENTROPY_BACKWARD, &lab, ignore_index, &count);
    if (s == OKTO_OK && dloss->dtype == OKTO_F32) {
        okto__view_flat(dloss, 0, 1, &dl);
    } else if (s == OKTO_OK) {
        s = okto__rec_temp(&r, OKTO_F32, 1, (size_t[]){1}, &dl);
        if (s == OKTO_OK)
            s = okto_cast(g, &dl, dloss);
    }
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, dlogits, 1, acc, &o);
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, rows, (double)rows * (double)classes) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        okto_tensor xi, li, si, oi;
        okto__view_slice(&x2, 0, r0, r1 - r0, &xi);
        okto__view_flat(&lab, r0, r1, &li);
        okto__view_flat(&st, 2 * r0, 2 * r1, &si);
        okto__view_slice(&o.m, 0, r0, r1 - r0, &oi);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_CROSS_ENTROPY_BACKWARD);
        okto__tb_kernel(&t, "xent", logits->dtype, NULL, "okto_xent_bwd");
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_tensor(&t, &li);
        okto__tb_arg_tensor(&t, &si);
        okto__tb_arg_tensor(&t, &count);
        okto__tb_arg_tensor(&t, &dl);
        okto__tb_arg_tensor(&t, &oi);
        okto__tb_arg_ulong(&t, r1 - r0);
        okto__tb_arg_ulong(&t, classes);
        okto__tb_arg_int(&t, ignore_index);
        okto__tb_arg_int(&t, acc);
        okto__rk_range_2d(&t, classes, r1 - r0);
        okto__tb_access(&t, &xi, OKTO__R);
        okto__tb_access(&t, &li, OKTO__R);
        okto__tb_access(&t, &si, OKTO__R);
        okto__tb_access(&t, &count, OKTO__R);
        okto__tb_access(&t, &dl, OKTO__R);
        okto__tb_access(&t, &oi, acc ? OKTO__RW : OKTO__W);
        double n = (double)(r1 - r0) * (double)classes;
        okto__tb_cost(&t, 4 * n, (acc ? 3 : 2) * n * (double)okto_dtype_size(logits->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)classes ^ (3ull << 62));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    return okto__rec_end(&r, s);
}
