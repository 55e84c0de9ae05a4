/* lib/ops/argmax.c: okto_argmax over the last dimension into int32 indices. Kernel in
 * cl/argmax.cl: a row kernel whose tree keeps (value, then smaller index), a total order, so
 * the first maximum wins whatever the local size; split into row parts across the lanes. */
#include "rowkit.h"

const okto__op_desc okto__desc_ARGMAX = {.name = "argmax",
                                         .family = "argmax",
                                         .dtypes = OKTO__DT_ALL,
                                         .layouts = "any strides (copied); out i32",
                                         .dtype_note = "i32 compared as float (exact below 2^24)",
                                         .partitioned = 1};

okto_status okto_argmax(okto_graph *g, okto_tensor *out, const okto_tensor *in)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_ARGMAX, "okto_argmax");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_BIT(OKTO_I32));
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_ALL);
    size_t cols = s == OKTO_OK ? in->shape[in->rank - 1] : 0;
    size_t rows = s == OKTO_OK ? okto__numel(in) / cols : 0;
    if (s == OKTO_OK && okto__numel(out) != rows)
        s = okto__rec_fail(&r, OKTO_EINVAL,
                           "in is %s (%zu rows) but out is %s (expected %zu int32)", OKTO__DESC(in),
                           rows, OKTO__DESC(out), rows);
    if (s == OKTO_OK && cols > 2147483647u)
        s = okto__rec_fail(&r, OKTO_EINVAL, "in is %s: rows must be shorter than 2^31",
                           OKTO__DESC(in));
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", in, "in", 0);
    okto_tensor x2;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, in, &x2);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, out, 0, 0, &o);
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, rows, (double)rows * (double)cols) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts), l;
        okto_tensor xi, oi;
        okto__view_slice(&x2, 0, r0, r1 - r0, &xi);
        okto__view_flat(&o.m, r0, r1, &oi);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_ARGMAX);
        okto__tb_kernel(&t, "argmax", in->dtype, NULL, "okto_argmax_rows");
        if ((s = t.status) != OKTO_OK || (s = okto__rk_local(&r, t.kid, cols, &l)) != OKTO_OK)
            break;
        okto__tb_arg_tensor(&t, &xi);
        okto__tb_arg_tensor(&t, &oi);
        okto__tb_arg_ulong(&t, r1 - r0);
        okto__tb_arg_ulong(&t, cols);
        okto__rk_range_rows(&t, l);
        okto__tb_access(&t, &xi, OKTO__R);
        okto__tb_access(&t, &oi, OKTO__W);
        double n = (double)(r1 - r0) * (double)cols;
        okto__tb_cost(&t, 2 * n, n * (double)okto_dtype_size(in->dtype),
                      ((uint64_t)(r1 - r0) << 32) ^ (uint64_t)cols);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    return okto__rec_end(&r, s);
}
