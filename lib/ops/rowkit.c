/* lib/ops/rowkit.c: the shared helpers of the contiguous-block op families (rowkit.h says
 * why they exist). */
#include "rowkit.h"

#include <limits.h>

#define OKTO__RK_MAXL 256 /* the kernels' local arrays (OKTO_NORM_MAXL, OKTO_SMX_MAXL, ...) */

okto_status okto__rk_in2d(okto__rec *r, const okto_tensor *in, okto_tensor *m)
{
    okto_tensor v;
    okto_status s = okto__rec_layout(r, in, 0, &v);
    if (s == OKTO_OK && !okto__view_2d(&v, m))
        s = okto__rec_fail(r, OKTO_EINVAL, "internal: %s has no 2-D view", OKTO__DESC(&v));
    return s;
}

okto_status okto__rk_in1d(okto__rec *r, const okto_tensor *in, okto_tensor *m)
{
    okto_tensor v;
    okto_status s = okto__rec_layout(r, in, 0, &v);
    if (s == OKTO_OK)
        okto__view_flat(&v, 0, okto__numel(&v), m);
    return s;
}

static void as_kernel_view(const okto_tensor *t, int rank2, okto_tensor *m)
{
    if (rank2)
        okto__view_2d(t, m); /* contiguous: always merges */
    else
        okto__view_flat(t, 0, okto__numel(t), m);
}

okto_status okto__rk_out_begin(okto__rec *r, okto_tensor *out, int rank2, int keep, okto__rk_out *o)
{
    o->user = out;
    o->direct = 1;
    if (!out)
        return OKTO_OK;
    if (okto__contiguous(out)) {
        as_kernel_view(out, rank2, &o->m);
        return OKTO_OK;
    }
    o->direct = 0;
    okto_status s = okto__rec_temp(r, out->dtype, out->rank, out->shape, &o->tmp);
    if (s == OKTO_OK && keep)
        s = okto_copy(r->g, &o->tmp, out);
    if (s == OKTO_OK)
        as_kernel_view(&o->tmp, rank2, &o->m);
    return s;
}

okto_status okto__rk_out_end(okto__rec *r, okto__rk_out *o, okto_status s)
{
    if (s == OKTO_OK && o->user && !o->direct)
        s = okto_copy(r->g, o->user, &o->tmp);
    return s;
}

okto_status okto__rk_local(okto__rec *r, okto__kid kid, size_t cols, size_t *l)
{
    if (okto__device_is_cpu(okto__rec_device(r))) {
        *l = 1;
        return OKTO_OK;
    }
    size_t wg = OKTO__RK_MAXL;
    okto_status s = okto__kernel_wg_size(r->ctx, kid, &wg);
    if (s != OKTO_OK)
        return s;
    size_t lim = wg < OKTO__RK_MAXL ? wg : OKTO__RK_MAXL, p = 1;
    while (p * 2 <= lim && p < cols)
        p <<= 1;
    *l = p;
    return OKTO_OK;
}

void okto__rk_range_rows(okto__tb *t, size_t l)
{
    size_t global = l * okto__rec_device(t->r)->grid_groups;
    okto__tb_range(t, 1, &global, &l);
}

void okto__rk_range_one(okto__tb *t, size_t l) { okto__tb_range(t, 1, &l, &l); }

void okto__rk_range_2d(okto__tb *t, size_t n0, size_t n1)
{
    size_t want[2] = {n0 ? n0 : 1, n1 ? n1 : 1}, global[3], local[3];
    okto__grid_nd(okto__rec_device(t->r), 2, want, global, local);
    okto__tb_range(t, 2, global, local);
}

okto_status okto__rk_flag(okto__rec *r, const char *msg, int c2, int c3, int base,
                          okto_tensor *flag)
{
    okto_status s = okto__rec_temp(r, OKTO_I32, 1, (size_t[]){4}, flag);
    if (s == OKTO_OK)
        s = okto__rec_check_init(r, flag, msg, (const int[4]){0, INT_MAX, c2, c3}, base, 1);
    return s;
}

void okto__rk_storage_range(const okto_tensor *t, size_t e0, size_t e1, okto_tensor *out)
{
    *out = *t;
    out->heap = 0;
    out->rank = 1;
    out->offset = e0;
    out->shape[0] = e1 - e0, out->stride[0] = 1;
    for (int i = 1; i < OKTO_MAX_RANK; i++)
        out->shape[i] = 1, out->stride[i] = 0;
}

okto_status okto__rk_flags(okto__rec *r, unsigned flags)
{
    if (flags & ~(unsigned)OKTO_ACCUMULATE)
        return okto__rec_fail(r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                              flags & ~(unsigned)OKTO_ACCUMULATE);
    return OKTO_OK;
}

okto_status okto__rk_disjoint(okto__rec *r, int nout, const okto_tensor *const *outs,
                              const char *const *onames, int nin, const okto_tensor *const *ins,
                              const char *const *inames, int same_ok)
{
    okto_status s = OKTO_OK;
    for (int i = 0; i < nout && s == OKTO_OK; i++) {
        for (int j = i + 1; j < nout && s == OKTO_OK; j++)
            s = okto__rec_no_alias(r, outs[i], onames[i], outs[j], onames[j], 0);
        for (int j = 0; j < nin && s == OKTO_OK; j++)
            s = okto__rec_no_alias(r, outs[i], onames[i], ins[j], inames[j],
                                   same_ok && i == 0 && j == 0);
    }
    return s;
}

okto_status okto__rk_vec(okto__rec *r, const okto_tensor *v, const char *name, const okto_tensor *x,
                         size_t cols)
{
    if (v->dtype != x->dtype || okto__numel(v) != cols || v->shape[v->rank - 1] != cols)
        return okto__rec_fail(r, OKTO_EINVAL, "x is %s but %s is %s (expected %s[%zu])",
                              OKTO__DESC(x), name, OKTO__DESC(v), okto_dtype_name(x->dtype), cols);
    return OKTO_OK;
}

okto_status okto__rk_stat(okto__rec *r, const okto_tensor *t, const char *name,
                          const okto_tensor *x, const char *xname, size_t n, int out)
{
    okto_status s = out ? okto__rec_output(r, t, name, OKTO__DT_BIT(OKTO_F32))
                        : okto__rec_tensor(r, t, name, OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK && okto__numel(t) != n)
        s = okto__rec_fail(r, OKTO_EINVAL, "%s is %s but %s is %s (expected %zu float32 elements)",
                           xname, OKTO__DESC(x), name, OKTO__DESC(t), n);
    return s;
}

okto_status okto__rk_same(okto__rec *r, const okto_tensor *a, const char *an, const okto_tensor *b,
                          const char *bn, int same_dtype)
{
    if (!okto__same_shape(a, b) || (same_dtype && a->dtype != b->dtype))
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s but %s is %s", an, OKTO__DESC(a), bn,
                              OKTO__DESC(b));
    return OKTO_OK;
}
