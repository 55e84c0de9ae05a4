/* tools/train/refmodel.c: the models of lib/nn/models.c in double precision, forward and
 * backward by hand, from the double references of tests/ref (layernorm, attention, conv,
 * pooling, embedding, cross-entropy). Written for clarity, not speed: it checks one step. */
#include "refmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_attention.h"
#include "ref_conv.h"
#include "ref_embed.h"
#include "ref_norm.h"
#include "ref_pool.h"
#include "ref_xent.h"

#define IGNORE_NONE (-2147483647 - 1)
#define LN_EPS 1e-5

/* ---- building blocks ------------------------------------------------------------------------- */
/* c (m x n) (+)= op(a) op(b); a is m x k (or k x m transposed), b k x n (or n x k) */
static void mm(const double *a, const double *b, double *c, size_t m, size_t k, size_t n, int ta,
               int tb, int acc)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = acc ? c[i * n + j] : 0;
            for (size_t p = 0; p < k; p++)
                s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = s;
        }
}

/* y [rows, out] = x [rows, in] W [in, out] + b */
static void lin_fwd(const double *x, const double *w, const double *b, double *y, size_t rows,
                    size_t in, size_t out)
{
    mm(x, w, y, rows, in, out, 0, 0, 0);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < out; o++)
            y[r * out + o] += b[o];
}

/* dW += x^T dy, db += sum dy, dx = dy W^T (dx may be NULL) */
static void lin_bwd(const double *x, const double *w, const double *dy, double *dw, double *db,
                    double *dx, size_t rows, size_t in, size_t out)
{
    mm(x, dy, dw, in, rows, out, 1, 0, 1);
    for (size_t r = 0; r < rows; r++)
        for (size_t o = 0; o < out; o++)
            db[o] += dy[r * out + o];
    if (dx)
        mm(dy, w, dx, rows, out, in, 0, 1, 0);
}

static double gelu(double x)
{
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static double gelu_grad(double x)
{
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}

static double *zeros(size_t n)
{
    return calloc(n ? n : 1, sizeof(double));
}

/* ---- parameters ------------------------------------------------------------------------------ */
int otu_ref_params(const otu_ref_config *c, size_t *numel)
{
    int n = 0;
#define P(x) (numel ? (void)(numel[n] = (x)) : (void)0, n++)
    if (c->kind == OTU_REF_MLP) {
        size_t in = c->features;
        for (int i = 0; i < c->layers; i++) {
            P(in * c->hidden);
            P(c->hidden);
            in = c->hidden;
        }
        P(in * c->classes);
        P(c->classes);
    } else if (c->kind == OTU_REF_CNN) {
        size_t ch = c->channels, h = c->height, w = c->width;
        for (int i = 0; i < c->layers; i++) {
            size_t out = c->hidden << i;
            P(out * ch * 9);
            P(out);
            ch = out, h /= 2, w /= 2;
        }
        P(ch * h * w * c->classes);
        P(c->classes);
    } else {
        size_t C = c->hidden;
        P(c->classes * C);
        P(c->context * C);
        for (int i = 0; i < c->layers; i++) {
            P(C), P(C), P(C * 3 * C), P(3 * C), P(C * C), P(C);
            P(C), P(C), P(C * 4 * C), P(4 * C), P(4 * C * C), P(C);
        }
        P(C), P(C);
    }
#undef P
    return n;
}

/* ---- mlp ------------------------------------------------------------------------------------- */
static double mlp_step(const otu_ref_config *c, const double *const *p, double *const *g,
                       const float *x, const int32_t *labels, size_t B)
{
    int L = c->layers;
    size_t H = c->hidden, K = c->classes;
    double **h = calloc((size_t)L + 1, sizeof *h), **z = calloc((size_t)L, sizeof *z);
    double *logits = zeros(B * K), *rowloss = zeros(B), count, loss;
    h[0] = zeros(B * c->features);
    for (size_t i = 0; i < B * c->features; i++)
        h[0][i] = x[i];
    size_t in = c->features;
    for (int l = 0; l < L; l++) {
        z[l] = zeros(B * H);
        h[l + 1] = zeros(B * H);
        lin_fwd(h[l], p[2 * l], p[2 * l + 1], z[l], B, in, H);
        for (size_t i = 0; i < B * H; i++)
            h[l + 1][i] = z[l][i] > 0 ? z[l][i] : 0;
        in = H;
    }
    lin_fwd(h[L], p[2 * L], p[2 * L + 1], logits, B, in, K);
    loss = ref_xent_fwd(logits, labels, B, K, IGNORE_NONE, rowloss, &count);
    double *d = zeros(B * K), *dh = zeros(B * (H > K ? H : K) + B * c->features);
    ref_xent_bwd(logits, labels, B, K, IGNORE_NONE, 1.0, d);
    lin_bwd(h[L], p[2 * L], d, g[2 * L], g[2 * L + 1], dh, B, in, K);
    for (int l = L - 1; l >= 0; l--) {
        size_t lin = l ? H : c->features;
        for (size_t i = 0; i < B * H; i++)
            dh[i] = z[l][i] > 0 ? dh[i] : 0;
        double *dz = zeros(B * H);
        memcpy(dz, dh, B * H * sizeof *dz);
        lin_bwd(h[l], p[2 * l], dz, g[2 * l], g[2 * l + 1], l ? dh : NULL, B, lin, H);
        free(dz);
    }
    for (int l = 0; l <= L; l++)
        free(h[l]);
    for (int l = 0; l < L; l++)
        free(z[l]);
    free(h), free(z), free(logits), free(rowloss), free(d), free(dh);
    return loss;
}

/* ---- cnn ------------------------------------------------------------------------------------- */
static double cnn_step(const otu_ref_config *c, const double *const *p, double *const *g,
                       const float *x, const int32_t *labels, size_t B)
{
    int L = c->layers;
    ref_conv_geom cg[32];
    ref_pool_geom pg[32];
    double *in[33], *y[32], *a[32];
    int *am[32];
    size_t ch = c->channels, H = c->height, W = c->width, K = c->classes;
    in[0] = zeros(B * ch * H * W);
    for (size_t i = 0; i < B * ch * H * W; i++)
        in[0][i] = x[i];
    for (int l = 0; l < L; l++) {
        size_t out = c->hidden << l;
        cg[l] = (ref_conv_geom){(int)B, (int)ch, (int)H, (int)W, (int)out, 3, 3, 1, 1, 1, 1,
                                1, 1, (int)H, (int)W};
        pg[l] = (ref_pool_geom){(int)(B * out), (int)H, (int)W, 2, 2, 2, 2, 0, 0, 1, 1,
                                (int)(H / 2), (int)(W / 2)};
        size_t n = B * out * H * W;
        y[l] = zeros(n), a[l] = zeros(n);
        ref_conv2d_forward(&cg[l], in[l], p[2 * l], p[2 * l + 1], y[l]);
        for (size_t i = 0; i < n; i++)
            a[l][i] = y[l][i] > 0 ? y[l][i] : 0;
        in[l + 1] = zeros(B * out * (H / 2) * (W / 2));
        am[l] = calloc(B * out * (H / 2) * (W / 2), sizeof *am[l]);
        ref_maxpool2d_forward(&pg[l], a[l], in[l + 1], am[l]);
        ch = out, H /= 2, W /= 2;
    }
    size_t F = ch * H * W;
    double *logits = zeros(B * K), *rowloss = zeros(B), count;
    lin_fwd(in[L], p[2 * L], p[2 * L + 1], logits, B, F, K);
    double loss = ref_xent_fwd(logits, labels, B, K, IGNORE_NONE, rowloss, &count);
    double *d = zeros(B * K), *dx = zeros(B * F);
    ref_xent_bwd(logits, labels, B, K, IGNORE_NONE, 1.0, d);
    lin_bwd(in[L], p[2 * L], d, g[2 * L], g[2 * L + 1], dx, B, F, K);
    for (int l = L - 1; l >= 0; l--) {
        size_t n = (size_t)cg[l].N * (size_t)cg[l].Cout * (size_t)cg[l].H * (size_t)cg[l].W;
        double *da = zeros(n), *dw = zeros((size_t)cg[l].Cout * (size_t)cg[l].C * 9);
        double *db = zeros((size_t)cg[l].Cout);
        double *dxi = zeros((size_t)cg[l].N * (size_t)cg[l].C * (size_t)cg[l].H * (size_t)cg[l].W);
        ref_maxpool2d_backward(&pg[l], dx, am[l], da);
        for (size_t i = 0; i < n; i++)
            da[i] = y[l][i] > 0 ? da[i] : 0;
        ref_conv2d_backward(&cg[l], in[l], p[2 * l], da, dxi, dw, db);
        for (size_t i = 0; i < (size_t)cg[l].Cout * (size_t)cg[l].C * 9; i++)
            g[2 * l][i] += dw[i];
        for (int i = 0; i < cg[l].Cout; i++)
            g[2 * l + 1][i] += db[i];
        free(dx);
        dx = dxi;
        free(da), free(dw), free(db);
    }
    for (int l = 0; l < L; l++)
        free(y[l]), free(a[l]), free(am[l]), free(in[l + 1]);
    free(in[0]), free(logits), free(rowloss), free(d), free(dx);
    return loss;
}

/* ---- gpt ------------------------------------------------------------------------------------- */
typedef struct gblock {
    double *x0, *h1, *mean1, *rstd1, *qkv, *q, *k, *v, *o, *lse, *oc, *x1;
    double *h2, *mean2, *rstd2, *f, *a;
} gblock;

static void ln_bwd_acc(const double *dy, const double *x, const double *w, double *dx, double *dw,
                       double *db, size_t rows, size_t cols)
{
    double *tw = zeros(cols), *tb = zeros(cols);
    ref_layernorm_bwd(dy, x, w, dx, tw, tb, rows, cols, LN_EPS);
    for (size_t c = 0; c < cols; c++)
        dw[c] += tw[c], db[c] += tb[c];
    free(tw), free(tb);
}

static double gpt_step(const otu_ref_config *c, const double *const *p, double *const *g,
                       const int32_t *ids, const int32_t *labels, size_t B, size_t T)
{
    size_t C = c->hidden, V = c->classes, R = B * T, NH = (size_t)c->heads, D = C / NH;
    int L = c->layers;
    double scale = 1.0 / sqrt((double)D);
    gblock *bl = calloc((size_t)L, sizeof *bl);
    double *x = zeros(R * C);
    ref_embed_fwd(p[0], ids, R, V, C, x);
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < C; j++)
            x[r * C + j] += p[1][(r % T) * C + j];
    for (int l = 0; l < L; l++) {
        gblock *b = &bl[l];
        const double *const *q = p + 2 + 12 * l;
        b->x0 = x;
        b->h1 = zeros(R * C), b->mean1 = zeros(R), b->rstd1 = zeros(R);
        ref_layernorm_fwd(x, q[0], q[1], b->h1, b->mean1, b->rstd1, R, C, LN_EPS);
        b->qkv = zeros(R * 3 * C);
        lin_fwd(b->h1, q[2], q[3], b->qkv, R, C, 3 * C);
        b->q = zeros(R * C), b->k = zeros(R * C), b->v = zeros(R * C);
        for (size_t bb = 0; bb < B; bb++) /* [B, T, 3, H, D] -> three [B, H, T, D] */
            for (size_t t = 0; t < T; t++)
                for (size_t h = 0; h < NH; h++)
                    for (size_t d = 0; d < D; d++) {
                        size_t src = (bb * T + t) * 3 * C + h * D + d;
                        size_t dst = ((bb * NH + h) * T + t) * D + d;
                        b->q[dst] = b->qkv[src], b->k[dst] = b->qkv[src + C];
                        b->v[dst] = b->qkv[src + 2 * C];
                    }
        b->o = zeros(R * C), b->lse = zeros(R * NH), b->oc = zeros(R * C);
        ref_attention_forward(b->q, b->k, b->v, b->o, b->lse, (int)B, (int)NH, (int)T, (int)T,
                              (int)D, scale, 1);
        for (size_t bb = 0; bb < B; bb++)
            for (size_t t = 0; t < T; t++)
                for (size_t h = 0; h < NH; h++)
                    for (size_t d = 0; d < D; d++)
                        b->oc[(bb * T + t) * C + h * D + d] = b->o[((bb * NH + h) * T + t) * D + d];
        b->x1 = zeros(R * C);
        lin_fwd(b->oc, q[4], q[5], b->x1, R, C, C);
        for (size_t i = 0; i < R * C; i++)
            b->x1[i] += x[i];
        b->h2 = zeros(R * C), b->mean2 = zeros(R), b->rstd2 = zeros(R);
        ref_layernorm_fwd(b->x1, q[6], q[7], b->h2, b->mean2, b->rstd2, R, C, LN_EPS);
        b->f = zeros(R * 4 * C), b->a = zeros(R * 4 * C);
        lin_fwd(b->h2, q[8], q[9], b->f, R, C, 4 * C);
        for (size_t i = 0; i < R * 4 * C; i++)
            b->a[i] = gelu(b->f[i]);
        x = zeros(R * C);
        lin_fwd(b->a, q[10], q[11], x, R, 4 * C, C);
        for (size_t i = 0; i < R * C; i++)
            x[i] += b->x1[i];
    }
    const double *wf = p[2 + 12 * L], *bf = p[3 + 12 * L];
    double *hf = zeros(R * C), *mf = zeros(R), *rf = zeros(R), *logits = zeros(R * V);
    ref_layernorm_fwd(x, wf, bf, hf, mf, rf, R, C, LN_EPS);
    mm(hf, p[0], logits, R, C, V, 0, 1, 0); /* tied: h tok^T */
    double *rowloss = zeros(R), count;
    double loss = ref_xent_fwd(logits, labels, R, V, IGNORE_NONE, rowloss, &count);
    /* backward */
    double *dl = zeros(R * V), *dh = zeros(R * C), *dx = zeros(R * C);
    ref_xent_bwd(logits, labels, R, V, IGNORE_NONE, 1.0, dl);
    mm(dl, hf, g[0], V, R, C, 1, 0, 1); /* dtok += dl^T h */
    mm(dl, p[0], dh, R, V, C, 0, 0, 0);
    ln_bwd_acc(dh, x, wf, dx, g[2 + 12 * L], g[3 + 12 * L], R, C);
    for (int l = L - 1; l >= 0; l--) {
        gblock *b = &bl[l];
        const double *const *q = p + 2 + 12 * l;
        double *const *gq = g + 2 + 12 * l;
        /* mlp: x = x1 + proj(gelu(fc(ln(x1)))) */
        double *da = zeros(R * 4 * C), *d2 = zeros(R * C), *dx1 = zeros(R * C);
        lin_bwd(b->a, q[10], dx, gq[10], gq[11], da, R, 4 * C, C);
        for (size_t i = 0; i < R * 4 * C; i++)
            da[i] *= gelu_grad(b->f[i]);
        lin_bwd(b->h2, q[8], da, gq[8], gq[9], d2, R, C, 4 * C);
        ln_bwd_acc(d2, b->x1, q[6], dx1, gq[6], gq[7], R, C);
        for (size_t i = 0; i < R * C; i++)
            dx1[i] += dx[i];
        /* attention: x1 = x0 + proj(attn(qkv(ln(x0)))) */
        double *doc = zeros(R * C), *dO = zeros(R * C), *dq = zeros(R * C), *dk = zeros(R * C);
        double *dv = zeros(R * C), *dqkv = zeros(R * 3 * C), *dh1 = zeros(R * C);
        double *dx0 = zeros(R * C);
        lin_bwd(b->oc, q[4], dx1, gq[4], gq[5], doc, R, C, C);
        for (size_t bb = 0; bb < B; bb++)
            for (size_t t = 0; t < T; t++)
                for (size_t h = 0; h < NH; h++)
                    for (size_t d = 0; d < D; d++)
                        dO[((bb * NH + h) * T + t) * D + d] = doc[(bb * T + t) * C + h * D + d];
        ref_attention_backward(b->q, b->k, b->v, dO, dq, dk, dv, (int)B, (int)NH, (int)T, (int)T,
                               (int)D, scale, 1);
        for (size_t bb = 0; bb < B; bb++)
            for (size_t t = 0; t < T; t++)
                for (size_t h = 0; h < NH; h++)
                    for (size_t d = 0; d < D; d++) {
                        size_t dst = (bb * T + t) * 3 * C + h * D + d;
                        size_t src = ((bb * NH + h) * T + t) * D + d;
                        dqkv[dst] = dq[src], dqkv[dst + C] = dk[src], dqkv[dst + 2 * C] = dv[src];
                    }
        lin_bwd(b->h1, q[2], dqkv, gq[2], gq[3], dh1, R, C, 3 * C);
        ln_bwd_acc(dh1, b->x0, q[0], dx0, gq[0], gq[1], R, C);
        for (size_t i = 0; i < R * C; i++)
            dx[i] = dx0[i] + dx1[i];
        free(da), free(d2), free(dx1), free(doc), free(dO), free(dq), free(dk), free(dv);
        free(dqkv), free(dh1), free(dx0);
    }
    /* embeddings: tok (added to the tied head's share) and pos */
    double *dt = zeros(V * C);
    ref_embed_bwd(dx, ids, R, V, C, -1, dt);
    for (size_t i = 0; i < V * C; i++)
        g[0][i] += dt[i];
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < C; j++)
            g[1][(r % T) * C + j] += dx[r * C + j];
    free(dt);
    for (int l = 0; l < L; l++) {
        gblock *b = &bl[l];
        double *f[] = {b->x0, b->h1, b->mean1, b->rstd1, b->qkv, b->q, b->k, b->v, b->o, b->lse,
                       b->oc, b->x1, b->h2, b->mean2, b->rstd2, b->f, b->a};
        for (size_t i = 0; i < sizeof f / sizeof *f; i++)
            free(f[i]);
    }
    free(bl), free(x), free(hf), free(mf), free(rf), free(logits), free(rowloss), free(dl);
    free(dh), free(dx);
    return loss;
}

double otu_ref_step(const otu_ref_config *c, const double *const *params, double *const *grads,
                    const float *x, const int32_t *ids, const int32_t *labels, size_t B, size_t T)
{
    size_t numel[512];
    int n = otu_ref_params(c, NULL);
    if (n > 512)
        return NAN;
    otu_ref_params(c, numel);
    for (int i = 0; i < n; i++)
        memset(grads[i], 0, numel[i] * sizeof(double));
    switch (c->kind) {
    case OTU_REF_MLP: return mlp_step(c, params, grads, x, labels, B);
    case OTU_REF_CNN: return cnn_step(c, params, grads, x, labels, B);
    default: return gpt_step(c, params, grads, ids, labels, B, T);
    }
}
