/* tests/test_autograd.c: okto_backward.
 *
 * The property test records random programs over the differentiable ops (maps, zips with
 * broadcasting and scalars, matmuls with transposed operands and views, reductions along an
 * axis, softmax, log-softmax, layer and RMS normalisation with and without parameters, dropout,
 * softmax cross-entropy and cross-entropy, copies, and the in-place forms of scale, axpy, add
 * and softmax), asks for the gradient of a random weighting of everything they computed, and checks
 * it against central differences of a double-precision host run of the same program: for every
 * parameter element, |okto - fd| <= 2e-3 (1 + |fd|).
 *
 * The rest: the gradient equals the hand-written MLP backward of okto-train; accumulation;
 * parameters the loss does not reach; storages shared by several parameters; buffers reused
 * for several values; replays; and every refusal, each with its message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h" /* the tape, for the no-tape-without-marks check */
#include "ref_dropout.h"
#include "ref_norm.h"
#include "ref_softmax_ext.h"
#include "testutil.h"

static okto_context *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = tu_context();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx);
    return 0;
}

/* ---- random programs -------------------------------------------------------------------------- */
enum {
    K_PARAM, K_INPUT, K_T, K_MAP, K_ZIP, K_ZIPS, K_MATMUL, K_REDUCE, K_SOFTMAX,
    K_SCALE_IP, K_ADD_IP, K_AXPY_IP, K_SOFTMAX_IP, K_COPY, K_POS, K_LN, K_RMS, K_LOGSM, K_DROP
};

#define MAXV 48
typedef struct step {
    int kind, a, b, op, ta, tb, axis, keep;
    float s;
    int w, bias; /* normalisations: parameter values (-1: none) */
} step;

typedef struct val {
    int rank;
    size_t shape[2];
    okto_tensor *t;
    double *h;
    int relu;  /* may hold ties (zeros of a relu): no max/min reduction over it */
    int used;
    float *init; /* params and inputs: their data */
} val;

typedef struct prog {
    int n;
    step st[MAXV];
    val v[MAXV];
    /* the loss: sum over sinks of sum(v * w), plus a cross-entropy term */
    int nterm, term[MAXV];
    float *w[MAXV];
    okto_tensor *seed; /* dropout's: {11, 22} */
    int xent; /* value index, or -1 */
    int xent_kind; /* 0: okto_softmax_xent, 1: okto_cross_entropy */
    int *labels;
} prog;

static size_t numel(const val *v)
{
    return v->rank == 1 ? v->shape[0] : v->shape[0] * v->shape[1];
}

static size_t dimo(const val *v, int d) /* dimension d of 2, aligned at the end */
{
    return v->rank == 2 ? v->shape[d] : d == 0 ? 1 : v->shape[0];
}

static double at(const val *v, const double *h, size_t i, size_t j) /* broadcast read */
{
    size_t r = dimo(v, 0), c = dimo(v, 1);
    return h[(r == 1 ? 0 : i) * c + (c == 1 ? 0 : j)];
}

static double hmap(int op, double x)
{
    switch (op) {
    case OKTO_MAP_RELU: return x > 0 ? x : 0;
    case OKTO_MAP_GELU_TANH: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case OKTO_MAP_SIGMOID: return 1 / (1 + exp(-x));
    case OKTO_MAP_TANH: return tanh(x);
    case OKTO_MAP_EXP: return exp(x);
    case OKTO_MAP_LOG: return log(x);
    case OKTO_MAP_NEG: return -x;
    case OKTO_MAP_SQRT: return sqrt(x);
    case OKTO_MAP_ABS: return fabs(x);
    case OKTO_MAP_SQUARE: return x * x;
    case OKTO_MAP_RSQRT: return 1 / sqrt(x);
    case OKTO_MAP_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case OKTO_MAP_SILU: return x / (1 + exp(-x));
    }
    return NAN;
}

static double hzip(int op, double a, double b)
{
    switch (op) {
    case OKTO_ZIP_ADD: return a + b;
    case OKTO_ZIP_SUB: return a - b;
    case OKTO_ZIP_MUL: return a * b;
    case OKTO_ZIP_DIV: return a / b;
    case OKTO_ZIP_MAX: return a > b ? a : b;
    case OKTO_ZIP_MIN: return a < b ? a : b;
    case OKTO_ZIP_RELU_GRAD: return b > 0 ? a : 0;
    }
    return NAN;
}

static int positive_op(int op) /* maps whose input must be > 0 */
{
    return op == OKTO_MAP_LOG || op == OKTO_MAP_SQRT || op == OKTO_MAP_RSQRT;
}

/* Evaluates every value on the host from the params' data in p (which FD perturbs); returns
 * the loss. */
static double host_eval(prog *p, double **pdata)
{
    for (int i = 0; i < p->n; i++) {
        step *s = &p->st[i];
        val *v = &p->v[i], *a = &p->v[s->a], *b = &p->v[s->b];
        size_t n = numel(v), R = dimo(v, 0), C = dimo(v, 1);
        double *h = v->h;
        switch (s->kind) {
        case K_PARAM: memcpy(h, pdata[i], n * sizeof *h); break;
        case K_INPUT:
            for (size_t k = 0; k < n; k++)
                h[k] = v->init[k];
            break;
        case K_T:
            for (size_t r = 0; r < R; r++)
                for (size_t c = 0; c < C; c++)
                    h[r * C + c] = a->h[c * R + r];
            break;
        case K_POS: /* x^2 + 0.5 */
            for (size_t k = 0; k < n; k++)
                h[k] = a->h[k] * a->h[k] + 0.5;
            break;
        case K_MAP:
            for (size_t k = 0; k < n; k++)
                h[k] = hmap(s->op, a->h[k]);
            break;
        case K_ZIP:
        case K_ADD_IP:
            for (size_t r = 0; r < R; r++)
                for (size_t c = 0; c < C; c++)
                    h[r * C + c] = hzip(s->kind == K_ADD_IP ? OKTO_ZIP_ADD : s->op,
                                        at(a, a->h, r, c), at(b, b->h, r, c));
            break;
        case K_ZIPS:
            for (size_t k = 0; k < n; k++)
                h[k] = hzip(s->op, a->h[k], s->s);
            break;
        case K_SCALE_IP:
            for (size_t k = 0; k < n; k++)
                h[k] = s->s * a->h[k];
            break;
        case K_AXPY_IP:
            for (size_t k = 0; k < n; k++)
                h[k] = a->h[k] + s->s * b->h[k];
            break;
        case K_COPY: memcpy(h, a->h, n * sizeof *h); break;
        case K_MATMUL: {
            size_t K = s->ta ? a->shape[0] : a->shape[1];
            for (size_t r = 0; r < R; r++)
                for (size_t c = 0; c < C; c++) {
                    double acc = 0;
                    for (size_t k = 0; k < K; k++) {
                        double x = s->ta ? a->h[k * a->shape[1] + r] : a->h[r * a->shape[1] + k];
                        double y = s->tb ? b->h[c * b->shape[1] + k] : b->h[k * b->shape[1] + c];
                        acc += x * y;
                    }
                    h[r * C + c] = acc;
                }
            break;
        }
        case K_REDUCE: {
            size_t ar = dimo(a, 0), ac = dimo(a, 1);
            int ax = a->rank == 1 ? 1 : s->axis; /* in the aligned 2-D view */
            size_t outer = ax == 0 ? ac : ar, len = ax == 0 ? ar : ac;
            for (size_t o = 0; o < outer; o++) {
                double acc = s->op == OKTO_REDUCE_MAX ? -INFINITY
                             : s->op == OKTO_REDUCE_MIN ? INFINITY : 0;
                for (size_t k = 0; k < len; k++) {
                    double x = ax == 0 ? a->h[k * ac + o] : a->h[o * ac + k];
                    if (s->op == OKTO_REDUCE_MAX)
                        acc = x > acc ? x : acc;
                    else if (s->op == OKTO_REDUCE_MIN)
                        acc = x < acc ? x : acc;
                    else
                        acc += x;
                }
                h[o] = s->op == OKTO_REDUCE_MEAN ? acc / (double)len : acc;
            }
            break;
        }
        case K_LN:
        case K_RMS: {
            double *w = s->w >= 0 ? p->v[s->w].h : NULL, *bb = s->bias >= 0 ? p->v[s->bias].h : NULL;
            double *mean = malloc(R * sizeof *mean), *rs = malloc(R * sizeof *rs);
            if (s->kind == K_LN)
                ref_layernorm_fwd(a->h, w, bb, h, mean, rs, R, C, 1e-5);
            else
                ref_rmsnorm_fwd(a->h, w, h, rs, R, C, 1e-5);
            free(mean);
            free(rs);
            break;
        }
        case K_LOGSM: ref_log_softmax_fwd(a->h, h, R, C); break;
        case K_DROP: ref_dropout(a->h, h, n, s->s, 11, 22, (uint32_t)s->op); break;
        case K_SOFTMAX:
        case K_SOFTMAX_IP:
            for (size_t r = 0; r < R; r++) {
                double mx = -INFINITY, sum = 0;
                for (size_t c = 0; c < C; c++)
                    mx = fmax(mx, a->h[r * C + c]);
                for (size_t c = 0; c < C; c++)
                    sum += exp(a->h[r * C + c] - mx);
                for (size_t c = 0; c < C; c++)
                    h[r * C + c] = exp(a->h[r * C + c] - mx) / sum;
            }
            break;
        }
    }
    double loss = 0;
    for (int k = 0; k < p->nterm; k++) {
        val *v = &p->v[p->term[k]];
        for (size_t i = 0; i < numel(v); i++)
            loss += v->h[i] * p->w[k][i];
    }
    if (p->xent >= 0) {
        val *v = &p->v[p->xent];
        size_t R = dimo(v, 0), C = dimo(v, 1);
        double sum = 0;
        for (size_t r = 0; r < R; r++) {
            double mx = -INFINITY, z = 0;
            for (size_t c = 0; c < C; c++)
                mx = fmax(mx, v->h[r * C + c]);
            for (size_t c = 0; c < C; c++)
                z += exp(v->h[r * C + c] - mx);
            sum += log(z) + mx - v->h[r * C + (size_t)p->labels[r]];
        }
        loss += sum / (double)R;
    }
    return loss;
}

static int add_val(prog *p, step s, int rank, size_t r, size_t c)
{
    int i = p->n++;
    p->st[i] = s;
    val *v = &p->v[i];
    memset(v, 0, sizeof *v);
    v->rank = rank;
    v->shape[0] = r;
    v->shape[1] = rank == 2 ? c : 1;
    v->h = calloc(numel(v), sizeof *v->h);
    if (s.kind != K_PARAM && s.kind != K_INPUT && s.kind != K_T) {
        size_t sh[2] = {r, c};
        TU_OK(okto_tensor_create(ctx, OKTO_F32, rank, sh, &v->t));
    }
    return i;
}

static int leaf(prog *p, uint64_t *rng, int kind, int rank, size_t r, size_t c)
{
    int i = add_val(p, (step){.kind = kind}, rank, r, c);
    val *v = &p->v[i];
    size_t sh[2] = {r, c};
    TU_OK(okto_tensor_create(ctx, OKTO_F32, rank, sh, &v->t));
    v->init = malloc(numel(v) * sizeof *v->init);
    for (size_t k = 0; k < numel(v); k++)
        v->init[k] = tu_uniform(rng, -1.2f, 1.2f);
    TU_OK(okto_tensor_write_f32(v->t, v->init));
    if (kind == K_PARAM)
        TU_OK(okto_tensor_set_requires_grad(v->t, 1));
    return i;
}

/* a value of the program, weighted toward recent ones */
static int pick(prog *p, uint64_t *rng)
{
    int lo = p->n > 6 ? p->n - 6 : 0;
    return lo + (int)(tu_rand(rng) % (uint64_t)(p->n - lo));
}

static int pick_2d(prog *p, uint64_t *rng)
{
    for (int tries = 0; tries < 20; tries++) {
        int i = pick(p, rng);
        if (p->v[i].rank == 2)
            return i;
    }
    return -1;
}

/* b for a zip with a: the same shape, a row, a column or a vector, found or made */
static int zip_partner(prog *p, uint64_t *rng, int a)
{
    val *va = &p->v[a];
    size_t R = dimo(va, 0), C = dimo(va, 1);
    for (int tries = 0; tries < 8; tries++) {
        int b = pick(p, rng);
        val *vb = &p->v[b];
        size_t br = dimo(vb, 0), bc = dimo(vb, 1);
        if ((br == R || br == 1) && (bc == C || bc == 1) && (va->rank == 2 || vb->rank == 1))
            return b;
    }
    int u = (int)(tu_rand(rng) % 4);
    int kind = tu_rand(rng) % 2 ? K_PARAM : K_INPUT;
    if (va->rank == 1 || u == 0)
        return leaf(p, rng, kind, va->rank, va->shape[0], va->shape[1]);
    if (u == 1)
        return leaf(p, rng, kind, 2, 1, C);
    if (u == 2)
        return leaf(p, rng, kind, 2, R, 1);
    return leaf(p, rng, kind, 1, C, 1);
}

/* records value i's op on the device */
static void record(okto_graph *g, prog *p, int i)
{
    step *s = &p->st[i];
    val *v = &p->v[i], *a = &p->v[s->a], *b = &p->v[s->b];
    switch (s->kind) {
    case K_T: TU_OK(okto_tensor_transpose(a->t, 0, 1, &v->t)); break;
    case K_POS:
        TU_OK(okto_map(g, v->t, a->t, OKTO_MAP_SQUARE));
        TU_OK(okto_zip_scalar(g, v->t, v->t, 0.5f, OKTO_ZIP_ADD));
        break;
    case K_MAP: TU_OK(okto_map(g, v->t, a->t, (okto_map_op)s->op)); break;
    case K_ZIP: TU_OK(okto_zip(g, v->t, a->t, b->t, (okto_zip_op)s->op)); break;
    case K_ZIPS: TU_OK(okto_zip_scalar(g, v->t, a->t, s->s, (okto_zip_op)s->op)); break;
    case K_COPY: TU_OK(okto_copy(g, v->t, a->t)); break;
    case K_SCALE_IP:
        TU_OK(okto_copy(g, v->t, a->t));
        TU_OK(okto_scale(g, v->t, s->s));
        break;
    case K_ADD_IP:
        TU_OK(okto_copy(g, v->t, a->t));
        TU_OK(okto_zip(g, v->t, v->t, b->t, OKTO_ZIP_ADD));
        break;
    case K_AXPY_IP:
        TU_OK(okto_copy(g, v->t, a->t));
        TU_OK(okto_axpy(g, v->t, s->s, b->t));
        break;
    case K_SOFTMAX: TU_OK(okto_softmax(g, v->t, a->t)); break;
    case K_SOFTMAX_IP:
        TU_OK(okto_copy(g, v->t, a->t));
        TU_OK(okto_softmax(g, v->t, v->t));
        break;
    case K_MATMUL:
        TU_OK(okto_matmul(g, v->t, a->t, b->t,
                          (s->ta ? OKTO_TRANS_A : 0u) | (s->tb ? OKTO_TRANS_B : 0u)));
        break;
    case K_REDUCE: TU_OK(okto_reduce(g, v->t, a->t, (okto_reduce_op)s->op, s->axis)); break;
    case K_LN:
        TU_OK(okto_layernorm(g, v->t, NULL, NULL, a->t, s->w >= 0 ? p->v[s->w].t : NULL,
                             s->bias >= 0 ? p->v[s->bias].t : NULL, 1e-5f));
        break;
    case K_RMS:
        TU_OK(okto_rmsnorm(g, v->t, NULL, a->t, s->w >= 0 ? p->v[s->w].t : NULL, 1e-5f));
        break;
    case K_LOGSM: TU_OK(okto_log_softmax(g, v->t, a->t)); break;
    case K_DROP: TU_OK(okto_dropout(g, v->t, a->t, s->s, p->seed, (unsigned)s->op)); break;
    default: break;
    }
}

/* One step of a random program (host side: shapes; device: recorded later). */
static void grow(prog *p, uint64_t *rng)
{
    int kind = (int)(tu_rand(rng) % 17);
    int a = pick(p, rng);
    val *va = &p->v[a];
    size_t R = dimo(va, 0), C = dimo(va, 1);
    step s = {.a = a, .b = a};
    switch (kind) {
    case 0:
    case 1: { /* map */
        s.kind = K_MAP;
        s.op = (int)(tu_rand(rng) % OKTO_MAP_COUNT);
        if (positive_op(s.op)) {
            s.a = add_val(p, (step){.kind = K_POS, .a = a}, va->rank, va->shape[0], va->shape[1]);
            va = &p->v[a];
        }
        int i = add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[i].relu = p->v[s.a].relu || s.op == OKTO_MAP_RELU;
        return;
    }
    case 2:
    case 3: { /* zip with broadcasting */
        s.kind = K_ZIP;
        s.op = (int)(tu_rand(rng) % OKTO_ZIP_COUNT);
        s.b = zip_partner(p, rng, a);
        if (s.op == OKTO_ZIP_DIV) {
            val *vb = &p->v[s.b];
            s.b = add_val(p, (step){.kind = K_POS, .a = s.b}, vb->rank, vb->shape[0], vb->shape[1]);
        }
        va = &p->v[a];
        int i = add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[i].relu = 1; /* max, min and relu_grad may tie */
        return;
    }
    case 4: /* zip with a scalar */
        s.kind = K_ZIPS;
        s.op = (int)(tu_rand(rng) % OKTO_ZIP_COUNT);
        s.s = tu_uniform(rng, 0.5f, 1.5f);
        add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[p->n - 1].relu = 1;
        return;
    case 5:
    case 6: { /* matmul: b found (maybe transposed) or a new parameter */
        if ((a = pick_2d(p, rng)) < 0)
            return;
        va = &p->v[a];
        s.a = a;
        s.ta = tu_rand(rng) % 3 == 0;
        size_t m = s.ta ? va->shape[1] : va->shape[0], k = s.ta ? va->shape[0] : va->shape[1];
        s.b = -1;
        for (int tries = 0; tries < 8 && s.b < 0; tries++) {
            int b = pick(p, rng);
            val *vb = &p->v[b];
            if (vb->rank == 2 && vb->shape[0] == k)
                s.b = b, s.tb = 0;
            else if (vb->rank == 2 && vb->shape[1] == k)
                s.b = b, s.tb = 1;
        }
        if (s.b < 0) {
            size_t n = 1 + tu_rand(rng) % 5;
            s.tb = tu_rand(rng) % 2;
            s.b = s.tb ? leaf(p, rng, K_PARAM, 2, n, k) : leaf(p, rng, K_PARAM, 2, k, n);
        }
        val *vb = &p->v[s.b];
        size_t n = s.tb ? vb->shape[0] : vb->shape[1];
        s.kind = K_MATMUL;
        add_val(p, s, 2, m, n);
        return;
    }
    case 7: { /* reduction */
        s.kind = K_REDUCE;
        s.op = (int)(tu_rand(rng) % OKTO_REDUCE_COUNT);
        if (va->relu && (s.op == OKTO_REDUCE_MAX || s.op == OKTO_REDUCE_MIN))
            s.op = OKTO_REDUCE_SUM;
        if (va->rank == 1) {
            s.axis = 0;
            add_val(p, s, 1, 1, 1);
            return;
        }
        s.axis = (int)(tu_rand(rng) % 2);
        s.keep = (int)(tu_rand(rng) % 2);
        size_t other = s.axis == 0 ? C : R;
        if (s.keep)
            add_val(p, s, 2, s.axis == 0 ? 1 : R, s.axis == 0 ? C : 1);
        else
            add_val(p, s, 1, other, 1);
        return;
    }
    case 8: /* transposed view */
        if ((a = pick_2d(p, rng)) < 0)
            return;
        s.a = a;
        s.kind = K_T;
        add_val(p, s, 2, p->v[a].shape[1], p->v[a].shape[0]);
        p->v[p->n - 1].relu = p->v[a].relu;
        return;
    case 9: /* softmax, out of place or in place */
        if (va->rank != 2)
            return;
        s.kind = tu_rand(rng) % 2 ? K_SOFTMAX : K_SOFTMAX_IP;
        add_val(p, s, 2, R, C);
        p->v[p->n - 1].relu = 1;
        return;
    case 10: /* in place: scale or axpy */
        s.s = tu_uniform(rng, -1.5f, 1.5f);
        s.kind = tu_rand(rng) % 2 ? K_SCALE_IP : K_AXPY_IP;
        if (s.kind == K_AXPY_IP) {
            s.b = leaf(p, rng, tu_rand(rng) % 2 ? K_PARAM : K_INPUT, va->rank, va->shape[0],
                       va->shape[1]);
            va = &p->v[a];
        }
        add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[p->n - 1].relu = va->relu;
        return;
    case 11: /* in place add with broadcasting */
        s.kind = K_ADD_IP;
        s.b = zip_partner(p, rng, a);
        va = &p->v[a];
        add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[p->n - 1].relu = 1;
        return;
    case 13:
    case 14: { /* layer or RMS normalisation over rows of at least two, parameters or not */
        if (va->rank != 2 || C < 2)
            return;
        s.kind = kind == 13 ? K_LN : K_RMS;
        int u = (int)(tu_rand(rng) % 3);
        s.w = u ? leaf(p, rng, tu_rand(rng) % 2 ? K_PARAM : K_INPUT, 1, C, 1) : -1;
        s.bias = u == 2 && s.kind == K_LN ? leaf(p, rng, K_PARAM, 1, C, 1) : -1;
        add_val(p, s, 2, R, C);
        p->v[p->n - 1].relu = 1;
        return;
    }
    case 15: /* log-softmax */
        if (va->rank != 2)
            return;
        s.kind = K_LOGSM;
        add_val(p, s, 2, R, C);
        p->v[p->n - 1].relu = 1;
        return;
    case 16: /* dropout: a fixed mask (the seed does not change), so differences see it */
        s.kind = K_DROP;
        s.s = tu_uniform(rng, 0.2f, 0.5f);
        s.op = (int)(tu_rand(rng) % 1000);
        add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[p->n - 1].relu = 1;
        return;
    default: /* a copy */
        s.kind = K_COPY;
        add_val(p, s, va->rank, va->shape[0], va->shape[1]);
        p->v[p->n - 1].relu = va->relu;
        return;
    }
}

static void prog_free(prog *p)
{
    for (int i = 0; i < p->n; i++) {
        okto_tensor_destroy(p->v[i].t);
        free(p->v[i].h);
        free(p->v[i].init);
    }
    for (int k = 0; k < p->nterm; k++)
        free(p->w[k]);
    free(p->labels);
    okto_tensor_destroy(p->seed);
}

/* Builds, records and checks one random program. */
static void check_program(uint64_t seed, int steps)
{
    uint64_t rng = seed;
    prog *p = calloc(1, sizeof *p);
    p->xent = -1;
    size_t r0 = 1 + tu_rand(&rng) % 5, c0 = 1 + tu_rand(&rng) % 5;
    leaf(p, &rng, K_PARAM, 2, r0, c0);
    leaf(p, &rng, K_INPUT, 2, r0, c0);
    while (p->n < MAXV - 12 && steps-- > 0)
        grow(p, &rng);
    /* sinks: values nothing later reads */
    for (int i = 0; i < p->n; i++) {
        int k = p->st[i].kind;
        if (k == K_PARAM || k == K_INPUT)
            continue;
        p->v[p->st[i].a].used = 1;
        if (k == K_ZIP || k == K_MATMUL || k == K_ADD_IP || k == K_AXPY_IP)
            p->v[p->st[i].b].used = 1;
        if ((k == K_LN || k == K_RMS) && p->st[i].w >= 0)
            p->v[p->st[i].w].used = 1;
        if (k == K_LN && p->st[i].bias >= 0)
            p->v[p->st[i].bias].used = 1;
    }
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){2}, &p->seed));
    TU_OK(okto_tensor_write(p->seed, (int32_t[]){11, 22}));
    for (int i = 0; i < p->n; i++)
        record(g, p, i);
    okto_tensor *loss, *part, *prod[MAXV] = {0}, *wt[MAXV] = {0}, *labels = NULL;
    TU_OK(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){1}, &loss));
    TU_OK(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){1}, &part));
    TU_OK(okto_fill(g, loss, 0.0f));
    for (int i = 0; i < p->n; i++) {
        val *v = &p->v[i];
        if (v->used || p->st[i].kind == K_INPUT)
            continue;
        if (p->xent < 0 && v->rank == 2 && v->shape[1] >= 2 && tu_rand(&rng) % 2) {
            p->xent = i;
            p->labels = malloc(v->shape[0] * sizeof *p->labels);
            for (size_t r = 0; r < v->shape[0]; r++)
                p->labels[r] = (int)(tu_rand(&rng) % v->shape[1]);
            TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){v->shape[0]}, &labels));
            TU_OK(okto_tensor_write(labels, p->labels));
            p->xent_kind = (int)(tu_rand(&rng) % 2);
            if (p->xent_kind)
                TU_OK(okto_cross_entropy(g, part, NULL, v->t, labels, OKTO_IGNORE_NONE));
            else
                TU_OK(okto_softmax_xent(g, part, NULL, v->t, labels));
            TU_OK(okto_zip(g, loss, loss, part, OKTO_ZIP_ADD));
            continue;
        }
        int k = p->nterm++;
        p->term[k] = i;
        p->w[k] = malloc(numel(v) * sizeof *p->w[k]);
        tu_fill_random(p->w[k], numel(v), seed * 31 + (uint64_t)i, -1.0f, 1.0f);
        size_t sh[2] = {v->shape[0], v->shape[1]};
        TU_OK(okto_tensor_create(ctx, OKTO_F32, v->rank, sh, &wt[k]));
        TU_OK(okto_tensor_write_f32(wt[k], p->w[k]));
        TU_OK(okto_tensor_create(ctx, OKTO_F32, v->rank, sh, &prod[k]));
        TU_OK(okto_zip(g, prod[k], v->t, wt[k], OKTO_ZIP_MUL));
        TU_OK(okto_reduce_all(g, part, prod[k], OKTO_REDUCE_SUM));
        TU_OK(okto_zip(g, loss, loss, part, OKTO_ZIP_ADD));
    }
    /* the gradients of every parameter */
    int np = 0, pidx[MAXV];
    const okto_tensor *params[MAXV];
    okto_tensor *grads[MAXV];
    for (int i = 0; i < p->n; i++)
        if (p->st[i].kind == K_PARAM) {
            pidx[np] = i;
            params[np] = p->v[i].t;
            size_t sh[2] = {p->v[i].shape[0], p->v[i].shape[1]};
            TU_OK(okto_tensor_create(ctx, OKTO_F32, p->v[i].rank, sh, &grads[np]));
            np++;
        }
    TU_OK(okto_backward(g, loss, np, params, grads, 0));
    TU_OK(okto_graph_run(g));
    /* the same gradients on a replay */
    float *first[MAXV];
    for (int k = 0; k < np; k++)
        first[k] = tu_read(grads[k]);
    TU_OK(okto_graph_run(g));
    double *pdata[MAXV] = {0};
    for (int k = 0; k < np; k++) {
        val *v = &p->v[pidx[k]];
        pdata[pidx[k]] = malloc(numel(v) * sizeof(double));
        for (size_t e = 0; e < numel(v); e++)
            pdata[pidx[k]][e] = v->init[e];
    }
    float got_loss;
    TU_OK(okto_tensor_read_f32(loss, &got_loss));
    double want_loss = host_eval(p, pdata);
    if (fabs(got_loss - want_loss) > 1e-3 * (1 + fabs(want_loss)))
        fail_msg("seed %llu: loss %.7g, host %.7g", (unsigned long long)seed, got_loss, want_loss);
    const double eps = 1e-5;
    for (int k = 0; k < np; k++) {
        float *got = tu_read(grads[k]);
        val *v = &p->v[pidx[k]];
        for (size_t e = 0; e < numel(v); e++) {
            double x = pdata[pidx[k]][e];
            pdata[pidx[k]][e] = x + eps;
            double lp = host_eval(p, pdata);
            pdata[pidx[k]][e] = x - eps;
            double lm = host_eval(p, pdata);
            pdata[pidx[k]][e] = x;
            double fd = (lp - lm) / (2 * eps);
            if (fabs(got[e] - fd) > 2e-3 * (1 + fabs(fd)))
                fail_msg("seed %llu: gradient of value %d (param %d) element %zu: okto %.7g, "
                         "finite differences %.7g",
                         (unsigned long long)seed, pidx[k], k, e, got[e], fd);
            if (got[e] != first[k][e])
                fail_msg("seed %llu: param %d element %zu: a replay gave %.9g, the first run %.9g",
                         (unsigned long long)seed, k, e, got[e], first[k][e]);
        }
        free(got);
        free(first[k]);
        okto_tensor_destroy(grads[k]);
    }
    for (int k = 0; k < np; k++)
        free(pdata[pidx[k]]);
    for (int k = 0; k < p->nterm; k++) {
        okto_tensor_destroy(prod[k]);
        okto_tensor_destroy(wt[k]);
    }
    okto_tensor_destroy(labels);
    okto_tensor_destroy(loss);
    okto_tensor_destroy(part);
    TU_OK(okto_graph_destroy(g));
    prog_free(p);
    free(p);
}

static void random_programs(void **state)
{
    (void)state;
    const char *env = getenv("OKTO_TEST_PROGRAMS");
    int n = env ? atoi(env) : 60;
    const char *one = getenv("OKTO_TEST_PROGRAM"); /* reruns one: its index */
    for (int i = one ? atoi(one) : 0; i < (one ? atoi(one) + 1 : n); i++)
        check_program(0x5eed0000u + (uint64_t)i, 4 + i % 12);
}

/* ---- the hand-written MLP backward --------------------------------------------------------------- */
/* okto-train's MLP (x -> relu(x W1 + b1) -> W2 + b2 -> softmax cross-entropy), backward by hand
 * as okto-train records it, against okto_backward of the same forward. */
static void mlp_matches_hand_written(void **state)
{
    (void)state;
    enum { B = 37, I = 13, H = 19, O = 7 };
    okto_tensor *x, *w1, *b1, *w2, *b2, *h, *a, *z, *lab, *loss, *dz;
    float xs[B * I], w1s[I * H], b1s[H], w2s[H * O], b2s[O];
    int labs[B];
    tu_fill_random(xs, B * I, 1, -1, 1);
    tu_fill_random(w1s, I * H, 2, -0.5f, 0.5f);
    tu_fill_random(b1s, H, 3, -0.1f, 0.1f);
    tu_fill_random(w2s, H * O, 4, -0.5f, 0.5f);
    tu_fill_random(b2s, O, 5, -0.1f, 0.1f);
    for (int i = 0; i < B; i++)
        labs[i] = (i * 7) % O;
    x = tu_tensor(ctx, B, I, xs);
    w1 = tu_tensor(ctx, I, H, w1s);
    b1 = tu_tensor(ctx, 1, H, b1s);
    w2 = tu_tensor(ctx, H, O, w2s);
    b2 = tu_tensor(ctx, 1, O, b2s);
    h = tu_tensor(ctx, B, H, NULL);
    a = tu_tensor(ctx, B, H, NULL);
    z = tu_tensor(ctx, B, O, NULL);
    dz = tu_tensor(ctx, B, O, NULL);
    loss = tu_tensor(ctx, 1, 1, NULL);
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){B}, &lab));
    TU_OK(okto_tensor_write(lab, labs));
    okto_tensor *ps[4] = {w1, b1, w2, b2};
    for (int i = 0; i < 4; i++)
        TU_OK(okto_tensor_set_requires_grad(ps[i], 1));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_matmul(g, h, x, w1, 0));
    TU_OK(okto_zip(g, h, h, b1, OKTO_ZIP_ADD));
    TU_OK(okto_map(g, a, h, OKTO_MAP_RELU));
    TU_OK(okto_matmul(g, z, a, w2, 0));
    TU_OK(okto_zip(g, z, z, b2, OKTO_ZIP_ADD));
    TU_OK(okto_softmax_xent(g, loss, dz, z, lab));
    /* by hand */
    okto_tensor *hw1 = tu_tensor(ctx, I, H, NULL), *hb1 = tu_tensor(ctx, 1, H, NULL);
    okto_tensor *hw2 = tu_tensor(ctx, H, O, NULL), *hb2 = tu_tensor(ctx, 1, O, NULL);
    okto_tensor *da = tu_tensor(ctx, B, H, NULL), *dh = tu_tensor(ctx, B, H, NULL);
    TU_OK(okto_matmul(g, hw2, a, dz, OKTO_TRANS_A));
    TU_OK(okto_sum_to(g, hb2, dz, 0));
    TU_OK(okto_matmul(g, da, dz, w2, OKTO_TRANS_B));
    TU_OK(okto_zip(g, dh, da, h, OKTO_ZIP_RELU_GRAD));
    TU_OK(okto_matmul(g, hw1, x, dh, OKTO_TRANS_A));
    TU_OK(okto_sum_to(g, hb1, dh, 0));
    /* by okto_backward */
    okto_tensor *gs[4];
    for (int i = 0; i < 4; i++) {
        size_t sh[2] = {okto_tensor_dim(ps[i], 0), okto_tensor_dim(ps[i], 1)};
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 2, sh, &gs[i]));
    }
    TU_OK(okto_backward(g, loss, 4, (const okto_tensor *const *)ps, gs, 0));
    TU_OK(okto_graph_run(g));
    okto_tensor *hand[4] = {hw1, hb1, hw2, hb2};
    for (int i = 0; i < 4; i++) {
        float *want = tu_read(hand[i]), *got = tu_read(gs[i]);
        size_t n = okto_tensor_numel(gs[i]);
        for (size_t e = 0; e < n; e++)
            if (fabsf(got[e] - want[e]) > 1e-6f * (1 + fabsf(want[e])))
                fail_msg("param %d element %zu: okto_backward %.9g, by hand %.9g", i, e, got[e],
                         want[e]);
        free(want);
        free(got);
        okto_tensor_destroy(gs[i]);
        okto_tensor_destroy(hand[i]);
    }
    okto_tensor *rest[] = {x, w1, b1, w2, b2, h, a, z, dz, loss, lab, da, dh};
    for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
        okto_tensor_destroy(rest[i]);
    TU_OK(okto_graph_destroy(g));
}

/* ---- semantics --------------------------------------------------------------------------------- */
/* loss = sum(w * x) twice over: grads accumulate with OKTO_ACCUMULATE, and a parameter the loss
 * does not reach gets zeros */
static void accumulate_and_unreached(void **state)
{
    (void)state;
    float xs[6] = {1, 2, 3, 4, 5, 6}, ws[6] = {0.5f, -1, 2, 0, 1, 3};
    okto_tensor *x = tu_tensor(ctx, 2, 3, xs), *w = tu_tensor(ctx, 2, 3, ws);
    okto_tensor *u = tu_tensor(ctx, 2, 3, ws), *y = tu_tensor(ctx, 2, 3, NULL);
    okto_tensor *loss = tu_tensor(ctx, 1, 1, NULL), *dw = tu_tensor(ctx, 2, 3, NULL);
    okto_tensor *du = tu_tensor(ctx, 2, 3, xs);
    TU_OK(okto_tensor_set_requires_grad(w, 1));
    TU_OK(okto_tensor_set_requires_grad(u, 1));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_zip(g, y, w, x, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, loss, y, OKTO_REDUCE_SUM));
    TU_OK(okto_backward(g, loss, 2, (const okto_tensor *[]){w, u}, (okto_tensor *[]){dw, du}, 0));
    TU_OK(okto_backward(g, loss, 1, (const okto_tensor *[]){w}, (okto_tensor *[]){dw},
                        OKTO_ACCUMULATE));
    TU_OK(okto_graph_run(g));
    float *got = tu_read(dw), *gu = tu_read(du);
    for (int i = 0; i < 6; i++) {
        assert_float_equal(got[i], 2 * xs[i], 0);
        assert_float_equal(gu[i], 0, 0);
    }
    free(got);
    free(gu);
    okto_tensor *all[] = {x, w, u, y, loss, dw, du};
    for (size_t i = 0; i < 7; i++)
        okto_tensor_destroy(all[i]);
    TU_OK(okto_graph_destroy(g));
}

/* Parameters as views of one storage (an arena), used whole, in part and across the boundary
 * between them: gradients go straight into grads where they can, through a whole-storage
 * buffer where a view spans two parameters. */
static void params_sharing_a_storage(void **state)
{
    (void)state;
    for (int span = 0; span < 2; span++) {
        float arena_v[8] = {1, -2, 3, 0.5f, 2, -1, 0.25f, 4}, xs[4] = {1, 2, 3, 4};
        okto_tensor *arena = tu_tensor(ctx, 1, 8, arena_v), *x = tu_tensor(ctx, 1, 4, xs);
        okto_tensor *flat, *p0, *p1, *mid, *y = tu_tensor(ctx, 1, 4, NULL);
        okto_tensor *y2 = tu_tensor(ctx, 1, 4, NULL), *loss = tu_tensor(ctx, 1, 1, NULL);
        okto_tensor *l2 = tu_tensor(ctx, 1, 1, NULL);
        TU_OK(okto_tensor_reshape(arena, 1, (size_t[]){8}, &flat));
        TU_OK(okto_tensor_slice(flat, 0, 0, 4, &p0));
        TU_OK(okto_tensor_slice(flat, 0, 4, 4, &p1));
        TU_OK(okto_tensor_slice(flat, 0, 2, 4, &mid));
        TU_OK(okto_tensor_set_requires_grad(arena, 1));
        okto_tensor *d0, *d1, *x1;
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){4}, &d0));
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){4}, &d1));
        TU_OK(okto_tensor_reshape(x, 1, (size_t[]){4}, &x1));
        okto_tensor *y1, *y21;
        TU_OK(okto_tensor_reshape(y, 1, (size_t[]){4}, &y1));
        TU_OK(okto_tensor_reshape(y2, 1, (size_t[]){4}, &y21));
        okto_graph *g;
        TU_OK(okto_graph_create(ctx, &g));
        /* loss = sum(p0 * x) + sum(p1^2) [+ sum(mid) when spanning] */
        TU_OK(okto_zip(g, y1, p0, x1, OKTO_ZIP_MUL));
        TU_OK(okto_reduce_all(g, loss, y1, OKTO_REDUCE_SUM));
        TU_OK(okto_map(g, y21, p1, OKTO_MAP_SQUARE));
        TU_OK(okto_reduce_all(g, l2, y21, OKTO_REDUCE_SUM));
        TU_OK(okto_zip(g, loss, loss, l2, OKTO_ZIP_ADD));
        if (span) {
            TU_OK(okto_reduce_all(g, l2, mid, OKTO_REDUCE_SUM));
            TU_OK(okto_zip(g, loss, loss, l2, OKTO_ZIP_ADD));
        }
        TU_OK(okto_backward(g, loss, 2, (const okto_tensor *[]){p0, p1},
                            (okto_tensor *[]){d0, d1}, 0));
        TU_OK(okto_graph_run(g));
        float *g0 = tu_read(d0), *g1 = tu_read(d1);
        for (int i = 0; i < 4; i++) {
            float m0 = span && i >= 2 ? 1.0f : 0.0f, m1 = span && i < 2 ? 1.0f : 0.0f;
            assert_float_equal(g0[i], xs[i] + m0, 1e-6);
            assert_float_equal(g1[i], 2 * arena_v[4 + i] + m1, 1e-6);
        }
        free(g0);
        free(g1);
        okto_tensor *all[] = {arena, x, flat, p0, p1, mid, y, y2, loss, l2, d0, d1, x1, y1, y21};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            okto_tensor_destroy(all[i]);
        TU_OK(okto_graph_destroy(g));
    }
}

/* One buffer holds two values in turn: h = relu(w); loss1 = sum(h); h = w * 3 (overwritten);
 * loss = loss1 + sum(h * h). d/dw = relu'(w) + 18 w: the first value's gradient must not
 * include the second's readers. */
static void reused_buffer(void **state)
{
    (void)state;
    float ws[4] = {1, -2, 0.5f, 3};
    okto_tensor *w = tu_tensor(ctx, 1, 4, ws), *h = tu_tensor(ctx, 1, 4, NULL);
    okto_tensor *sq = tu_tensor(ctx, 1, 4, NULL), *l1 = tu_tensor(ctx, 1, 1, NULL);
    okto_tensor *loss = tu_tensor(ctx, 1, 1, NULL), *dw = tu_tensor(ctx, 1, 4, NULL);
    TU_OK(okto_tensor_set_requires_grad(w, 1));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_map(g, h, w, OKTO_MAP_RELU));
    TU_OK(okto_reduce_all(g, l1, h, OKTO_REDUCE_SUM));
    TU_OK(okto_zip_scalar(g, h, w, 3.0f, OKTO_ZIP_MUL));
    TU_OK(okto_map(g, sq, h, OKTO_MAP_SQUARE));
    TU_OK(okto_reduce_all(g, loss, sq, OKTO_REDUCE_SUM));
    TU_OK(okto_zip(g, loss, loss, l1, OKTO_ZIP_ADD));
    TU_OK(okto_backward(g, loss, 1, (const okto_tensor *[]){w}, &dw, 0));
    TU_OK(okto_graph_run(g));
    float *got = tu_read(dw);
    for (int i = 0; i < 4; i++)
        assert_float_equal(got[i], (ws[i] > 0 ? 1.0f : 0.0f) + 18 * ws[i], 1e-5);
    free(got);
    okto_tensor *all[] = {w, h, sq, l1, loss, dw};
    for (size_t i = 0; i < 6; i++)
        okto_tensor_destroy(all[i]);
    TU_OK(okto_graph_destroy(g));
}

/* The rules the random programs do not reach: gemm with beta (c is an input too), sum_to,
 * okto_contiguous of a transposed view, and a cast through f16. Each loss is sum(W * out), so the
 * expected gradients are closed forms of W. */
static void other_rules(void **state)
{
    (void)state;
    enum { M = 3, K = 4, N = 5 };
    float as[M * K], bs[K * N], ps[M * N], ws[M * N];
    tu_fill_random(as, M * K, 11, -1, 1);
    tu_fill_random(bs, K * N, 12, -1, 1);
    tu_fill_random(ps, M * N, 13, -1, 1);
    tu_fill_random(ws, M * N, 14, -1, 1);
    okto_tensor *a = tu_tensor(ctx, M, K, as), *b = tu_tensor(ctx, K, N, bs);
    okto_tensor *p = tu_tensor(ctx, M, N, ps), *w = tu_tensor(ctx, M, N, ws);
    okto_tensor *c = tu_tensor(ctx, M, N, NULL), *prod = tu_tensor(ctx, M, N, NULL);
    okto_tensor *loss = tu_tensor(ctx, 1, 1, NULL), *da = tu_tensor(ctx, M, K, NULL);
    okto_tensor *dp = tu_tensor(ctx, M, N, NULL);
    TU_OK(okto_tensor_set_requires_grad(a, 1));
    TU_OK(okto_tensor_set_requires_grad(p, 1));
    okto_graph *g;
    /* c = p; c = 0.5 a b + 0.3 c: dp = 0.3 W, da = 0.5 W b^T */
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_copy(g, c, p));
    TU_OK(okto_gemm(g, c, 0.5f, a, b, 0.3f, 0));
    TU_OK(okto_zip(g, prod, c, w, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, loss, prod, OKTO_REDUCE_SUM));
    TU_OK(okto_backward(g, loss, 2, (const okto_tensor *[]){a, p}, (okto_tensor *[]){da, dp}, 0));
    TU_OK(okto_graph_run(g));
    float *gp = tu_read(dp), *ga = tu_read(da);
    for (int i = 0; i < M * N; i++)
        assert_float_equal(gp[i], 0.3f * ws[i], 1e-6);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            double want = 0;
            for (int j = 0; j < N; j++)
                want += 0.5 * ws[i * N + j] * bs[k * N + j];
            assert_float_equal(ga[i * K + k], want, 1e-5);
        }
    free(gp);
    free(ga);
    TU_OK(okto_graph_destroy(g));
    /* loss = sum(W[0,:] * sum_to(p, [1, N])) + sum(W^T * contiguous(p^T)): dp = W[0,:] + W */
    okto_tensor *row = tu_tensor(ctx, 1, N, NULL), *rw = tu_tensor(ctx, 1, N, NULL), *w0, *pt, *wt, *ct = NULL, *prt;
    okto_tensor *l2 = tu_tensor(ctx, 1, 1, NULL);
    TU_OK(okto_tensor_view(w, 0, 1, &w0));
    TU_OK(okto_tensor_transpose(p, 0, 1, &pt));
    TU_OK(okto_tensor_transpose(w, 0, 1, &wt));
    TU_OK(okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){N, M}, &prt));
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_sum_to(g, row, p, 0));
    TU_OK(okto_zip(g, rw, row, w0, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, loss, rw, OKTO_REDUCE_SUM));
    TU_OK(okto_contiguous(g, pt, &ct));
    TU_OK(okto_zip(g, prt, ct, wt, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, l2, prt, OKTO_REDUCE_SUM));
    TU_OK(okto_zip(g, loss, loss, l2, OKTO_ZIP_ADD));
    TU_OK(okto_backward(g, loss, 1, (const okto_tensor *[]){p}, &dp, 0));
    TU_OK(okto_graph_run(g));
    gp = tu_read(dp);
    for (int i = 0; i < M * N; i++)
        assert_float_equal(gp[i], ws[i % N] + ws[i], 1e-6);
    free(gp);
    TU_OK(okto_graph_destroy(g));
    /* h = f16(p); loss = f32(sum(h * f16(W))): dp = W within f16's rounding */
    okto_tensor *h, *w16, *hp, *l16;
    TU_OK(okto_tensor_create(ctx, OKTO_F16, 2, (size_t[]){M, N}, &h));
    TU_OK(okto_tensor_create(ctx, OKTO_F16, 2, (size_t[]){M, N}, &w16));
    TU_OK(okto_tensor_create(ctx, OKTO_F16, 2, (size_t[]){M, N}, &hp));
    TU_OK(okto_tensor_create(ctx, OKTO_F16, 2, (size_t[]){1, 1}, &l16));
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_cast(g, h, p));
    TU_OK(okto_cast(g, w16, w));
    TU_OK(okto_zip(g, hp, h, w16, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, l16, hp, OKTO_REDUCE_SUM));
    TU_OK(okto_cast(g, loss, l16));
    TU_OK(okto_backward(g, loss, 1, (const okto_tensor *[]){p}, &dp, 0));
    TU_OK(okto_graph_run(g));
    gp = tu_read(dp);
    for (int i = 0; i < M * N; i++)
        assert_float_equal(gp[i], ws[i], 1e-3);
    free(gp);
    TU_OK(okto_graph_destroy(g));
    okto_tensor *all[] = {a, b, p, w, c, prod, loss, da, dp, row, rw, w0, pt, wt, ct, prt, l2,
                          h, w16, hp, l16};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
}

/* A graph with no marked storage keeps no tape; a marked one keeps only what reaches it. */
static void tape_only_where_needed(void **state)
{
    (void)state;
    okto_tensor *a = tu_tensor(ctx, 4, 4, NULL), *b = tu_tensor(ctx, 4, 4, NULL);
    okto_tensor *c = tu_tensor(ctx, 4, 4, NULL), *w = tu_tensor(ctx, 4, 4, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_map(g, b, a, OKTO_MAP_EXP));
    TU_OK(okto_matmul(g, c, a, b, 0));
    assert_int_equal(g->nnodes, 0);
    TU_OK(okto_tensor_set_requires_grad(w, 1));
    assert_true(okto_tensor_requires_grad(w));
    TU_OK(okto_zip(g, c, a, b, OKTO_ZIP_ADD)); /* untouched by w */
    assert_int_equal(g->nnodes, 0);
    TU_OK(okto_zip(g, b, a, w, OKTO_ZIP_MUL)); /* reads w: on the tape, and b with it */
    TU_OK(okto_map(g, c, b, OKTO_MAP_TANH));
    assert_int_equal(g->nnodes, 2);
    TU_OK(okto_tensor_set_requires_grad(w, 0));
    assert_false(okto_tensor_requires_grad(w));
    okto_tensor *all[] = {a, b, c, w};
    for (size_t i = 0; i < 4; i++)
        okto_tensor_destroy(all[i]);
    TU_OK(okto_graph_destroy(g));
}

/* ---- refusals ----------------------------------------------------------------------------------- */
static void refusals(void **state)
{
    (void)state;
    okto_tensor *w = tu_tensor(ctx, 2, 3, NULL), *x = tu_tensor(ctx, 2, 3, NULL);
    okto_tensor *y = tu_tensor(ctx, 2, 3, NULL), *loss = tu_tensor(ctx, 1, 1, NULL);
    okto_tensor *dw = tu_tensor(ctx, 2, 3, NULL), *bad = tu_tensor(ctx, 3, 2, NULL);
    okto_tensor *lab, *u = tu_tensor(ctx, 2, 3, NULL), *du = tu_tensor(ctx, 2, 3, NULL);
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 1, (size_t[]){2}, &lab));
    assert_int_equal(okto_tensor_set_requires_grad(lab, 1), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "i32"));
    assert_int_equal(okto_tensor_set_requires_grad(NULL, 1), OKTO_EINVAL);
    TU_OK(okto_tensor_set_requires_grad(w, 1));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_zip(g, y, w, x, OKTO_ZIP_MUL));
    TU_OK(okto_reduce_all(g, loss, y, OKTO_REDUCE_SUM));
    int n = okto_graph_task_count(g);
    const okto_tensor *pw[] = {w};
    tu_expect_refused(ctx, g, okto_backward(g, loss, 1, pw, (okto_tensor *[]){bad}, 0),
                      OKTO_EINVAL, "params[0] is f32[2,3]", "grads[0] is f32[3,2]", n);
    tu_expect_refused(ctx, g, okto_backward(g, loss, 0, pw, &dw, 0), OKTO_EINVAL, "n is 0", NULL,
                      n);
    tu_expect_refused(ctx, g, okto_backward(g, loss, 1, pw, &dw, 8), OKTO_EINVAL, "flags", NULL,
                      n);
    tu_expect_refused(ctx, g, okto_backward(g, loss, 1, (const okto_tensor *[]){u}, &du, 0),
                      OKTO_EINVAL, "params[0] (f32[2,3]) is not marked",
                      "okto_tensor_set_requires_grad", n);
    tu_expect_refused(ctx, g, okto_backward(g, loss, 1, pw, &y, 0), OKTO_EINVAL,
                      "grads[0]", "the forward pass computes with", n);
    tu_expect_refused(ctx, g, okto_backward(g, x, 1, pw, &dw, 0), OKTO_EINVAL, "loss (f32[2,3])",
                      "does not depend on any of the 1 parameters", n);
    tu_expect_refused(ctx, g, okto_backward(g, loss, 2, (const okto_tensor *[]){w, w},
                                            (okto_tensor *[]){dw, du}, 0),
                      OKTO_EINVAL, "params[0] (f32[2,3]) and params[1]", "overlap", n);
    /* a loss that does not depend on w */
    okto_tensor *l2 = tu_tensor(ctx, 1, 1, NULL);
    TU_OK(okto_tensor_set_requires_grad(u, 1));
    TU_OK(okto_reduce_all(g, l2, u, OKTO_REDUCE_SUM));
    n = okto_graph_task_count(g);
    tu_expect_refused(ctx, g, okto_backward(g, l2, 1, pw, &dw, 0), OKTO_EINVAL,
                      "does not depend on any of the 1 parameters", NULL, n);
    /* an in-place map overwrites what its gradient reads */
    okto_tensor *h = tu_tensor(ctx, 2, 3, NULL), *l3 = tu_tensor(ctx, 1, 1, NULL);
    TU_OK(okto_zip(g, h, w, x, OKTO_ZIP_ADD));
    TU_OK(okto_map(g, h, h, OKTO_MAP_TANH));
    TU_OK(okto_reduce_all(g, l3, h, OKTO_REDUCE_SUM));
    n = okto_graph_task_count(g);
    tu_expect_refused(ctx, g, okto_backward(g, l3, 1, pw, &dw, 0), OKTO_EINVAL,
                      "okto_map (map.tanh", "overwrites in the same call", n);
    /* a value overwritten later by an upload (a reused input buffer) */
    okto_graph *g2;
    TU_OK(okto_graph_create(ctx, &g2));
    float host[6] = {0};
    TU_OK(okto_zip(g2, y, w, x, OKTO_ZIP_MUL));
    TU_OK(okto_upload(g2, x, host));
    TU_OK(okto_reduce_all(g2, loss, y, OKTO_REDUCE_SUM));
    n = okto_graph_task_count(g2);
    tu_expect_refused(ctx, g2, okto_backward(g2, loss, 1, pw, &dw, 0), OKTO_EINVAL,
                      "okto_zip (zip.mul", "which task 1 (upload) overwrites later", n);
    TU_OK(okto_graph_destroy(g2));
    /* a user kernel between the parameter and the loss */
    okto_kernel *k;
    TU_OK(okto_kernel_create(ctx,
                             "__kernel void twice(__global float *y, ulong yo, __global const "
                             "float *x, ulong xo) { size_t i = get_global_id(0); y[yo + i] = 2 * "
                             "x[xo + i]; }",
                             "twice", &k));
    TU_OK(okto_graph_create(ctx, &g2));
    size_t six = 6;
    TU_OK(okto_launch(g2, k, 1, &six, NULL, 2, (okto_arg[]){OKTO_W(y), OKTO_R(w)}));
    TU_OK(okto_reduce_all(g2, loss, y, OKTO_REDUCE_SUM));
    n = okto_graph_task_count(g2);
    tu_expect_refused(ctx, g2, okto_backward(g2, loss, 1, pw, &dw, 0), OKTO_EINVAL,
                      "okto_launch (kernel", "has no gradient", n);
    TU_OK(okto_graph_destroy(g2));
    /* ... and one that only updates, in place (RW), a value made from the parameter: it reads
     * the old value too, so it is on the gradient's path and must be refused, not skipped (the
     * Python tests found d sum(2 y) / dw given as 1) */
    okto_kernel *k2;
    TU_OK(okto_kernel_create(ctx,
                             "__kernel void twice_rw(__global float *y, ulong yo) { size_t i = "
                             "get_global_id(0); y[yo + i] *= 2; }",
                             "twice_rw", &k2));
    TU_OK(okto_graph_create(ctx, &g2));
    TU_OK(okto_copy(g2, y, w));
    TU_OK(okto_launch(g2, k2, 1, &six, NULL, 1, (okto_arg[]){OKTO_RW(y)}));
    TU_OK(okto_reduce_all(g2, loss, y, OKTO_REDUCE_SUM));
    n = okto_graph_task_count(g2);
    tu_expect_refused(ctx, g2, okto_backward(g2, loss, 1, pw, &dw, 0), OKTO_EINVAL,
                      "okto_launch (kernel", "has no gradient", n);
    TU_OK(okto_graph_destroy(g2));
    TU_OK(okto_kernel_destroy(k2));
    TU_OK(okto_kernel_destroy(k));
    okto_tensor *all[] = {w, x, y, loss, dw, bad, lab, u, du, l2, h, l3};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        okto_tensor_destroy(all[i]);
    TU_OK(okto_graph_destroy(g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tape_only_where_needed),  cmocka_unit_test(mlp_matches_hand_written),
        cmocka_unit_test(accumulate_and_unreached), cmocka_unit_test(params_sharing_a_storage),
        cmocka_unit_test(reused_buffer),            cmocka_unit_test(other_rules),
        cmocka_unit_test(refusals),
        cmocka_unit_test(random_programs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
