/* lib/ops/concat.c: okto_concat and okto_split, as copies into and out of slices along one
 * dimension (value views of the joined tensor, okto_copy per piece), so they take any strides
 * and dtypes, and each piece's copy splits into row parts as every copy does. Each is the
 * other's gradient (okto/ops.h). The tasks are the copies' ("copy" in traces); the rows here
 * name the calls in docs/ops.md and in messages. */
#include "op.h"

const okto__op_desc okto__desc_CONCAT = {
    .name = "concat",
    .family = "concat",
    .dtypes = OKTO__DT_ALL,
    .layouts = "any strides: a copy into each slice of out (gradient: split)",
    .partitioned = 1};
const okto__op_desc okto__desc_SPLIT = {
    .name = "split",
    .family = "concat",
    .dtypes = OKTO__DT_ALL,
    .layouts = "any strides: a copy out of each slice of in (gradient: concat)",
    .partitioned = 1};

/* The pieces against the whole: rank, dtype, every dimension but dim equal, sizes along dim
 * summing to the whole's. *axis gets dim normalised. */
static okto_status check_pieces(okto__rec *r, const okto_tensor *whole, const char *wname, int n,
                                const okto_tensor *const *pieces, const char *pname, int dim,
                                int *axis)
{
    if (n < 1)
        return okto__rec_fail(r, OKTO_EINVAL, "n is %d; it must be >= 1", n);
    if (!pieces)
        return okto__rec_fail(r, OKTO_EINVAL, "%s must not be NULL", pname);
    int rank = whole->rank;
    if (dim < -rank || dim >= rank)
        return okto__rec_fail(r, OKTO_EINVAL, "dim %d is outside [%d, %d) for %s %s", dim, -rank,
                              rank, wname, OKTO__DESC(whole));
    int d = dim < 0 ? dim + rank : dim;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const okto_tensor *p = pieces[i];
        char arg[32];
        snprintf(arg, sizeof arg, "%s[%d]", pname, i);
        okto_status s = okto__rec_tensor(r, p, arg, OKTO__DT_ALL);
        if (s != OKTO_OK)
            return s;
        int ok = p->rank == rank && p->dtype == whole->dtype;
        for (int j = 0; ok && j < rank; j++)
            ok = j == d || p->shape[j] == whole->shape[j];
        if (!ok)
            return okto__rec_fail(r, OKTO_EINVAL,
                                  "%s is %s but %s is %s: same rank and dtype, and equal in every "
                                  "dimension but %d",
                                  wname, OKTO__DESC(whole), arg, OKTO__DESC(p), d);
        total += p->shape[d];
    }
    if (total != whole->shape[d])
        return okto__rec_fail(r, OKTO_EINVAL,
                              "%s is %s but the %d %s add up to %zu along dimension %d", wname,
                              OKTO__DESC(whole), n, pname, total, d);
    *axis = d;
    return OKTO_OK;
}

okto_status okto_concat(okto_graph *g, okto_tensor *out, int n, const okto_tensor *const *ins,
                        int dim)
{
    okto__rec r;
    int d = 0;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_CONCAT, "okto_concat");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_ALL);
    if (s == OKTO_OK)
        s = check_pieces(&r, out, "out", n, ins, "ins", dim, &d);
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "ins[%d]", i);
        s = okto__rec_no_alias(&r, out, "out", ins[i], arg, 0);
    }
    size_t at = 0;
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        okto_tensor slot;
        okto__view_slice(out, d, at, ins[i]->shape[d], &slot);
        at += ins[i]->shape[d];
        s = okto_copy(g, &slot, ins[i]);
        /* on the tape as the copies they are, each with copy's gradient */
        if (s == OKTO_OK)
            s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_COPY, .nin = 1, .nout = 1,
                                                     .t = {ins[i], &slot}, .overwrite = 1});
    }
    return okto__rec_end(&r, s);
}

okto_status okto_split(okto_graph *g, int n, okto_tensor *const *outs, const okto_tensor *in,
                       int dim)
{
    okto__rec r;
    int d = 0;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_SPLIT, "okto_split");
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_ALL);
    if (s == OKTO_OK)
        s = check_pieces(&r, in, "in", n, (const okto_tensor *const *)outs, "outs", dim, &d);
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        char arg[32];
        snprintf(arg, sizeof arg, "outs[%d]", i);
        s = okto__rec_output(&r, outs[i], arg, OKTO__DT_ALL);
        if (s == OKTO_OK)
            s = okto__rec_no_alias(&r, outs[i], arg, in, "in", 0);
        for (int j = 0; j < i && s == OKTO_OK; j++) {
            char other[32];
            snprintf(other, sizeof other, "outs[%d]", j);
            s = okto__rec_no_alias(&r, outs[i], arg, outs[j], other, 0);
        }
    }
    size_t at = 0;
    for (int i = 0; i < n && s == OKTO_OK; i++) {
        okto_tensor piece;
        okto__view_slice(in, d, at, outs[i]->shape[d], &piece);
        at += outs[i]->shape[d];
        s = okto_copy(g, outs[i], &piece);
        if (s == OKTO_OK)
            s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_COPY, .nin = 1, .nout = 1,
                                                     .t = {&piece, outs[i]}, .overwrite = 1});
    }
    return okto__rec_end(&r, s);
}
