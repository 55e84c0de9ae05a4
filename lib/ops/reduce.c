/* lib/ops/reduce.c: okto_reduce (sum, max, min, mean over rows, columns or everything).
 *
 * Plans, by axis (kernels in cl/reduce.cl):
 *   - axis -1 (all), and axis 1 of a single row: the tensor is one contiguous run of n floats.
 *     It is split into equal element ranges, one per compute lane (okto__parts); each part task
 *     reduces its range with `ngroups` work-groups into its own row of a scratch tensor
 *     (nparts x ngroups), and one aggregation task on the device reduces the scratch into out
 *     (dividing by n for MEAN). A part reads the rows its range touches; reads never conflict,
 *     so parts that share a row still run side by side.
 *   - axis 1 (per row): split by rows. A part writes its rows of out directly, one work-group
 *     per row; a row too long for one group (more than `item` * L floats) is cut into
 *     column chunks whose partials go to the part's rows of a rows x ngroups scratch, and a
 *     per-part aggregation task turns them into its rows of out. No cross-part aggregation.
 *   - axis 0 (per column): split by rows. Part p reduces its rows, column tiles of TC quads
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
 * The scratch tensors are created here and released right after recording: the graph retains
 * every storage it records an access to, so they live exactly as long as the graph.
 *
 * The shape of the work (local size, elements per work item, groups per part) is chosen per
 * device type in red_shape: wide coalesced groups on a GPU, one long contiguous stretch per
 * work item on a CPU (and, per column, okto_reduce_colt_*: one work item walks a tile of 128
 * quads row by row). Either way a work item's sum is a Kahan sum of short pairwise block sums
 * (cl/reduce.cl), under trees of work items, groups and parts. Aggregation tasks read few,
 * large partials, where a plain block sum would cost an ulp of the result: they run the
 * kernels with blocked = 0 (a compensated add per float4), which keeps a 1e7-element sum of
 * [0, 1) values within about 2e-8 (correctly rounded but for an ulp) on PoCL. */
#include "internal.h"

#include <stdint.h>

#define OKTO__RED_MAXL 256 /* OKTO_RED_MAXL in cl/reduce.cl: the local arrays' size */
#define OKTO__RED_TILE 128 /* OKTO_RED_TILE in cl/reduce.cl: quads a task of okto_reduce_colt_* */

static const char *const op_names[] = {
    [OKTO_SUM] = "sum", [OKTO_MAX] = "max", [OKTO_MIN] = "min", [OKTO_MEAN] = "sum"};
static const char *const task_names[] = {[OKTO_SUM] = "reduce_sum",
                                         [OKTO_MAX] = "reduce_max",
                                         [OKTO_MIN] = "reduce_min",
                                         [OKTO_MEAN] = "reduce_mean"};

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

static okto_status query_limits(okto_graph *g, red_limits *lim)
{
    cl_kernel k;
    okto_status s = okto__kernel(g->ctx, "okto_reduce_cols_sum", &k);
    if (s != OKTO_OK)
        return s;
    size_t wg = OKTO__RED_MAXL, dims[3] = {OKTO__RED_MAXL, OKTO__RED_MAXL, OKTO__RED_MAXL};
    cl_int err = clGetKernelWorkGroupInfo(k, g->ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg,
                                          &wg, NULL);
    if (err == CL_SUCCESS)
        err =
            clGetDeviceInfo(g->ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof dims, dims, NULL);
    cl_uint cus = 1;
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(g->ctx->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cus, &cus, NULL);
    clReleaseKernel(k);
    if (err != CL_SUCCESS)
        return okto__fail_cl(g->ctx, err, "clGetKernelWorkGroupInfo", "okto_reduce");
    lim->wg = pow2floor(wg < OKTO__RED_MAXL ? (wg ? wg : 1) : OKTO__RED_MAXL);
    lim->dim0 = pow2floor(dims[0] ? dims[0] : 1);
    lim->dim1 = pow2floor(dims[1] ? dims[1] : 1);
    red_shape(g->ctx->device_type, lim);
    lim->cus = cus ? cus : 1;
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

/* One reduction task. in_off / out_off are in floats from the start of each tensor.
 * rows_kernel: okto_reduce_rows_*, else okto_reduce_cols_*; both launched with the fixed shape
 * of red_limits whatever the task (see query_limits). */
typedef struct red_task {
    const char *op;
    okto_reduce_op rop;
    int rows_kernel;
    const okto_tensor *in, *out;
    size_t in_off, out_off;
    size_t rows, cols, ngroups;
    float div;
    int aggregate; /* reads partials: compensated per float4, no plain block sums */
    okto__access acc[2];
    int nacc, part, nparts;
} red_task;

/* Like okto__set_tensor_arg, at any float offset from t's start (a part of a flat range may
 * start inside a row). */
static cl_int set_arg_at(cl_kernel k, cl_uint idx, const okto_tensor *t, size_t off)
{
    cl_int off_i = (cl_int)(t->row0 * t->cols + off);
    cl_int err = clSetKernelArg(k, idx, sizeof(cl_mem), &t->st->mem);
    return err == CL_SUCCESS ? clSetKernelArg(k, idx + 1, sizeof off_i, &off_i) : err;
}

static okto_status record(okto_graph *g, const red_limits *lim, red_task *r)
{
    char kname[64];
    snprintf(kname, sizeof kname, "okto_reduce_%s_%s",
             r->rows_kernel ? "rows"
             : lim->tiled   ? "colt"
                            : "cols",
             op_names[r->rop]);
    cl_kernel k;
    okto_status s = okto__kernel(g->ctx, kname, &k);
    if (s != OKTO_OK)
        return s;
    cl_int rows = (cl_int)r->rows, cols = (cl_int)r->cols, ng = (cl_int)r->ngroups;
    cl_int err = set_arg_at(k, 0, r->in, r->in_off);
    if (err == CL_SUCCESS)
        err = set_arg_at(k, 2, r->out, r->out_off);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(k, 4, sizeof rows, &rows);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(k, 5, sizeof cols, &cols);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(k, 6, sizeof ng, &ng);
    if (err == CL_SUCCESS)
        err = clSetKernelArg(k, 7, sizeof r->div, &r->div);
    cl_int blocked = !r->aggregate;
    if (err == CL_SUCCESS)
        err = clSetKernelArg(k, 8, sizeof blocked, &blocked);
    if (err != CL_SUCCESS) {
        clReleaseKernel(k);
        return okto__fail_cl(g->ctx, err, "clSetKernelArg", "okto_reduce (%s)", kname);
    }
    double n = (double)r->rows * (double)r->cols;
    okto__task t = {.op = r->op,
                    .shape_key = ((uint64_t)r->rows << 32) ^ (uint64_t)r->cols,
                    .part = r->part,
                    .nparts = r->nparts,
                    .cls = OKTO__COMPUTE,
                    .flops = n,
                    .bytes = n * sizeof(float),
                    .acc = r->acc,
                    .nacc = r->nacc,
                    .kernel = k,
                    .work_dim = 2,
                    .has_local = 1};
    if (r->rows_kernel) {
        t.global[0] = lim->l * lim->groups, t.global[1] = 1;
        t.local[0] = lim->l, t.local[1] = 1;
    } else if (lim->tiled) {
        t.global[0] = lim->groups, t.global[1] = 1;
        t.local[0] = 1, t.local[1] = 1;
    } else {
        t.global[0] = lim->tc * lim->groups, t.global[1] = lim->tr;
        t.local[0] = lim->tc, t.local[1] = lim->tr;
    }
    t.global[2] = t.local[2] = 1;
    int ti = okto__graph_add(g, &t);
    return ti < 0 ? (okto_status)ti : OKTO_OK;
}

/* Access to the rows of t that the floats [e0, e1) (from t's start) touch. */
static okto__access acc_elems(const okto_tensor *t, size_t e0, size_t e1, int mode)
{
    return okto__acc(t, e0 / t->cols, ceil_div(e1, t->cols), mode);
}

static int same_rows(const okto_tensor *a, const okto_tensor *b)
{
    return a->st == b->st && a->row0 == b->row0 && a->rows == b->rows;
}

/* The accesses of a task that reads `ra` of in and writes `wa` of out: one RW access when out
 * is in (a 1 x 1 or one-row reduction in place), else a read and a write. */
static void in_out_acc(red_task *r, okto__access ra, okto__access wa)
{
    if (ra.st == wa.st && ra.row0 < wa.row1 && wa.row0 < ra.row1) {
        r->acc[0] = wa;
        r->acc[0].row0 = ra.row0 < wa.row0 ? ra.row0 : wa.row0;
        r->acc[0].row1 = ra.row1 > wa.row1 ? ra.row1 : wa.row1;
        r->acc[0].mode = OKTO__RW;
        r->nacc = 1;
    } else {
        r->acc[0] = wa;
        r->acc[1] = ra;
        r->nacc = 2;
    }
}

/* All of in (n contiguous floats) into the 1 x 1 out. */
static okto_status reduce_flat(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                               okto_reduce_op op, const red_limits *lim)
{
    size_t n = in->rows * in->cols;
    int nparts = okto__parts(g, n, (double)n);
    size_t per = ceil_div(n, (size_t)nparts);
    size_t ng = ceil_div(per, lim->l * lim->item);
    ng = ng < lim->maxg ? ng : lim->maxg;
    float count = op == OKTO_MEAN ? (float)n : 1.0f;
    red_task r = {
        .op = task_names[op], .rop = op, .rows_kernel = 1, .in = in, .rows = 1, .nparts = nparts};
    if (nparts == 1 && ng == 1) {
        r.out = out, r.cols = n, r.ngroups = 1, r.div = count;
        in_out_acc(&r, okto__acc(in, 0, in->rows, OKTO__R), okto__acc(out, 0, 1, OKTO__W));
        return record(g, lim, &r);
    }
    okto_tensor *scratch;
    okto_status s = okto_tensor_create(g->ctx, (size_t)nparts, ng, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t e0 = okto__part_row(n, p, nparts), e1 = okto__part_row(n, p + 1, nparts);
        r.part = p, r.out = scratch, r.in_off = e0, r.out_off = (size_t)p * ng;
        r.cols = e1 - e0, r.ngroups = ng, r.div = 1.0f;
        r.acc[0] = okto__acc(scratch, (size_t)p, (size_t)p + 1, OKTO__W);
        r.acc[1] = acc_elems(in, e0, e1, OKTO__R);
        r.nacc = 2;
        s = record(g, lim, &r);
    }
    if (s == OKTO_OK) {
        size_t m = (size_t)nparts * ng;
        red_task a = {.op = "reduce_aggregate",
                      .aggregate = 1,
                      .rop = op,
                      .rows_kernel = 1,
                      .in = scratch,
                      .out = out,
                      .rows = 1,
                      .cols = m,
                      .ngroups = 1,
                      .div = count,
                      .nparts = 1};
        a.acc[0] = okto__acc(out, 0, 1, OKTO__W);
        a.acc[1] = okto__acc(scratch, 0, (size_t)nparts, OKTO__R);
        a.nacc = 2;
        s = record(g, lim, &a);
    }
    okto_tensor_destroy(scratch); /* the graph holds the storage now */
    return s;
}

/* Each row of in into the rows x 1 out. */
static okto_status reduce_axis1(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                okto_reduce_op op, const red_limits *lim)
{
    size_t rows = in->rows, cols = in->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols);
    size_t ng = ceil_div(cols, lim->l * lim->item);
    ng = ng < lim->maxg ? ng : lim->maxg;
    float count = op == OKTO_MEAN ? (float)cols : 1.0f;
    okto_tensor *scratch = NULL;
    okto_status s = OKTO_OK;
    if (ng > 1)
        s = okto_tensor_create(g->ctx, rows, ng, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        red_task r = {.op = task_names[op],
                      .rop = op,
                      .rows_kernel = 1,
                      .in = in,
                      .in_off = r0 * cols,
                      .rows = r1 - r0,
                      .cols = cols,
                      .ngroups = ng,
                      .part = p,
                      .nparts = nparts};
        okto__access ra = okto__acc(in, r0, r1, OKTO__R);
        if (ng == 1) {
            r.out = out, r.out_off = r0, r.div = count;
            in_out_acc(&r, ra, okto__acc(out, r0, r1, OKTO__W));
            s = record(g, lim, &r);
            continue;
        }
        r.out = scratch, r.out_off = r0 * ng, r.div = 1.0f;
        r.acc[0] = okto__acc(scratch, r0, r1, OKTO__W);
        r.acc[1] = ra;
        r.nacc = 2;
        if ((s = record(g, lim, &r)) != OKTO_OK)
            break;
        red_task a = {.op = "reduce_aggregate",
                      .aggregate = 1,
                      .rop = op,
                      .rows_kernel = 1,
                      .in = scratch,
                      .in_off = r0 * ng,
                      .out = out,
                      .out_off = r0,
                      .rows = r1 - r0,
                      .cols = ng,
                      .ngroups = 1,
                      .div = count,
                      .part = p,
                      .nparts = nparts};
        a.acc[0] = okto__acc(out, r0, r1, OKTO__W);
        a.acc[1] = okto__acc(scratch, r0, r1, OKTO__R);
        a.nacc = 2;
        s = record(g, lim, &a);
    }
    okto_tensor_destroy(scratch);
    return s;
}

/* Each column of in into the 1 x cols out. */
static okto_status reduce_axis0(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                                okto_reduce_op op, const red_limits *lim)
{
    size_t rows = in->rows, cols = in->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols);
    size_t per = ceil_div(rows, (size_t)nparts);
    size_t ng = ceil_div(per, lim->tr * lim->col_item);
    ng = ng < lim->col_maxg ? ng : lim->col_maxg;
    float count = op == OKTO_MEAN ? (float)rows : 1.0f;
    red_task r = {.op = task_names[op],
                  .rop = op,
                  .rows_kernel = 0,
                  .in = in,
                  .cols = cols,
                  .ngroups = ng,
                  .nparts = nparts};
    if (nparts == 1 && ng == 1) {
        r.out = out, r.rows = rows, r.div = count;
        in_out_acc(&r, okto__acc(in, 0, rows, OKTO__R), okto__acc(out, 0, 1, OKTO__W));
        return record(g, lim, &r);
    }
    size_t m = (size_t)nparts * ng;
    okto_tensor *scratch;
    okto_status s = okto_tensor_create(g->ctx, m, cols, &scratch);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        r.part = p, r.out = scratch, r.in_off = r0 * cols, r.out_off = (size_t)p * ng * cols;
        r.rows = r1 - r0, r.div = 1.0f;
        r.acc[0] = okto__acc(scratch, (size_t)p * ng, (size_t)(p + 1) * ng, OKTO__W);
        r.acc[1] = okto__acc(in, r0, r1, OKTO__R);
        r.nacc = 2;
        s = record(g, lim, &r);
    }
    if (s == OKTO_OK) {
        red_task a = {.op = "reduce_aggregate",
                      .aggregate = 1,
                      .rop = op,
                      .rows_kernel = 0,
                      .in = scratch,
                      .out = out,
                      .rows = m,
                      .cols = cols,
                      .ngroups = 1,
                      .div = count,
                      .nparts = 1};
        a.acc[0] = okto__acc(out, 0, 1, OKTO__W);
        a.acc[1] = okto__acc(scratch, 0, m, OKTO__R);
        a.nacc = 2;
        s = record(g, lim, &a);
    }
    okto_tensor_destroy(scratch);
    return s;
}

okto_status okto_reduce(okto_graph *g, okto_tensor *out, const okto_tensor *in, okto_reduce_op op,
                        int axis)
{
    static const char *fn = "okto_reduce";
    okto_status s = okto__check_graph(g, fn);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, out, fn, "out");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, in, fn, "in");
    if (s != OKTO_OK)
        return s;
    if ((unsigned)op > (unsigned)OKTO_MEAN)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_reduce: op %d is not an okto_reduce_op",
                          (int)op);
    if (axis < -1 || axis > 1)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_reduce: axis %d (expected 0: over rows, 1: over columns, -1: "
                          "all)",
                          axis);
    size_t er = axis == 1 ? in->rows : 1, ec = axis == 0 ? in->cols : 1;
    if (out->rows != er || out->cols != ec)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_reduce: in is %zux%zu but out is %zux%zu (expected %zux%zu for "
                          "axis %d)",
                          in->rows, in->cols, out->rows, out->cols, er, ec, axis);
    /* out may be in itself (then the shapes say in is 1 x 1, rows x 1 or 1 x cols, and each
     * work-group writes only what it read); any other overlap is a race between parts */
    if (out->st == in->st && !same_rows(out, in) && out->row0 < in->row0 + in->rows &&
        in->row0 < out->row0 + out->rows)
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_reduce: out (rows [%zu, %zu)) and in (rows [%zu, %zu)) are views "
                          "of one tensor that overlap",
                          out->row0, out->row0 + out->rows, in->row0, in->row0 + in->rows);
    red_limits lim;
    if ((s = query_limits(g, &lim)) != OKTO_OK)
        return s;
    int start = g->ntasks;
    if (axis == -1 || (axis == 1 && in->rows == 1) || (axis == 0 && in->cols == 1))
        s = reduce_flat(g, out, in, op, &lim);
    else if (axis == 1)
        s = reduce_axis1(g, out, in, op, &lim);
    else
        s = reduce_axis0(g, out, in, op, &lim);
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}
