/* lib/ops/elementwise.c: okto_map (out = f(in)) and okto_zip (out = a op b, b full-shape or a
 * broadcast row). Work over many rows is split into row parts, one per compute lane; a part
 * reads and writes only its rows (a broadcast b: its one row), so later ops on those rows wait
 * for that part alone.
 *
 * Aliasing: out may be the same tensor (same storage and rows) as an input; the task then has
 * one read-write access to those rows instead of a read and a write. Each element is read and
 * written by one work item, so that is safe. A partial overlap (views whose rows overlap but
 * differ) would let one part overwrite rows another part still reads: it is rejected. */
#include "internal.h"

#include <stdint.h>
#include <string.h>

static const char *const map_kernels[] = {
    [OKTO_RELU] = "okto_map_relu",       [OKTO_GELU] = "okto_map_gelu",
    [OKTO_SIGMOID] = "okto_map_sigmoid", [OKTO_TANH] = "okto_map_tanh",
    [OKTO_EXP] = "okto_map_exp",         [OKTO_LOG] = "okto_map_log",
    [OKTO_NEG] = "okto_map_neg",         [OKTO_SQRT] = "okto_map_sqrt",
    [OKTO_ABS] = "okto_map_abs",         [OKTO_SQUARE] = "okto_map_square",
};

static const char *const zip_kernels[] = {
    [OKTO_ADD] = "okto_zip_add",
    [OKTO_SUB] = "okto_zip_sub",
    [OKTO_MUL] = "okto_zip_mul",
    [OKTO_DIV] = "okto_zip_div",
    [OKTO_MAXIMUM] = "okto_zip_maximum",
    [OKTO_MINIMUM] = "okto_zip_minimum",
    [OKTO_RELU_GRAD] = "okto_zip_relu_grad",
};

/* Perf-model keys: one per kernel, so each op learns its own durations. */
static const char *const map_names[] = {
    [OKTO_RELU] = "map_relu",     [OKTO_GELU] = "map_gelu", [OKTO_SIGMOID] = "map_sigmoid",
    [OKTO_TANH] = "map_tanh",     [OKTO_EXP] = "map_exp",   [OKTO_LOG] = "map_log",
    [OKTO_NEG] = "map_neg",       [OKTO_SQRT] = "map_sqrt", [OKTO_ABS] = "map_abs",
    [OKTO_SQUARE] = "map_square",
};

static const char *const zip_names[] = {
    [OKTO_ADD] = "zip_add",
    [OKTO_SUB] = "zip_sub",
    [OKTO_MUL] = "zip_mul",
    [OKTO_DIV] = "zip_div",
    [OKTO_MAXIMUM] = "zip_maximum",
    [OKTO_MINIMUM] = "zip_minimum",
    [OKTO_RELU_GRAD] = "zip_relu_grad",
};


/* out may be in itself, but not a view overlapping it in part. */
static okto_status check_alias(okto_graph *g, const char *op, const okto_tensor *out,
                               const okto_tensor *in, const char *in_name)
{
    if (!okto__rows_overlap(out, in) || okto__same_rows(out, in))
        return OKTO_OK;
    return okto__fail(g->ctx, OKTO_EINVAL,
                      "%s: out (rows [%zu, %zu)) and %s (rows [%zu, %zu)) are views of one "
                      "tensor that overlap without being the same rows",
                      op, out->row0, out->row0 + out->rows, in_name, in->row0, in->row0 + in->rows);
}

okto_status okto_map(okto_graph *g, okto_tensor *out, const okto_tensor *in, okto_map_op op)
{
    static const char *fn = "okto_map";
    okto_status s = okto__check_graph(g, fn);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, out, fn, "out");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, in, fn, "in");
    if (s != OKTO_OK)
        return s;
    if ((unsigned)op > (unsigned)OKTO_SQUARE)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_map: op %d is not an okto_map_op", (int)op);
    if (out->rows != in->rows || out->cols != in->cols)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_map: in is %zux%zu but out is %zux%zu",
                          in->rows, in->cols, out->rows, out->cols);
    if ((s = check_alias(g, fn, out, in, "in")) != OKTO_OK)
        return s;

    size_t rows = out->rows, cols = out->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        cl_int n = (cl_int)((r1 - r0) * cols);
        const okto__karg args[] = {OKTO__KT(out, r0), OKTO__KT(in, r0), OKTO__KV(n)};
        okto__access acc[2];
        int nacc = 0;
        okto__add_access(acc, &nacc, okto__acc(out, r0, r1, OKTO__W));
        okto__add_access(acc, &nacc, okto__acc(in, r0, r1, OKTO__R));
        okto__task t = {.op = map_names[op], .part = p, .nparts = nparts,
                        .flops = (double)n * (op == OKTO_GELU ? 10.0 : 1.0),
                        .bytes = (double)n * sizeof(float) * 2, .acc = acc, .nacc = nacc};
        s = okto__record_1d(g, map_kernels[op], fn, t, (size_t)n, 3, args);
    }
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}

okto_status okto_zip(okto_graph *g, okto_tensor *out, const okto_tensor *a, const okto_tensor *b,
                     okto_zip_op op)
{
    static const char *fn = "okto_zip";
    okto_status s = okto__check_graph(g, fn);
    if (s == OKTO_OK)
        s = okto__check_tensor(g, out, fn, "out");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, a, fn, "a");
    if (s == OKTO_OK)
        s = okto__check_tensor(g, b, fn, "b");
    if (s != OKTO_OK)
        return s;
    if ((unsigned)op > (unsigned)OKTO_RELU_GRAD)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_zip: op %d is not an okto_zip_op", (int)op);
    if (b->cols != a->cols || (b->rows != a->rows && b->rows != 1))
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_zip: a is %zux%zu but b is %zux%zu (expected %zux%zu or 1x%zu)",
                          a->rows, a->cols, b->rows, b->cols, a->rows, a->cols, a->cols);
    if (out->rows != a->rows || out->cols != a->cols)
        return okto__fail(g->ctx, OKTO_EINVAL, "okto_zip: a is %zux%zu but out is %zux%zu", a->rows,
                          a->cols, out->rows, out->cols);
    /* a 1 x cols b of a 1 x cols a is the same either way: no broadcast */
    int bcast = b->rows != a->rows;
    if ((s = check_alias(g, fn, out, a, "a")) != OKTO_OK)
        return s;
    /* a broadcast row inside out would be overwritten by one part while others still read it */
    if (bcast && okto__rows_overlap(out, b))
        return okto__fail(g->ctx, OKTO_EINVAL,
                          "okto_zip: the broadcast row b (row %zu) lies inside out (rows [%zu, "
                          "%zu)) of the same tensor",
                          b->row0, out->row0, out->row0 + out->rows);
    if ((s = check_alias(g, fn, out, b, "b")) != OKTO_OK)
        return s;

    size_t rows = out->rows, cols = out->cols;
    int nparts = okto__parts(g, rows, (double)rows * (double)cols), start = g->ntasks;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        cl_int nr = (cl_int)(r1 - r0), nc = (cl_int)cols, ne = nr * nc, bc = bcast;
        const okto__karg args[] = {OKTO__KT(out, r0), OKTO__KT(a, r0),
                                   OKTO__KT(b, bcast ? 0 : r0), OKTO__KV(ne), OKTO__KV(nc),
                                   OKTO__KV(bc)};
        okto__access acc[3];
        int nacc = 0;
        okto__add_access(acc, &nacc, okto__acc(out, r0, r1, OKTO__W));
        okto__add_access(acc, &nacc, okto__acc(a, r0, r1, OKTO__R));
        okto__add_access(acc, &nacc,
                         bcast ? okto__acc(b, 0, 1, OKTO__R) : okto__acc(b, r0, r1, OKTO__R));
        okto__task t = {.op = zip_names[op], .part = p, .nparts = nparts, .flops = (double)ne,
                        .bytes = (double)ne * sizeof(float) * (bcast ? 2 : 3), .acc = acc,
                        .nacc = nacc};
        s = okto__record_1d(g, zip_kernels[op], fn, t, (size_t)ne, 6, args);
    }
    if (s != OKTO_OK)
        okto__graph_truncate(g, start);
    return s;
}
