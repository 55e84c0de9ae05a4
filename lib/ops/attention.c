/* lib/ops/attention.c: okto_attention and okto_attention_backward, fused scaled dot-product
 * attention (kernels in cl/attention.cl: FlashAttention-2's split, the score matrix never in
 * global memory).
 *
 * Layouts. q, k, v, o and their gradients are [B, H, T, D] views with D contiguous, any other
 * strides: heads taken from a fused projection [B, T, 3 H, D] by slicing and permuting go to the
 * kernels as they are, and so does an output written into [B, T, H, D] through a permuted
 * view. A view whose last dimension is strided is copied first (okto__rec_layout), an output so
 * laid out computed into a temporary and copied back. lse (the forward's logsumexp, the
 * backward's input) is float32 [B, H, Tq], contiguous (else through a temporary).
 *
 * Parts. The kernels loop over (b, h, tile) on a fixed grid, so a part is the same launch over
 * a range of batches (or, when B = 1, of heads): each part writes its [b, h] range of the
 * outputs and reads only that range of the inputs, so a later op on some heads waits for their
 * part alone. The backward computes delta = rowsum(dout * o) per part first (into a float32
 * temporary), then dq and dk/dv (independent of each other). Every output element is one work
 * item's fixed-order sum: the same bits under every policy, split or not.
 *
 * What the host refuses (the kernels' preconditions, cl/attention.cl): D > 128 (the kernels'
 * private arrays), and causal with Tq != Tk: the kernels align the ends of the two sequences
 * (query i sees key j iff j <= i + Tk - Tq, FlashAttention >= 2.1) while PyTorch's is_causal
 * aligns their starts, so that case would silently differ from PyTorch's and is refused. */
#include "op.h"

#include <math.h>

#define OKTO__ATT_DMAX 128

static okto_status attention_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_ATTENTION = {.backward = attention_grad,
    .name = "attention",
    .family = "attention",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "[B, H, T, D] views with D contiguous, any other strides (heads of a fused "
               "projection as they are); else copied; lse f32 [B, H, Tq]",
    .partitioned = 1};
const okto__op_desc okto__desc_ATTENTION_BWD = {
    .name = "attention.backward",
    .family = "attention",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "as attention; the dq kernel (after attention.backward.delta)",
    .partitioned = 1};
const okto__op_desc okto__desc_ATTENTION_BWD_DELTA = {
    .name = "attention.backward.delta",
    .family = "attention",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "as attention; delta = rowsum(dout * o) into a f32 temporary",
    .partitioned = 1};
const okto__op_desc okto__desc_ATTENTION_BWD_DKDV = {.name = "attention.backward.dkdv",
                                                     .family = "attention",
                                                     .dtypes = OKTO__DT_FLOATS,
                                                     .layouts = "as attention",
                                                     .partitioned = 1};

/* The work-group size: a tile of L query (or key) rows. 64 is what cl/attention.cl measured;
 * short sequences take 16 so most items of a group have a row. Two sizes only, since each local
 * size is a compile of its own on PoCL. */
static size_t tile_rows(size_t t) { return t <= 16 ? 16 : 64; }

typedef struct att_dims {
    size_t B, H, Tq, Tk, D;
} att_dims;

/* A [B, H, T, D] view's (strides) as the kernels take them, after its tensor argument. */
static void arg_view(okto__tb *t, const okto_tensor *v)
{
    okto__tb_arg_tensor(t, v);
    okto__tb_arg_long(t, v->stride[0]);
    okto__tb_arg_long(t, v->stride[1]);
    okto__tb_arg_long(t, v->stride[2]);
}

static okto_status kernel(okto__tb *t, okto_dtype dt, size_t D, const char *name)
{
    /* -DOKTO_ATT_D would fix the head dim at compile time: on GPUs it keeps the rows in
     * registers; on PoCL it measured no faster (B 8 H 4 T 256 D 64, forward + backward: 234
     * against 232 ms) and costs a program per head dim, so CPUs take the generic build */
    char extra[32] = "";
    if (!okto__device_is_cpu(okto__rec_device(t->r)))
        snprintf(extra, sizeof extra, "-DOKTO_ATT_D=%d", (int)D);
    okto__tb_kernel(t, "attention", dt, extra[0] ? extra : NULL, name);
    return t->status;
}

/* A tile kernel's 1-D launch: L items a group, the device's fixed number of groups. */
static void tile_range(okto__tb *t, size_t rows)
{
    size_t l = tile_rows(rows), global = l * okto__rec_device(t->r)->grid_groups;
    okto__tb_range(t, 1, &global, &l);
}

/* Keys each query row sees on average: Tk, or about half of them when causal (Tq == Tk). */
static double visible(const att_dims *d, int causal)
{
    return causal ? 0.5 * (double)(d->Tk + 1) : (double)d->Tk;
}

/* ---- argument checks --------------------------------------------------------------------------- */

static int dcontig(const okto_tensor *t) { return t->shape[3] == 1 || t->stride[3] == 1; }

static okto_status check_scale(okto__rec *r, float scale, size_t D, float *out)
{
    if (!isfinite(scale))
        return okto__rec_fail(r, OKTO_EINVAL, "scale is %g; it must be finite (0: 1/sqrt(D))",
                              (double)scale);
    *out = scale == 0.0f ? (float)(1.0 / sqrt((double)D)) : scale;
    return OKTO_OK;
}

/* q [B, H, Tq, D], k and v [B, H, Tk, D], one float dtype; D and causal within what the kernels
 * compute as PyTorch does. */
static okto_status check_qkv(okto__rec *r, const okto_tensor *q, const okto_tensor *k,
                             const okto_tensor *v, int causal, att_dims *d)
{
    okto_status s = okto__rec_tensor(r, q, "q", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(r, k, "k", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(r, v, "v", OKTO__DT_FLOATS);
    if (s != OKTO_OK)
        return s;
    if (q->rank != 4 || k->rank != 4 || v->rank != 4)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "q is %s, k is %s, v is %s: all must be 4-D [B, H, T, D]",
                              OKTO__DESC(q), OKTO__DESC(k), OKTO__DESC(v));
    if (k->dtype != q->dtype || v->dtype != q->dtype)
        return okto__rec_fail(r, OKTO_EINVAL, "q is %s, k is %s, v is %s: dtypes differ",
                              OKTO__DESC(q), OKTO__DESC(k), OKTO__DESC(v));
    if (!okto__same_shape(k, v) || k->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
        k->shape[3] != q->shape[3])
        return okto__rec_fail(r, OKTO_EINVAL,
                              "q is %s, k is %s, v is %s: need q [B, H, Tq, D] and k, v "
                              "[B, H, Tk, D] (one H for all: no shared key heads)",
                              OKTO__DESC(q), OKTO__DESC(k), OKTO__DESC(v));
    *d = (att_dims){q->shape[0], q->shape[1], q->shape[2], k->shape[2], q->shape[3]};
    if (d->D > OKTO__ATT_DMAX)
        return okto__rec_fail(r, OKTO_ENOTSUP, "q is %s: head dim %zu is over %d", OKTO__DESC(q),
                              d->D, OKTO__ATT_DMAX);
    if (causal && d->Tq != d->Tk)
        return okto__rec_fail(r, OKTO_ENOTSUP,
                              "causal with q %s and k %s (Tq %zu != Tk %zu): the kernels align "
                              "the sequences' ends, PyTorch's is_causal their starts; refused "
                              "rather than differ",
                              OKTO__DESC(q), OKTO__DESC(k), d->Tq, d->Tk);
    return OKTO_OK;
}

static okto_status check_like(okto__rec *r, const okto_tensor *t, const char *name,
                              const okto_tensor *ref, const char *rname)
{
    if (!okto__same_shape(t, ref) || t->dtype != ref->dtype)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s but %s is %s (they must match)", rname,
                              OKTO__DESC(ref), name, OKTO__DESC(t));
    return OKTO_OK;
}

static okto_status check_lse(okto__rec *r, const okto_tensor *lse, const att_dims *d)
{
    if (lse->dtype != OKTO_F32 || lse->rank != 3 || lse->shape[0] != d->B ||
        lse->shape[1] != d->H || lse->shape[2] != d->Tq)
        return okto__rec_fail(r, OKTO_EINVAL, "lse is %s; it must be f32[%zu,%zu,%zu] ([B, H, Tq])",
                              OKTO__DESC(lse), d->B, d->H, d->Tq);
    return OKTO_OK;
}

/* ---- layouts ----------------------------------------------------------------------------------- */

/* An input as the kernels take it: itself when D is contiguous, else a contiguous copy. */
static okto_status input(okto__rec *r, const okto_tensor *t, okto_tensor *out)
{
    if (dcontig(t)) {
        *out = *t;
        out->heap = 0;
        return OKTO_OK;
    }
    return okto__rec_layout(r, t, 0, out);
}

/* An output: itself when D is contiguous, else a temporary copied back by output_end (and, for
 * an output that is accumulated into, filled from it first). */
static okto_status output_begin(okto__rec *r, okto_tensor *t, int acc, okto_tensor *out)
{
    if (dcontig(t)) {
        *out = *t;
        out->heap = 0;
        return OKTO_OK;
    }
    okto_status s = okto__rec_temp(r, t->dtype, t->rank, t->shape, out);
    if (s == OKTO_OK && acc)
        s = okto_copy(r->g, out, t);
    return s;
}

static okto_status output_end(okto__rec *r, okto_tensor *t, const okto_tensor *v)
{
    return okto__same_view(t, v) ? OKTO_OK : okto_copy(r->g, t, v);
}

/* ---- parts ------------------------------------------------------------------------------------- */

/* Parts over the batch dimension, or over heads when there is one batch (lse and delta then
 * stay contiguous per part); dim is the dimension split. */
static int att_parts(const okto__rec *r, const att_dims *d, double flops, int *dim)
{
    int n = okto__rec_parts(r, d->B * d->H, flops);
    *dim = d->B == 1 ? 1 : 0;
    size_t along = *dim ? d->H : d->B;
    return (size_t)n < along ? n : (int)along;
}

static void part_of(const okto_tensor *t, int dim, size_t i0, size_t n, okto_tensor *out)
{
    okto__view_slice(t, dim, i0, n, out);
}

/* ---- forward ----------------------------------------------------------------------------------- */

okto_status okto_attention(okto_graph *g, okto_tensor *o, okto_tensor *lse, const okto_tensor *q,
                           const okto_tensor *k, const okto_tensor *v, float scale, int causal)
{
    okto__rec r;
    att_dims d = {0};
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_ATTENTION, "okto_attention");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, o, "o", OKTO__DT_FLOATS);
    if (s == OKTO_OK && lse)
        s = okto__rec_output(&r, lse, "lse", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK)
        s = check_qkv(&r, q, k, v, causal, &d);
    if (s == OKTO_OK)
        s = check_like(&r, o, "o", q, "q");
    if (s == OKTO_OK && lse)
        s = check_lse(&r, lse, &d);
    if (s == OKTO_OK)
        s = check_scale(&r, scale, d.D, &scale);
    const okto_tensor *ins[3] = {q, k, v};
    const char *inames[3] = {"q", "k", "v"};
    for (int i = 0; i < 3 && s == OKTO_OK; i++)
        if ((s = okto__rec_no_alias(&r, o, "o", ins[i], inames[i], 0)) == OKTO_OK)
            s = okto__rec_no_alias(&r, lse, "lse", ins[i], inames[i], 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, lse, "lse", o, "o", 0);
    okto_tensor qv, kv, vv, ov, lv;
    if (s == OKTO_OK)
        s = input(&r, q, &qv);
    if (s == OKTO_OK)
        s = input(&r, k, &kv);
    if (s == OKTO_OK)
        s = input(&r, v, &vv);
    if (s == OKTO_OK)
        s = output_begin(&r, o, 0, &ov);
    int lse_direct = lse && okto__contiguous(lse);
    if (s == OKTO_OK) {
        if (lse_direct)
            lv = *lse, lv.heap = 0;
        else
            s = okto__rec_temp(&r, OKTO_F32, 3, (size_t[]){d.B, d.H, d.Tq}, &lv);
    }
    double flops = 4.0 * (double)(d.B * d.H * d.Tq) * visible(&d, causal) * (double)d.D;
    int dim = 0, nparts = s == OKTO_OK ? att_parts(&r, &d, flops, &dim) : 0;
    size_t along = dim ? d.H : d.B;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t i0 = okto__part_row(along, p, nparts), n = okto__part_row(along, p + 1, nparts) - i0;
        okto_tensor qp, kp, vp, op, lp;
        part_of(&qv, dim, i0, n, &qp);
        part_of(&kv, dim, i0, n, &kp);
        part_of(&vv, dim, i0, n, &vp);
        part_of(&ov, dim, i0, n, &op);
        part_of(&lv, dim, i0, n, &lp);
        size_t B = dim ? d.B : n, H = dim ? n : d.H;
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_ATTENTION);
        if ((s = kernel(&t, q->dtype, d.D, "okto_attn_fwd")) != OKTO_OK)
            break;
        arg_view(&t, &qp);
        arg_view(&t, &kp);
        arg_view(&t, &vp);
        arg_view(&t, &op);
        okto__tb_arg_tensor(&t, &lp);
        okto__tb_arg_ulong(&t, B);
        okto__tb_arg_ulong(&t, H);
        okto__tb_arg_ulong(&t, d.Tq);
        okto__tb_arg_ulong(&t, d.Tk);
        okto__tb_arg_int(&t, (int)d.D);
        okto__tb_arg_float(&t, scale);
        okto__tb_arg_int(&t, causal != 0);
        tile_range(&t, d.Tq);
        okto__tb_access(&t, &qp, OKTO__R);
        okto__tb_access(&t, &kp, OKTO__R);
        okto__tb_access(&t, &vp, OKTO__R);
        okto__tb_access(&t, &op, OKTO__W);
        okto__tb_access(&t, &lp, OKTO__W);
        double bh = (double)(B * H), es = (double)okto_dtype_size(q->dtype);
        okto__tb_cost(&t, flops * bh / (double)(d.B * d.H),
                      bh * es * (double)d.D * (2.0 * (double)d.Tq + 2.0 * (double)d.Tk),
                      (uint64_t)B << 48 ^ (uint64_t)H << 40 ^ (uint64_t)d.Tq << 20 ^
                          (uint64_t)d.Tk << 4 ^ (uint64_t)d.D << 56 ^ (uint64_t)(causal != 0));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    if (s == OKTO_OK)
        s = output_end(&r, o, &ov);
    if (s == OKTO_OK && lse && !lse_direct)
        s = okto_copy(g, lse, &lv);
    /* the gradient reads q, k, v, o and the logsumexps (kept whether or not the caller asked) */
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_ATTENTION, .nin = 3, .nout = 1,
                                                 .naux = 1, .t = {q, k, v, o, &lv},
                                                 .saved = 31u, .overwrite = 1, .f = {scale},
                                                 .i = {causal != 0}});
    return okto__rec_end(&r, s);
}

static okto_status attention_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dq = okto__grad_in(gr, 0), *dk = okto__grad_in(gr, 1), *dv = okto__grad_in(gr, 2);
    if (!dq && !dk && !dv)
        return OKTO_OK;
    return okto_attention_backward(okto__grad_graph(gr), dq, dk, dv, okto__grad_out(gr, 0),
                                   &n->t[0], &n->t[1], &n->t[2], &n->t[3], &n->t[4], n->f[0],
                                   n->i[0], OKTO_ACCUMULATE);
}

/* ---- backward ---------------------------------------------------------------------------------- */

okto_status okto_attention_backward(okto_graph *g, okto_tensor *dq, okto_tensor *dk,
                                    okto_tensor *dv, const okto_tensor *dout, const okto_tensor *q,
                                    const okto_tensor *k, const okto_tensor *v,
                                    const okto_tensor *o, const okto_tensor *lse, float scale,
                                    int causal, unsigned flags)
{
    okto__rec r;
    att_dims d = {0};
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_ATTENTION_BWD, "okto_attention_backward");
    if (s == OKTO_OK && (flags & ~(unsigned)OKTO_ACCUMULATE))
        s = okto__rec_fail(&r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                           flags & ~(unsigned)OKTO_ACCUMULATE);
    if (s == OKTO_OK && !dq && !dk && !dv)
        s = okto__rec_fail(&r, OKTO_EINVAL, "dq, dk and dv are all NULL");
    okto_tensor *outs[3] = {dq, dk, dv};
    const char *onames[3] = {"dq", "dk", "dv"};
    for (int i = 0; i < 3 && s == OKTO_OK; i++)
        if (outs[i])
            s = okto__rec_output(&r, outs[i], onames[i], OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dout, "dout", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, o, "o", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, lse, "lse", OKTO__DT_BIT(OKTO_F32));
    if (s == OKTO_OK)
        s = check_qkv(&r, q, k, v, causal, &d);
    if (s == OKTO_OK)
        s = check_like(&r, o, "o", q, "q");
    if (s == OKTO_OK)
        s = check_like(&r, dout, "dout", q, "q");
    if (s == OKTO_OK && dq)
        s = check_like(&r, dq, "dq", q, "q");
    if (s == OKTO_OK && dk)
        s = check_like(&r, dk, "dk", k, "k");
    if (s == OKTO_OK && dv)
        s = check_like(&r, dv, "dv", v, "v");
    if (s == OKTO_OK)
        s = check_lse(&r, lse, &d);
    if (s == OKTO_OK)
        s = check_scale(&r, scale, d.D, &scale);
    /* the gradients overlap nothing: not the inputs, not each other */
    const okto_tensor *ins[6] = {dout, q, k, v, o, lse};
    const char *inames[6] = {"dout", "q", "k", "v", "o", "lse"};
    for (int i = 0; i < 3 && s == OKTO_OK; i++) {
        for (int j = 0; j < 6 && s == OKTO_OK; j++)
            s = okto__rec_no_alias(&r, outs[i], onames[i], ins[j], inames[j], 0);
        for (int j = i + 1; j < 3 && s == OKTO_OK; j++)
            s = okto__rec_no_alias(&r, outs[i], onames[i], outs[j], onames[j], 0);
    }
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    okto_tensor qv, kv, vv, ov, gv, lv, delta, dqv, dkv, dvv;
    if (s == OKTO_OK)
        s = input(&r, q, &qv);
    if (s == OKTO_OK)
        s = input(&r, k, &kv);
    if (s == OKTO_OK)
        s = input(&r, v, &vv);
    if (s == OKTO_OK)
        s = input(&r, o, &ov);
    if (s == OKTO_OK)
        s = input(&r, dout, &gv);
    if (s == OKTO_OK)
        s = okto__rec_layout(&r, lse, 0, &lv);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_F32, 3, (size_t[]){d.B, d.H, d.Tq}, &delta);
    if (s == OKTO_OK && dq)
        s = output_begin(&r, dq, acc, &dqv);
    /* dk and dv come from one kernel: a missing one is a scratch temporary */
    if (s == OKTO_OK && (dk || dv)) {
        if (dk)
            s = output_begin(&r, dk, acc, &dkv);
        else
            s = okto__rec_temp(&r, k->dtype, 4, k->shape, &dkv);
        if (s == OKTO_OK && dv)
            s = output_begin(&r, dv, acc, &dvv);
        else if (s == OKTO_OK)
            s = okto__rec_temp(&r, v->dtype, 4, v->shape, &dvv);
    }
    double pairs = (double)(d.B * d.H * d.Tq) * visible(&d, causal) * (double)d.D;
    double flops = (dq ? 8.0 : 0.0) * pairs + (dk || dv ? 10.0 : 0.0) * pairs;
    int dim = 0, nparts = s == OKTO_OK ? att_parts(&r, &d, flops, &dim) : 0;
    size_t along = dim ? d.H : d.B;
    double es = s == OKTO_OK ? (double)okto_dtype_size(q->dtype) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t i0 = okto__part_row(along, p, nparts), n = okto__part_row(along, p + 1, nparts) - i0;
        size_t B = dim ? d.B : n, H = dim ? n : d.H;
        double bh = (double)(B * H), frac = bh / (double)(d.B * d.H);
        uint64_t key = (uint64_t)B << 48 ^ (uint64_t)H << 40 ^ (uint64_t)d.Tq << 20 ^
                       (uint64_t)d.Tk << 4 ^ (uint64_t)d.D << 56 ^ (uint64_t)(causal != 0) ^
                       (uint64_t)acc << 1;
        okto_tensor qp, kp, vp, op, gp, lp, dp, dqp, dkp, dvp;
        part_of(&qv, dim, i0, n, &qp);
        part_of(&kv, dim, i0, n, &kp);
        part_of(&vv, dim, i0, n, &vp);
        part_of(&ov, dim, i0, n, &op);
        part_of(&gv, dim, i0, n, &gp);
        part_of(&lv, dim, i0, n, &lp);
        part_of(&delta, dim, i0, n, &dp);
        /* delta = rowsum(dout * o): one item per row */
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_ATTENTION_BWD_DELTA);
        if ((s = kernel(&t, q->dtype, d.D, "okto_attn_bwd_delta")) != OKTO_OK)
            break;
        arg_view(&t, &op);
        arg_view(&t, &gp);
        okto__tb_arg_tensor(&t, &dp);
        okto__tb_arg_ulong(&t, B);
        okto__tb_arg_ulong(&t, H);
        okto__tb_arg_ulong(&t, d.Tq);
        okto__tb_arg_int(&t, (int)d.D);
        okto__tb_range_1d(&t, B * H * d.Tq);
        okto__tb_access(&t, &op, OKTO__R);
        okto__tb_access(&t, &gp, OKTO__R);
        okto__tb_access(&t, &dp, OKTO__W);
        okto__tb_cost(&t, 2.0 * bh * (double)(d.Tq * d.D), bh * (double)d.Tq * (2 * es * d.D + 4),
                      key);
        okto__tb_part(&t, p, nparts);
        if ((s = okto__tb_commit(&t)) != OKTO_OK)
            break;
        if (dq) {
            part_of(&dqv, dim, i0, n, &dqp);
            okto__tb_init(&t, &r, OKTO__OP_ATTENTION_BWD);
            if ((s = kernel(&t, q->dtype, d.D, "okto_attn_bwd_dq")) != OKTO_OK)
                break;
            arg_view(&t, &qp);
            arg_view(&t, &kp);
            arg_view(&t, &vp);
            arg_view(&t, &gp);
            okto__tb_arg_tensor(&t, &lp);
            okto__tb_arg_tensor(&t, &dp);
            arg_view(&t, &dqp);
            okto__tb_arg_ulong(&t, B);
            okto__tb_arg_ulong(&t, H);
            okto__tb_arg_ulong(&t, d.Tq);
            okto__tb_arg_ulong(&t, d.Tk);
            okto__tb_arg_int(&t, (int)d.D);
            okto__tb_arg_float(&t, scale);
            okto__tb_arg_int(&t, causal != 0);
            okto__tb_arg_int(&t, acc);
            tile_range(&t, d.Tq);
            okto__tb_access(&t, &qp, OKTO__R);
            okto__tb_access(&t, &kp, OKTO__R);
            okto__tb_access(&t, &vp, OKTO__R);
            okto__tb_access(&t, &gp, OKTO__R);
            okto__tb_access(&t, &lp, OKTO__R);
            okto__tb_access(&t, &dp, OKTO__R);
            okto__tb_access(&t, &dqp, acc ? OKTO__RW : OKTO__W);
            okto__tb_cost(&t, 8.0 * pairs * frac,
                          bh * es * (double)d.D * (3.0 * (double)d.Tq + 2.0 * (double)d.Tk), key);
            okto__tb_part(&t, p, nparts);
            if ((s = okto__tb_commit(&t)) != OKTO_OK)
                break;
        }
        if (dk || dv) {
            part_of(&dkv, dim, i0, n, &dkp);
            part_of(&dvv, dim, i0, n, &dvp);
            okto__tb_init(&t, &r, OKTO__OP_ATTENTION_BWD_DKDV);
            if ((s = kernel(&t, q->dtype, d.D, "okto_attn_bwd_dkdv")) != OKTO_OK)
                break;
            arg_view(&t, &qp);
            arg_view(&t, &kp);
            arg_view(&t, &vp);
            arg_view(&t, &gp);
            okto__tb_arg_tensor(&t, &lp);
            okto__tb_arg_tensor(&t, &dp);
            arg_view(&t, &dkp);
            arg_view(&t, &dvp);
            okto__tb_arg_ulong(&t, B);
            okto__tb_arg_ulong(&t, H);
            okto__tb_arg_ulong(&t, d.Tq);
            okto__tb_arg_ulong(&t, d.Tk);
            okto__tb_arg_int(&t, (int)d.D);
            okto__tb_arg_float(&t, scale);
            okto__tb_arg_int(&t, causal != 0);
            okto__tb_arg_int(&t, acc);
            tile_range(&t, d.Tk);
            okto__tb_access(&t, &qp, OKTO__R);
            okto__tb_access(&t, &kp, OKTO__R);
            okto__tb_access(&t, &vp, OKTO__R);
            okto__tb_access(&t, &gp, OKTO__R);
            okto__tb_access(&t, &lp, OKTO__R);
            okto__tb_access(&t, &dp, OKTO__R);
            /* a scratch output (dk or dv not asked for) is written whole, accumulated or not */
            okto__tb_access(&t, &dkp, acc && dk ? OKTO__RW : OKTO__W);
            okto__tb_access(&t, &dvp, acc && dv ? OKTO__RW : OKTO__W);
            okto__tb_cost(&t, 10.0 * pairs * frac,
                          bh * es * (double)d.D * (2.0 * (double)d.Tq + 4.0 * (double)d.Tk), key);
            okto__tb_part(&t, p, nparts);
            if ((s = okto__tb_commit(&t)) != OKTO_OK)
                break;
        }
    }
    if (s == OKTO_OK && dq)
        s = output_end(&r, dq, &dqv);
    if (s == OKTO_OK && dk)
        s = output_end(&r, dk, &dkv);
    if (s == OKTO_OK && dv)
        s = output_end(&r, dv, &dvv);
    return okto__rec_end(&r, s);
}
