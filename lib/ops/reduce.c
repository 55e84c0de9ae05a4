/* lib/ops/reduce.c: okto_reduce (sum, max, min, mean over one dimension) and okto_reduce_all.
 *
 * Any dimension: a contiguous input seen as [outer, R, inner] reduces its R. inner == 1 is a
 * per-row reduction of [outer, R] (the rows plan below), outer == 1 a per-column one of
 * [R, inner] (the columns plan), a single run of elements the flat plan; both outer and inner
 * above 1 is made a rows plan by a transposing copy into a temporary ([outer, inner, R]).
 * Strided inputs are copied to a contiguous temporary first. Every dtype but i32, computed in
 * float: partials are float32, the result is stored in the output's dtype.
 *
 * Plans (kernels in cl/reduce.cl):
 *   - all of a contiguous run of n elements (okto_reduce_all, or one row):
 *     It is split into equal element ranges, one per compute lane (okto__parts); each part task
 *     reduces its range with `ngroups` work-groups into its own row of a scratch tensor
 *     (nparts x ngroups), and one aggregation task on the device reduces the scratch into out
 *     (dividing by n for MEAN). A part reads the rows its range touches; reads never conflict,
 *     so parts that share a row still run side by side.
 *   - per row: split by rows. A part writes its rows of out directly, one work-group
 *     per row; a row too long for one group (more than `item` * L floats) is cut into
 *     column chunks whose partials go to the part's rows of a rows x ngroups scratch, and a
 *     per-part aggregation task turns them into its rows of out. No cross-part aggregation.
 *   - per column: split by rows. Part p reduces its rows, column tiles of TC quads
 *     (4 columns each) times ngroups row chunks, into rows [p * ngroups, (p + 1) * ngroups) of
 *     a scratch (nparts * ngroups) x cols; an aggregation task reduces the scratch over its
 *     rows into out. A single column (rows x 1) is contiguous: it takes the flat plan.
 * One part with one group writes out directly: no scratch, no aggregation.
 *
 * Fixed grids. A "group" above is a logical work unit (a task of the kernel: a row chunk, a
 * column tile times a row chunk); their count sets the scratch layout and the summation order
 * and depends on the shape. The launches do not: for each kernel the local and the global size
 * are fixed per device (query_limits: `groups` work-groups, a few per compute unit), and the
 * kernels walk their tasks with a group-stride loop (the count goes in as an argument; groups
 * past it do nothing). PoCL 3.1 caches a work-group function per (kernel, local size) and
 * keeps a second one when a launch has a wider grid than the first; two commands in flight can
 * then release the wrong one (pocl_release_dlhandle_cache asserts, SIGABRT), which uneven
 * parts running side by side hit. One grid per (kernel, local size) never makes the second.
 *
 * The scratch tensors are graph temporaries: they live exactly as long as the graph.
 *
 * The shape of the work (local size, elements per work item, groups per part) is chosen per
 * device type in red_shape: wide coalesced groups on a GPU, one long contiguous stretch per
 * work item on a CPU (and, per column, okto_reduce_colt_*: one work item walks a tile of 128
 * quads row by row). Either way a work item's sum is a Kahan sum of short pairwise block sums
 * (cl/reduce.cl), under trees of work items, groups and parts. Aggregation tasks read few,
 * large partials, where a plain block sum would cost an ulp of the result: they run the
 * kernels with blocked = 0 (a compensated add per float4), which keeps a 1e7-element sum of
 * [0, 1) values within about 2e-8 (correctly rounded but for an ulp) on PoCL. */

#include "op.h"

#include <stdint.h>
#include <string.h>

#define OKTO__RED_MAXL 256 /* the kernels' local arrays: -DOKTO_RED_MAXL */
#define OKTO__RED_TILE 128 /* quads a task of okto_reduce_colt_* covers: -DOKTO_RED_TILE */

static okto_status reduce_grad(okto__grad *gr, const okto__ad_node *n);

#define RED_DESC(id, nm, rule)                                                                     \
    const okto__op_desc okto__desc_##id = {.name = nm,                                             \
                                           .family = "reduce",                                     \
                                           .dtypes = OKTO__DT_FLOATS,                              \
                                           .layouts = "any strides (strided: copied first)",       \
                                           .partitioned = 1,                                       \
                                           .backward = rule}
RED_DESC(REDUCE_SUM, "reduce.sum", reduce_grad);
RED_DESC(REDUCE_MAX, "reduce.max", reduce_grad);
RED_DESC(REDUCE_MIN, "reduce.min", reduce_grad);
RED_DESC(REDUCE_MEAN, "reduce.mean", reduce_grad);
RED_DESC(REDUCE_AGGREGATE, "reduce.aggregate", NULL);

/* MEAN is a sum divided by the count */
static const char *const op_names[] = {[OKTO_REDUCE_SUM] = "sum",
                                       [OKTO_REDUCE_MAX] = "max",
                                       [OKTO_REDUCE_MIN] = "min",
                                       [OKTO_REDUCE_MEAN] = "sum"};
_Static_assert(sizeof op_names / sizeof *op_names == OKTO_REDUCE_COUNT, "one row per op");

static size_t pow2floor(size_t n)
{
    size_t p = 1;
    while (p * 2 <= n)
        p <<= 1;
    return p;
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* How the kernels are shaped on this device. wg, dim0, dim1: limits of the local size, the
 * kernel's (registers, local memory) and the device's per dimension; powers of two, at most
 * OKTO__RED_MAXL. The rest are per device type (see red_shape):
 *   l         work items per group of the rows kernel (fixed);
 *   item      elements per work item of the rows kernel below which one more task is waste;
 *   maxg      tasks (column chunks) per row and part of the rows kernel, at most;
 *   quads     column quads (float4s) per task of the column kernel (TC);
 *   rows_per  work items per quad (TR) of the column kernel, at most (0: wg / TC);
 *   col_item  rows per work item of the column kernel below which one more task is waste;
 *   col_maxg  row chunks per part of the column kernel, at most;
 *   groups_per_cu, min_groups: work-groups of every launch, per compute unit and at least;
 *   tiled     the column kernel is okto_reduce_colt_* (CPU). */
typedef struct red_limits {
    size_t wg, dim0, dim1, cus;
    size_t l, item, maxg, quads, rows_per, col_item, col_maxg, groups_per_cu, min_groups;
    int tiled; /* CPU: the column kernel is okto_reduce_colt_*, one work item per tile */
    /* the fixed launch shapes (query_limits): local (l) and global (l * groups) of the rows
     * kernel; local (tc, tr) and global (tc * groups, tr) of okto_reduce_cols_*; local 1 and
     * global groups of okto_reduce_colt_* */
    size_t tc, tr, groups;
} red_limits;

/* GPU (and anything not a CPU): wide groups whose neighbours read neighbouring float4s,
 * coalesced; a few hundred elements per work item, partials stay few.
 * CPU (PoCL): a work-group runs on one core, its work items one after another, each work
 * item's loop as plain code, so a work item striding by L float4s walks memory L times
 * (measured here, a 64M-float sum: L = 256, 18 ms; L = 16, 13 ms; L = 1, 6.5 ms, ~40 GB/s).
 * So one work item per group reading one contiguous stretch of >= 16K floats, and a few
 * dozen groups per part to balance the cores. For columns, a task covers 128 quads (512
 * neighbouring columns, 2 KB of each row) times 16 rows: okto_reduce_colt_* (one work item a
 * group) keeps the tile's 128 float4 sums in private arrays and walks it 8 rows at a time, so
 * its 16 x 2 KB stays in L1 and the inner loop over quads is plain vector code (4000 x 1000,
 * 8 sums: 2.5 ms against 3.1 ms with 128 work items a group taking turns on the tile). The
 * scratch of partials is then 1/16 of in. Fixed grids: at least 64 work-groups on a CPU, 8 a
 * compute unit (fewer, 8 or 16 here, leave a core idle at the end of a part: 4000 x 1000
 * per column 15% slower), 8 a compute unit on a GPU. */
static void red_shape(cl_device_type type, red_limits *lim)
{
    int cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    if (cpu) {
        lim->l = 1, lim->item = 16384, lim->maxg = 64;
        lim->quads = OKTO__RED_TILE, lim->rows_per = 1, lim->col_item = 16, lim->col_maxg = 1024;
        lim->groups_per_cu = 8, lim->min_groups = 64, lim->tiled = 1;
    } else {
        lim->l = OKTO__RED_MAXL, lim->item = 64, lim->maxg = 64;
        lim->quads = 32, lim->rows_per = 0, lim->col_item = 64, lim->col_maxg = 64;
        lim->groups_per_cu = 8, lim->min_groups = 8, lim->tiled = 0;
    }
}

static okto_status query_limits(okto__rec *r, okto_dtype dt, red_limits *lim)
{
    okto__device *dev = okto__rec_device(r);
    char opts[128];
    snprintf(opts, sizeof opts, "-DOKTO_DT=%d -DOKTO_DT2=0 -DOKTO_RED_MAXL=%d -DOKTO_RED_TILE=%d",
             (int)dt, OKTO__RED_MAXL, OKTO__RED_TILE);
    okto__progkey key = {"reduce", NULL, opts};
    okto__kid kid;
    okto_status s = okto__kernel_id(r->ctx, &key, "okto_reduce_cols_sum", &kid);
    size_t wg = OKTO__RED_MAXL;
    if (s == OKTO_OK)
        s = okto__kernel_wg_size(r->ctx, kid, &wg);
    if (s != OKTO_OK)
        return s;
    lim->wg = pow2floor(wg < OKTO__RED_MAXL ? (wg ? wg : 1) : OKTO__RED_MAXL);
    lim->dim0 = pow2floor(dev->max_items[0] ? dev->max_items[0] : 1);
    lim->dim1 = pow2floor(dev->max_items[1] ? dev->max_items[1] : 1);
    red_shape(dev->type, lim);
    lim->cus = dev->cus;
    lim->l = lim->l < lim->wg ? lim->l : lim->wg;
    lim->l = lim->l < lim->dim0 ? lim->l : lim->dim0;
    /* column kernel: TC column quads (coalesced) by TR rows */
    size_t tc = lim->quads < lim->dim0 ? lim->quads : lim->dim0;
    tc = tc < lim->wg ? tc : lim->wg;
    size_t tr = lim->wg / tc;
    tr = lim->rows_per && lim->rows_per < tr ? lim->rows_per : tr;
    tr = tr < lim->dim1 ? tr : lim->dim1;
    lim->tc = tc, lim->tr = tr ? tr : 1;
    size_t groups = lim->groups_per_cu * lim->cus;
    lim->groups = groups < lim->min_groups ? lim->min_groups : groups > 4096 ? 4096 : groups;
    return OKTO_OK;
}

/* One reduction task over a rows x cols block that starts at `in` (a contiguous view, its first
 * element the block's) into `out` (contiguous, from its first element). rows_kernel:
 * okto_reduce_rows_*, else okto_reduce_cols_* / _colt_*; both launched with the fixed shape of
 * red_limits whatever the task (see query_limits). The accesses are given separately. */
typedef struct red_task {
    okto__op op;
    okto_reduce_op rop;
    int rows_kernel;
    okto_tensor in, out; /* 1-D views of the block and of the output range */
    size_t rows, cols, ngroups;
    float div;
    int aggregate;      /* reads partials: compensated per float4, no plain block sums */
    okto_tensor acc[2]; /* read, written */
    int part, nparts;
} red_task;

static okto_status record(okto__rec *r, const red_limits *lim, const red_task *k)
{
    char kname[64], extra[96];
    snprintf(kname, sizeof kname, "okto_reduce_%s_%s",
             k->rows_kernel ? "rows"
             : lim->tiled   ? "colt"
                            : "cols",
             op_names[k->rop]);
    snprintf(extra, sizeof extra, "-DOKTO_DT2=%d -DOKTO_RED_MAXL=%d -DOKTO_RED_TILE=%d",
             (int)k->out.dtype, OKTO__RED_MAXL, OKTO__RED_TILE);
    okto__tb t;
    okto__tb_init(&t, r, k->op);
    okto__tb_kernel(&t, "reduce", k->in.dtype, extra, kname);
    okto__tb_arg_tensor(&t, &k->in);
    okto__tb_arg_tensor(&t, &k->out);
    okto__tb_arg_long(&t, (int64_t)k->rows);
    okto__tb_arg_long(&t, (int64_t)k->cols);
    okto__tb_arg_long(&t, (int64_t)k->ngroups);
    okto__tb_arg_float(&t, k->div);
    okto__tb_arg_int(&t, !k->aggregate);
    size_t global[2], local[2];
    if (k->rows_kernel) {
        global[0] = lim->l * lim->groups, global[1] = 1;
        local[0] = lim->l, local[1] = 1;
    } else if (lim->tiled) {
        global[0] = lim->groups, global[1] = 1;
        local[0] = 1, local[1] = 1;
    } else {
        global[0] = lim->tc * lim->groups, global[1] = lim->tr;
        local[0] = lim->tc, local[1] = lim->tr;
    }
    okto__tb_range(&t, 2, global, local);
    /* out may be in (a block reduced into its own first element): one RW access then */
    okto__tb_access(&t, &k->acc[0], OKTO__R);
    okto__tb_access(&t, &k->acc[1], OKTO__W);
    double n = (double)k->rows * (double)k->cols;
    okto__tb_cost(&t, n, n * (double)okto_dtype_size(k->in.dtype),
                  ((uint64_t)k->rows << 32) ^ (uint64_t)k->cols);
    okto__tb_part(&t, k->part, k->nparts);
    return okto__tb_commit(&t);
}

/* The flat view [e0, e1) of a contiguous t. */
static okto_tensor flat(const okto_tensor *t, size_t e0, size_t e1)
{
    okto_tensor v;
    okto__view_flat(t, e0, e1, &v);
    return v;
}

/* All of in (n contiguous elements) into the one-element out. */
static okto_status reduce_flat(okto__rec *r, const okto_tensor *out, const okto_tensor *in,
                               okto_reduce_op op, const red_limits *lim)
{
    size_t n = okto__numel(in);
    int nparts = okto__rec_parts(r, n, (double)n);
    size_t per = ceil_div(n, (size_t)nparts);
    size_t ng = ceil_div(per, lim->l * lim->item);
    ng = ng < lim->maxg ? ng : lim->maxg;
    float count = op == OKTO_REDUCE_MEAN ? (float)n : 1.0f;
    okto__op opid = (okto__op)(OKTO__OP_REDUCE_SUM + op);
    if (nparts == 1 && ng == 1) {
        red_task k = {opid,        op, 1, flat(in, 0, n), flat(out, 0, 1), 1, n, 1, count, 0,
                      {*in, *out}, 0,  1};
        return record(r, lim, &k);
    }
    okto_tensor scratch;
    okto_status s = okto__rec_temp(r, OKTO_F32, 2, (size_t[]){(size_t)nparts, ng}, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t e0 = okto__part_row(n, p, nparts), e1 = okto__part_row(n, p + 1, nparts);
        okto_tensor row = flat(&scratch, (size_t)p * ng, (size_t)(p + 1) * ng);
        red_task k = {opid, op,   1, flat(in, e0, e1),        row, 1,     e1 - e0,
                      ng,   1.0f, 0, {flat(in, e0, e1), row}, p,   nparts};
        s = record(r, lim, &k);
    }
    if (s == OKTO_OK) {
        size_t m = (size_t)nparts * ng;
        red_task k = {OKTO__OP_REDUCE_AGGREGATE,
                      op,
                      1,
                      flat(&scratch, 0, m),
                      flat(out, 0, 1),
                      1,
                      m,
                      1,
                      count,
                      1,
                      {scratch, *out},
                      0,
                      1};
        s = record(r, lim, &k);
    }
    return s;
}

/* Each row of the contiguous [rows, cols] in into out (rows elements, contiguous). */
static okto_status reduce_rows(okto__rec *r, const okto_tensor *out, const okto_tensor *in,
                               size_t rows, size_t cols, okto_reduce_op op, const red_limits *lim)
{
    int nparts = okto__rec_parts(r, rows, (double)rows * (double)cols);
    size_t ng = ceil_div(cols, lim->l * lim->item);
    ng = ng < lim->maxg ? ng : lim->maxg;
    float count = op == OKTO_REDUCE_MEAN ? (float)cols : 1.0f;
    okto__op opid = (okto__op)(OKTO__OP_REDUCE_SUM + op);
    okto_tensor scratch;
    okto_status s = OKTO_OK;
    if (ng > 1)
        s = okto__rec_temp(r, OKTO_F32, 2, (size_t[]){rows, ng}, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        okto_tensor src = flat(in, r0 * cols, r1 * cols), dst = flat(out, r0, r1);
        if (ng == 1) {
            red_task k = {opid, op, 1, src, dst, r1 - r0, cols, 1, count, 0, {src, dst}, p, nparts};
            s = record(r, lim, &k);
            continue;
        }
        okto_tensor part = flat(&scratch, r0 * ng, r1 * ng);
        red_task k = {opid, op, 1, src, part, r1 - r0, cols, ng, 1.0f, 0, {src, part}, p, nparts};
        if ((s = record(r, lim, &k)) != OKTO_OK)
            break;
        red_task a = {OKTO__OP_REDUCE_AGGREGATE,
                      op,
                      1,
                      part,
                      dst,
                      r1 - r0,
                      ng,
                      1,
                      count,
                      1,
                      {part, dst},
                      p,
                      nparts};
        s = record(r, lim, &a);
    }
    return s;
}

/* Each column of the contiguous [rows, cols] in into out (cols elements, contiguous). */
static okto_status reduce_cols(okto__rec *r, const okto_tensor *out, const okto_tensor *in,
                               size_t rows, size_t cols, okto_reduce_op op, const red_limits *lim)
{
    int nparts = okto__rec_parts(r, rows, (double)rows * (double)cols);
    size_t per = ceil_div(rows, (size_t)nparts);
    size_t ng = ceil_div(per, lim->tr * lim->col_item);
    ng = ng < lim->col_maxg ? ng : lim->col_maxg;
    float count = op == OKTO_REDUCE_MEAN ? (float)rows : 1.0f;
    okto__op opid = (okto__op)(OKTO__OP_REDUCE_SUM + op);
    okto_tensor all = flat(in, 0, rows * cols), dst = flat(out, 0, cols);
    if (nparts == 1 && ng == 1) {
        red_task k = {opid, op, 0, all, dst, rows, cols, 1, count, 0, {all, dst}, 0, 1};
        return record(r, lim, &k);
    }
    size_t m = (size_t)nparts * ng;
    okto_tensor scratch;
    okto_status s = okto__rec_temp(r, OKTO_F32, 2, (size_t[]){m, cols}, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        okto_tensor src = flat(in, r0 * cols, r1 * cols);
        okto_tensor part = flat(&scratch, (size_t)p * ng * cols, (size_t)(p + 1) * ng * cols);
        red_task k = {opid, op, 0, src, part, r1 - r0, cols, ng, 1.0f, 0, {src, part}, p, nparts};
        s = record(r, lim, &k);
    }
    if (s == OKTO_OK) {
        red_task a = {OKTO__OP_REDUCE_AGGREGATE,
                      op,
                      0,
                      flat(&scratch, 0, m * cols),
                      dst,
                      m,
                      cols,
                      1,
                      count,
                      1,
                      {scratch, dst},
                      0,
                      1};
        s = record(r, lim, &a);
    }
    return s;
}

/* The shared part of okto_reduce and okto_reduce_all: in seen as [outer, R, inner]. */
static okto_status reduce(okto__rec *r, okto_tensor *out, const okto_tensor *in, okto_reduce_op op,
                          size_t outer, size_t R, size_t inner, int axis)
{
    okto_status s = okto__rec_no_alias(r, out, "out", in, "in", 0);
    red_limits lim;
    if (s == OKTO_OK)
        s = query_limits(r, in->dtype, &lim);
    okto_tensor src, dst = *out;
    if (s == OKTO_OK)
        s = okto__rec_layout(r, in, 0, &src);
    /* the result: into out when it is contiguous, else a temporary copied over at the end */
    int direct = okto__contiguous(out);
    if (s == OKTO_OK && !direct)
        s = okto__rec_temp(r, out->dtype, out->rank, out->shape, &dst);
    if (s != OKTO_OK)
        return s;
    if (outer * inner == 1 || R == 1) {
        if (R == 1) { /* nothing to reduce (MEAN of one is itself): element by element */
            size_t n = okto__numel(&src);
            okto_tensor fd = flat(&dst, 0, n), fs = flat(&src, 0, n);
            s = okto_copy(r->g, &fd, &fs);
        } else {
            s = reduce_flat(r, &dst, &src, op, &lim);
        }
    } else if (inner == 1) {
        s = reduce_rows(r, &dst, &src, outer, R, op, &lim);
    } else if (outer == 1) {
        s = reduce_cols(r, &dst, &src, R, inner, op, &lim);
    } else {
        /* both sides: [outer, R, inner] transposed to [outer, inner, R] by a copy, then rows */
        okto_tensor v = src, t;
        v.rank = 3;
        v.shape[0] = outer, v.shape[1] = inner, v.shape[2] = R, v.shape[3] = 1;
        v.stride[0] = (int64_t)(R * inner), v.stride[1] = 1, v.stride[2] = (int64_t)inner;
        v.stride[3] = 0;
        s = okto__rec_temp(r, in->dtype, 3, v.shape, &t);
        if (s == OKTO_OK)
            s = okto_copy(r->g, &t, &v);
        if (s == OKTO_OK)
            s = reduce_rows(r, &dst, &t, outer * inner, R, op, &lim);
    }
    (void)axis;
    if (s == OKTO_OK && !direct)
        s = okto_copy(r->g, out, &dst);
    return s;
}

/* The tape entry: axis (-1: all of in); max and min read in and out again. */
static okto_status record_ad(okto__rec *r, const okto_tensor *out, const okto_tensor *in,
                             okto_reduce_op op, int axis)
{
    int extreme = op == OKTO_REDUCE_MAX || op == OKTO_REDUCE_MIN;
    okto__ad_call c = {.op = (okto__op)(OKTO__OP_REDUCE_SUM + op),
                       .nin = 1,
                       .nout = 1,
                       .t = {in, out},
                       .saved = extreme ? 3u : 0u,
                       .overwrite = 1,
                       .i = {axis}};
    return okto__ad_record(r, &c);
}

/* t (out's shape: in's with the axis 1 or removed, or one element for all of in) seen in in's
 * shape, broadcast along the axis */
static void spread(const okto_tensor *t, const okto_tensor *in, int axis, okto_tensor *v)
{
    okto_tensor k = *t;
    if (axis < 0) {
        k.rank = 1; /* one element, broadcast everywhere */
        k.shape[0] = 1;
    } else if (t->rank < in->rank) {
        okto__view_unsqueeze(t, axis, &k);
    }
    okto__view_bcast(&k, in->rank, in->shape, v);
}

/* sum: dx += dy spread; mean: divided by the count; max, min: dy to where x equals the result
 * (every tie gets it), through okto_zip_backward's max/min gradient with the result spread */
static okto_status reduce_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    okto_tensor *dx = okto__grad_in(gr, 0);
    const okto_tensor *dy = okto__grad_out(gr, 0), *x = &n->t[0];
    okto_reduce_op op = (okto_reduce_op)(n->op - OKTO__OP_REDUCE_SUM);
    int axis = n->i[0];
    if (!dx)
        return OKTO_OK;
    okto_tensor dyv, yv;
    spread(dy, x, axis, &dyv);
    if (op == OKTO_REDUCE_SUM || op == OKTO_REDUCE_MEAN) {
        double count = axis < 0 ? (double)okto__numel(x) : (double)x->shape[axis];
        return okto_axpy(g, dx, op == OKTO_REDUCE_SUM ? 1.0f : (float)(1.0 / count), &dyv);
    }
    spread(&n->t[1], x, axis, &yv);
    return okto_zip_backward(g, dx, NULL, &dyv, x, &yv,
                             op == OKTO_REDUCE_MAX ? OKTO_ZIP_MAX : OKTO_ZIP_MIN, OKTO_ACCUMULATE);
}

okto_status okto_reduce(okto_graph *g, okto_tensor *out, const okto_tensor *in, okto_reduce_op op,
                        int axis)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_REDUCE_SUM, "okto_reduce");
    if (s == OKTO_OK && (unsigned)op >= OKTO_REDUCE_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_reduce_op", (int)op);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
    if (s == OKTO_OK && (axis < -in->rank || axis >= in->rank))
        s = okto__rec_fail(&r, OKTO_EINVAL, "axis %d of %s (expected %d to %d)", axis,
                           OKTO__DESC(in), -in->rank, in->rank - 1);
    if (s == OKTO_OK && out->dtype != in->dtype)
        s = okto__rec_fail(&r, OKTO_EINVAL, "in is %s but out is %s: dtypes differ", OKTO__DESC(in),
                           OKTO__DESC(out));
    if (s != OKTO_OK)
        return okto__rec_end(&r, s);
    int ax = axis < 0 ? axis + in->rank : axis;
    /* out: in's shape with the axis 1 (keepdim), or without it */
    okto_tensor keep = *in, drop = *in;
    keep.shape[ax] = 1;
    drop.rank = in->rank - 1;
    for (int i = ax; i < OKTO_MAX_RANK - 1; i++)
        drop.shape[i] = in->shape[i + 1];
    drop.shape[OKTO_MAX_RANK - 1] = 1;
    if (!okto__same_shape(out, &keep) && !(drop.rank > 0 && okto__same_shape(out, &drop)) &&
        !(drop.rank == 0 && okto__numel(out) == 1 && out->rank == 1))
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "in is %s, axis %d: out is %s but must be %s (or "
                           "that without the dimension)",
                           OKTO__DESC(in), axis, OKTO__DESC(out), OKTO__DESC(&keep));
    if (s == OKTO_OK) {
        size_t outer = 1, inner = 1;
        for (int i = 0; i < ax; i++)
            outer *= in->shape[i];
        for (int i = ax + 1; i < in->rank; i++)
            inner *= in->shape[i];
        s = reduce(&r, out, in, op, outer, in->shape[ax], inner, ax);
    }
    if (s == OKTO_OK)
        s = record_ad(&r, out, in, op, ax);
    return okto__rec_end(&r, s);
}

okto_status okto_reduce_all(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                            okto_reduce_op op)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_REDUCE_SUM, "okto_reduce_all");
    if (s == OKTO_OK && (unsigned)op >= OKTO_REDUCE_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_reduce_op", (int)op);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
    if (s == OKTO_OK && out->dtype != in->dtype)
        s = okto__rec_fail(&r, OKTO_EINVAL, "in is %s but out is %s: dtypes differ", OKTO__DESC(in),
                           OKTO__DESC(out));
    if (s == OKTO_OK && okto__numel(out) != 1)
        s = okto__rec_fail(&r, OKTO_EINVAL, "in is %s but out is %s: out must have one element",
                           OKTO__DESC(in), OKTO__DESC(out));
    if (s == OKTO_OK)
        s = reduce(&r, out, in, op, 1, okto__numel(in), 1, -1);
    if (s == OKTO_OK)
        s = record_ad(&r, out, in, op, -1);
    return okto__rec_end(&r, s);
}
