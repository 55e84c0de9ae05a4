/* lib/nn/layers.c: the layers. A layer is declared once (its parameters go into the nn) and
 * recorded any number of times (each forward's activations are the graph's own tensors, so
 * micro-batches of one step do not share buffers and overlap on the lanes). Forwards are
 * compositions of public ops, so okto_backward differentiates them through the ops' rules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

/* ---- views ----------------------------------------------------------------------------------- */
/* A value view of t's storage: offset off (elements, from t's first), rank, shape, strides. */
static okto_tensor view(const okto_tensor *t, size_t off, int rank, const size_t *shape,
                        const int64_t *stride)
{
    okto_tensor v = *t;
    v.heap = 0;
    v.offset = t->offset + off;
    v.rank = rank;
    for (int i = 0; i < OKTO_MAX_RANK; i++) {
        v.shape[i] = i < rank ? shape[i] : 1;
        v.stride[i] = i < rank ? stride[i] : 0;
    }
    return v;
}

/* t (contiguous) seen with another shape of as many elements. */
static okto_tensor reshaped(const okto_tensor *t, int rank, const size_t *shape)
{
    int64_t st[OKTO_MAX_RANK], s = 1;
    for (int i = rank - 1; i >= 0; i--)
        st[i] = s, s *= (int64_t)shape[i];
    return view(t, 0, rank, shape, st);
}

static const char *dname(const okto_tensor *t)
{
    return OKTO__DESC(t);
}

/* ---- declarations ---------------------------------------------------------------------------- */
static okto_status declare(okto_nn *nn, const char *fn, okto_layer *l, int slot, const char *what,
                           int rank, const size_t *shape, okto_init init, float scale,
                           size_t fan_in, size_t fan_out, int decay)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", l->name, what);
    return okto__nn_declare(nn, fn, name, rank, shape, init, scale, fan_in, fan_out, decay,
                            &l->p[slot]);
}

static okto_status check_act(okto_nn *nn, const char *fn, int act)
{
    if (act != OKTO_ACT_NONE && (act < 0 || act >= OKTO_MAP_COUNT))
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "%s: act %d is neither OKTO_ACT_NONE nor an okto_map_op", fn, act);
    return OKTO_OK;
}

okto_status okto_nn_linear(okto_nn *nn, const char *name, size_t in, size_t out, int bias, int act,
                           okto_layer **layer)
{
    static const char *fn = "okto_nn_linear";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (!in || !out)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: in %zu, out %zu: both must be >= 1", fn, in,
                          out);
    okto_status s = check_act(nn, fn, act);
    int np0 = nn->np;
    okto_layer *l = NULL;
    if (s == OKTO_OK)
        s = okto__nn_layer(nn, fn, name, OKTO__L_LINEAR, &l);
    if (s == OKTO_OK) {
        l->in = in, l->out = out, l->bias = bias != 0, l->act = act;
        s = declare(nn, fn, l, 0, "weight", 2, (size_t[]){in, out}, OKTO_INIT_UNIFORM_FAN_IN, 0,
                    in, out, 1);
    }
    if (s == OKTO_OK && bias)
        s = declare(nn, fn, l, 1, "bias", 1, (size_t[]){out}, OKTO_INIT_UNIFORM_FAN_IN, 0, in,
                    out, 0);
    if (s != OKTO_OK) {
        okto__nn_unlayer(nn, l, np0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

okto_status okto_nn_layernorm(okto_nn *nn, const char *name, size_t dim, okto_layer **layer)
{
    static const char *fn = "okto_nn_layernorm";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (!dim)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: dim must be >= 1", fn);
    int np0 = nn->np;
    okto_layer *l = NULL;
    okto_status s = okto__nn_layer(nn, fn, name, OKTO__L_LAYERNORM, &l);
    if (s == OKTO_OK) {
        l->in = l->out = dim;
        s = declare(nn, fn, l, 0, "weight", 1, &dim, OKTO_INIT_ONES, 0, dim, dim, 0);
    }
    if (s == OKTO_OK)
        s = declare(nn, fn, l, 1, "bias", 1, &dim, OKTO_INIT_ZEROS, 0, dim, dim, 0);
    if (s != OKTO_OK) {
        okto__nn_unlayer(nn, l, np0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

okto_status okto_nn_embedding(okto_nn *nn, const char *name, size_t vocab, size_t dim,
                              okto_layer **layer)
{
    static const char *fn = "okto_nn_embedding";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (!vocab || !dim)
        return okto__fail(nn->ctx, OKTO_EINVAL, "%s: vocab %zu, dim %zu: both must be >= 1", fn,
                          vocab, dim);
    int np0 = nn->np;
    okto_layer *l = NULL;
    okto_status s = okto__nn_layer(nn, fn, name, OKTO__L_EMBEDDING, &l);
    if (s == OKTO_OK) {
        l->in = vocab, l->out = dim;
        s = declare(nn, fn, l, 0, "weight", 2, (size_t[]){vocab, dim}, OKTO_INIT_NORMAL, 0.02f,
                    vocab, dim, 1);
    }
    if (s != OKTO_OK) {
        okto__nn_unlayer(nn, l, np0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

okto_status okto_nn_conv_block(okto_nn *nn, const char *name, size_t cin, size_t cout, int k,
                               int pad, int act, int pool, okto_layer **layer)
{
    static const char *fn = "okto_nn_conv_block";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (!cin || !cout || k < 1 || pad < 0 || pool < 1)
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "%s: cin %zu, cout %zu, k %d, pad %d, pool %d: channels and k >= 1, "
                          "pad >= 0, pool >= 1",
                          fn, cin, cout, k, pad, pool);
    okto_status s = check_act(nn, fn, act);
    int np0 = nn->np;
    okto_layer *l = NULL;
    if (s == OKTO_OK)
        s = okto__nn_layer(nn, fn, name, OKTO__L_CONV, &l);
    size_t fan_in = cin * (size_t)k * (size_t)k;
    if (s == OKTO_OK) {
        l->in = cin, l->out = cout, l->k = k, l->pad = pad, l->act = act, l->pool = pool;
        s = declare(nn, fn, l, 0, "weight", 4, (size_t[]){cout, cin, (size_t)k, (size_t)k},
                    OKTO_INIT_UNIFORM_FAN_IN, 0, fan_in, cout * (size_t)k * (size_t)k, 1);
    }
    if (s == OKTO_OK)
        s = declare(nn, fn, l, 1, "bias", 1, &cout, OKTO_INIT_UNIFORM_FAN_IN, 0, fan_in, cout, 0);
    if (s != OKTO_OK) {
        okto__nn_unlayer(nn, l, np0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

/* A block's sub-layers are layers of the nn too; a failure removes them all. */
static okto_status sub(okto_status s, okto_layer *block, int i, okto_layer *l)
{
    if (s == OKTO_OK)
        block->sub[i] = l;
    return s;
}

static void unblock(okto_nn *nn, okto_layer *block, int np0, int nl0)
{
    while (nn->nl > nl0 && nn->layers[nn->nl - 1] != block)
        okto__nn_unlayer(nn, nn->layers[nn->nl - 1], np0);
    okto__nn_unlayer(nn, block, np0);
}

okto_status okto_nn_mlp_block(okto_nn *nn, const char *name, size_t dim, size_t hidden, int act,
                              unsigned flags, okto_layer **layer)
{
    static const char *fn = "okto_nn_mlp_block";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (!dim || !hidden || (flags & ~(unsigned)(OKTO_NN_RESIDUAL | OKTO_NN_PRENORM)))
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "%s: dim %zu, hidden %zu, flags 0x%x: sizes >= 1, flags of "
                          "OKTO_NN_RESIDUAL and OKTO_NN_PRENORM",
                          fn, dim, hidden, flags);
    int np0 = nn->np, nl0 = nn->nl;
    okto_layer *l = NULL, *x = NULL;
    char n[160];
    okto_status s = okto__nn_layer(nn, fn, name, OKTO__L_MLP, &l);
    if (s == OKTO_OK) {
        l->in = l->out = dim, l->flags = flags;
        if (flags & OKTO_NN_PRENORM) {
            snprintf(n, sizeof n, "%s.ln", name);
            s = okto_nn_layernorm(nn, n, dim, &x);
            s = sub(s, l, 0, x);
        }
    }
    if (s == OKTO_OK) {
        snprintf(n, sizeof n, "%s.fc", name);
        s = okto_nn_linear(nn, n, dim, hidden, 1, act, &x);
        s = sub(s, l, 1, x);
    }
    if (s == OKTO_OK) {
        snprintf(n, sizeof n, "%s.proj", name);
        s = okto_nn_linear(nn, n, hidden, dim, 1, OKTO_ACT_NONE, &x);
        s = sub(s, l, 2, x);
    }
    if (s != OKTO_OK && l) {
        unblock(nn, l, np0, nl0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

okto_status okto_nn_attention_block(okto_nn *nn, const char *name, size_t dim, int heads,
                                    int causal, okto_layer **layer)
{
    static const char *fn = "okto_nn_attention_block";
    if (!nn)
        return okto__fail(NULL, OKTO_EINVAL, "%s: nn must not be NULL", fn);
    if (heads < 1 || !dim || dim % (size_t)heads || dim / (size_t)heads > 128)
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "%s: dim %zu, heads %d: heads >= 1 must divide dim, into heads of at "
                          "most 128",
                          fn, dim, heads);
    int np0 = nn->np, nl0 = nn->nl;
    okto_layer *l = NULL, *x = NULL;
    char n[160];
    okto_status s = okto__nn_layer(nn, fn, name, OKTO__L_ATTN, &l);
    if (s == OKTO_OK) {
        l->in = l->out = dim, l->heads = heads, l->causal = causal != 0;
        snprintf(n, sizeof n, "%s.ln", name);
        s = okto_nn_layernorm(nn, n, dim, &x);
        s = sub(s, l, 0, x);
    }
    if (s == OKTO_OK) {
        snprintf(n, sizeof n, "%s.qkv", name);
        s = okto_nn_linear(nn, n, dim, 3 * dim, 1, OKTO_ACT_NONE, &x);
        s = sub(s, l, 1, x);
    }
    if (s == OKTO_OK) {
        snprintf(n, sizeof n, "%s.proj", name);
        s = okto_nn_linear(nn, n, dim, dim, 1, OKTO_ACT_NONE, &x);
        s = sub(s, l, 2, x);
    }
    if (s != OKTO_OK && l) {
        unblock(nn, l, np0, nl0);
        l = NULL;
    }
    if (layer)
        *layer = l;
    return s;
}

/* ---- forwards -------------------------------------------------------------------------------- */
static okto_status newt(okto_graph *g, okto_dtype dt, int rank, const size_t *shape,
                        okto_tensor **out)
{
    return okto_graph_tensor(g, dt, rank, shape, out);
}

static okto_status check_last(okto_layer *l, const okto_tensor *x, size_t want)
{
    if (x->shape[x->rank - 1] != want || x->dtype != l->nn->dtype) {
        char w[64];
        snprintf(w, sizeof w, "[..., %zu] of %s", want, okto_dtype_name(l->nn->dtype));
        return okto__fail(l->nn->ctx, OKTO_EINVAL,
                          "okto_layer_forward: layer %s takes %s; x is %s", l->name, w, dname(x));
    }
    return OKTO_OK;
}

static okto_status linear_fwd(okto_graph *g, okto_layer *l, const okto_tensor *x, okto_tensor **y)
{
    okto_status s = check_last(l, x, l->in);
    if (s != OKTO_OK)
        return s;
    okto_nn *nn = l->nn;
    size_t shape[OKTO_MAX_RANK];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->rank - 1] = l->out;
    okto_tensor *out, *xc = NULL;
    if ((s = newt(g, nn->dtype, x->rank, shape, &out)) != OKTO_OK)
        return s;
    okto_tensor x2, y2;
    if (!okto__view_2d(x, &x2)) { /* rows that do not merge: a contiguous copy */
        if ((s = newt(g, x->dtype, x->rank, x->shape, &xc)) == OKTO_OK)
            s = okto_copy(g, xc, x);
        if (s != OKTO_OK)
            return s;
        okto__view_2d(xc, &x2);
    }
    okto__view_2d(out, &y2);
    s = okto_matmul(g, &y2, &x2, okto__nn_p(nn, l->p[0]), 0);
    if (s == OKTO_OK && l->bias)
        s = okto_zip(g, &y2, &y2, okto__nn_p(nn, l->p[1]), OKTO_ZIP_ADD);
    if (s == OKTO_OK && l->act != OKTO_ACT_NONE) {
        okto_tensor *z;
        if ((s = newt(g, nn->dtype, out->rank, out->shape, &z)) == OKTO_OK &&
            (s = okto_map(g, z, out, (okto_map_op)l->act)) == OKTO_OK)
            out = z;
    }
    if (s == OKTO_OK)
        *y = out;
    return s;
}

static okto_status layernorm_fwd(okto_graph *g, okto_layer *l, const okto_tensor *x,
                                 okto_tensor **y)
{
    okto_status s = check_last(l, x, l->in);
    if (s == OKTO_OK)
        s = newt(g, x->dtype, x->rank, x->shape, y);
    if (s == OKTO_OK)
        s = okto_layernorm(g, *y, NULL, NULL, x, okto__nn_p(l->nn, l->p[0]),
                           okto__nn_p(l->nn, l->p[1]), 1e-5f);
    return s;
}

static okto_status embedding_fwd(okto_graph *g, okto_layer *l, const okto_tensor *ids,
                                 okto_tensor **y)
{
    if (ids->dtype != OKTO_I32 || ids->rank >= OKTO_MAX_RANK)
        return okto__fail(l->nn->ctx, OKTO_EINVAL,
                          "okto_layer_forward: layer %s takes i32 ids of rank 1 to 3; ids is %s",
                          l->name, dname(ids));
    size_t shape[OKTO_MAX_RANK];
    memcpy(shape, ids->shape, sizeof shape);
    shape[ids->rank] = l->out;
    okto_status s = newt(g, l->nn->dtype, ids->rank + 1, shape, y);
    if (s == OKTO_OK)
        s = okto_embedding(g, *y, okto__nn_p(l->nn, l->p[0]), ids);
    return s;
}

static okto_status conv_fwd(okto_graph *g, okto_layer *l, const okto_tensor *x, okto_tensor **y)
{
    okto_nn *nn = l->nn;
    if (x->rank != 4 || x->shape[1] != l->in || x->dtype != nn->dtype)
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "okto_layer_forward: layer %s takes %s[N, %zu, H, W]; x is %s", l->name,
                          okto_dtype_name(nn->dtype), l->in, dname(x));
    long oh = (long)x->shape[2] + 2L * l->pad - l->k + 1, ow = (long)x->shape[3] + 2L * l->pad - l->k + 1;
    if (oh < 1 || ow < 1 || oh < l->pool || ow < l->pool)
        return okto__fail(nn->ctx, OKTO_EINVAL,
                          "okto_layer_forward: layer %s: x is %s, too small for a %dx%d window "
                          "with padding %d and %dx%d pooling",
                          l->name, dname(x), l->k, l->k, l->pad, l->pool, l->pool);
    okto_tensor *c, *a;
    size_t shape[4] = {x->shape[0], l->out, (size_t)oh, (size_t)ow};
    okto_status s = newt(g, nn->dtype, 4, shape, &c);
    if (s == OKTO_OK)
        s = okto_conv2d(g, c, x, okto__nn_p(nn, l->p[0]), okto__nn_p(nn, l->p[1]), 1, 1, l->pad,
                        l->pad, 1, 1);
    a = c;
    if (s == OKTO_OK && l->act != OKTO_ACT_NONE &&
        (s = newt(g, nn->dtype, 4, shape, &a)) == OKTO_OK)
        s = okto_map(g, a, c, (okto_map_op)l->act);
    if (s == OKTO_OK && l->pool > 1) {
        okto_tensor *p;
        size_t ps[4] = {shape[0], shape[1], shape[2] / (size_t)l->pool,
                        shape[3] / (size_t)l->pool};
        if ((s = newt(g, nn->dtype, 4, ps, &p)) == OKTO_OK)
            s = okto_max_pool2d(g, p, NULL, a, l->pool, l->pool, l->pool, l->pool, 0, 0);
        a = p;
    }
    if (s == OKTO_OK)
        *y = a;
    return s;
}

static okto_status mlp_fwd(okto_graph *g, okto_layer *l, const okto_tensor *x, okto_tensor **y)
{
    okto_tensor *h = (okto_tensor *)x, *o;
    okto_status s = check_last(l, x, l->in);
    if (s == OKTO_OK && (l->flags & OKTO_NN_PRENORM))
        s = okto_layer_forward(g, l->sub[0], x, &h);
    if (s == OKTO_OK)
        s = okto_layer_forward(g, l->sub[1], h, &h);
    if (s == OKTO_OK)
        s = okto_layer_forward(g, l->sub[2], h, &o);
    if (s == OKTO_OK && (l->flags & OKTO_NN_RESIDUAL))
        s = okto_zip(g, o, o, x, OKTO_ZIP_ADD);
    if (s == OKTO_OK)
        *y = o;
    return s;
}

/* Attention composed of ops (batched matmuls, the mask, softmax) or the fused kernels
 * (okto_attention). With a host lane the matmuls run on OpenBLAS, and for short contexts the
 * B H T T scores are small: okto-train's gpt step (T 64, batch 32, 2 blocks, 4 heads) took
 * 0.86-0.97x the fused kernels' time on the 2-core PoCL machine (40-step runs, interleaved:
 * 159/184, 170/174, 164/190 ms; under heavier load 0.65-0.91x). Without a host lane CLBlast's
 * small batched GEMMs would carry it, where the fused kernels stay. OKTO_ATTENTION=fused or
 * =matmul overrides the choice. */
static int attention_composed(okto_layer *l, size_t T)
{
    okto_nn *nn = l->nn;
    const char *e = getenv("OKTO_ATTENTION");
    int want = e && strcmp(e, "matmul") == 0  ? 1
               : e && strcmp(e, "fused") == 0 ? 0
                                              : T <= 256 && okto__ctx_host_lane(nn->ctx) > 0;
    if (!want || !l->causal)
        return want;
    if (!nn->mask) { /* once per nn, as long as the model's context (or T, the longer) */
        size_t n = nn->model.set && nn->model.cfg.context > T ? nn->model.cfg.context : T;
        float *host = malloc(n * n * sizeof *host);
        okto_tensor *m = NULL;
        if (!host)
            return 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < n; j++)
                host[i * n + j] = j <= i ? 0.0f : -1e30f;
        if (okto_tensor_create(nn->ctx, nn->dtype, 2, (size_t[]){n, n}, &m) == OKTO_OK &&
            okto_tensor_write_f32(m, host) == OKTO_OK) {
            nn->mask = m;
            nn->mask_t = n;
        } else {
            okto_tensor_destroy(m);
        }
        free(host);
    }
    return nn->mask && T <= nn->mask_t; /* else (a longer T than the mask) the fused kernels */
}

/* ov = softmax(q k^T / sqrt(D) + mask) v over [B, H, T, D] views: q, k, v copied to
 * contiguous heads first (the heads of the fused projection do not merge into one batch
 * stride, and a batch that does not merge would cost one GEMM call per sequence). */
static okto_status attention_matmuls(okto_graph *g, okto_layer *l, okto_tensor *ov,
                                     const okto_tensor *q, const okto_tensor *k,
                                     const okto_tensor *v)
{
    okto_nn *nn = l->nn;
    size_t T = q->shape[2], D = q->shape[3];
    size_t ss[4] = {q->shape[0], q->shape[1], T, T};
    okto_tensor *qc, *kc, *vc, *sc, *pc, *oc;
    okto_status s = newt(g, nn->dtype, 4, q->shape, &qc);
    if (s == OKTO_OK && (s = newt(g, nn->dtype, 4, q->shape, &kc)) == OKTO_OK &&
        (s = newt(g, nn->dtype, 4, q->shape, &vc)) == OKTO_OK &&
        (s = newt(g, nn->dtype, 4, ss, &sc)) == OKTO_OK &&
        (s = newt(g, nn->dtype, 4, ss, &pc)) == OKTO_OK)
        s = newt(g, nn->dtype, 4, q->shape, &oc);
    if (s == OKTO_OK && (s = okto_copy(g, qc, q)) == OKTO_OK &&
        (s = okto_copy(g, kc, k)) == OKTO_OK)
        s = okto_copy(g, vc, v);
    if (s == OKTO_OK)
        s = okto_gemm(g, sc, 1.0f / sqrtf((float)D), qc, kc, 0.0f, OKTO_TRANS_B);
    if (s == OKTO_OK && l->causal) {
        okto_tensor m = view(nn->mask, 0, 2, (size_t[]){T, T}, (int64_t[]){(int64_t)nn->mask_t, 1});
        s = okto_zip(g, sc, sc, &m, OKTO_ZIP_ADD);
    }
    if (s == OKTO_OK)
        s = okto_softmax(g, pc, sc);
    if (s == OKTO_OK)
        s = okto_matmul(g, oc, pc, vc, 0);
    if (s == OKTO_OK)
        s = okto_copy(g, ov, oc);
    return s;
}

/* x [B, T, C] (or [T, C]): qkv = x W + b as [B, T, 3 H, D]; q, k, v its three thirds seen as
 * [B, H, T, D] (strided views, no copy); the attention writes its output through a [B, H, T, D]
 * view of a [B, T, C] tensor, which the projection then reads as rows. */
static okto_status attn_fwd(okto_graph *g, okto_layer *l, const okto_tensor *x, okto_tensor **y)
{
    okto_status s = check_last(l, x, l->in);
    if (s == OKTO_OK && x->rank != 2 && x->rank != 3)
        s = okto__fail(l->nn->ctx, OKTO_EINVAL,
                       "okto_layer_forward: layer %s takes [B, T, %zu] or [T, %zu]; x is %s",
                       l->name, l->in, l->in, dname(x));
    if (s != OKTO_OK)
        return s;
    size_t B = x->rank == 3 ? x->shape[0] : 1, T = x->shape[x->rank - 2], C = l->in;
    size_t H = (size_t)l->heads, D = C / H;
    okto_tensor *h, *qkv, *o, *p;
    s = okto_layer_forward(g, l->sub[0], x, &h);
    if (s == OKTO_OK)
        s = okto_layer_forward(g, l->sub[1], h, &qkv);
    if (s == OKTO_OK)
        s = newt(g, x->dtype, x->rank, x->shape, &o);
    if (s != OKTO_OK)
        return s;
    size_t hs[4] = {B, H, T, D};
    int64_t qs[4] = {(int64_t)(T * 3 * C), (int64_t)D, (int64_t)(3 * C), 1};
    int64_t os[4] = {(int64_t)(T * C), (int64_t)D, (int64_t)C, 1};
    okto_tensor q = view(qkv, 0, 4, hs, qs), k = view(qkv, C, 4, hs, qs);
    okto_tensor v = view(qkv, 2 * C, 4, hs, qs), ov = view(o, 0, 4, hs, os);
    if (attention_composed(l, T))
        s = attention_matmuls(g, l, &ov, &q, &k, &v);
    else
        s = okto_attention(g, &ov, NULL, &q, &k, &v, 0.0f, l->causal);
    if (s == OKTO_OK)
        s = okto_layer_forward(g, l->sub[2], o, &p);
    if (s == OKTO_OK)
        s = okto_zip(g, p, p, x, OKTO_ZIP_ADD);
    if (s == OKTO_OK)
        *y = p;
    return s;
}

okto_status okto_layer_forward(okto_graph *g, okto_layer *l, const okto_tensor *x, okto_tensor **y)
{
    if (!y)
        return okto__fail(l ? l->nn->ctx : NULL, OKTO_EINVAL,
                          "okto_layer_forward: y must not be NULL");
    if (!g || !l || !x) {
        *y = NULL;
        return okto__fail(l ? l->nn->ctx : NULL, OKTO_EINVAL,
                          "okto_layer_forward: g, layer and x must not be NULL");
    }
    okto_status s = l->nn->allocated ? OKTO_OK : okto_nn_allocate(l->nn);
    okto_tensor *out = NULL; /* *y may be x's own pointer: set last */
    if (s == OKTO_OK) {
        switch (l->kind) {
        case OKTO__L_LINEAR: s = linear_fwd(g, l, x, &out); break;
        case OKTO__L_LAYERNORM: s = layernorm_fwd(g, l, x, &out); break;
        case OKTO__L_EMBEDDING: s = embedding_fwd(g, l, x, &out); break;
        case OKTO__L_CONV: s = conv_fwd(g, l, x, &out); break;
        case OKTO__L_MLP: s = mlp_fwd(g, l, x, &out); break;
        case OKTO__L_ATTN: s = attn_fwd(g, l, x, &out); break;
        default:
            s = okto__fail(l->nn->ctx, OKTO_ESTATE, "okto_layer_forward: layer %s has kind %d",
                           l->name, l->kind);
        }
    }
    *y = s == OKTO_OK ? out : NULL;
    return s;
}

okto_tensor okto__nn_reshaped(const okto_tensor *t, int rank, const size_t *shape)
{
    return reshaped(t, rank, shape);
}
