/* tests/kernels/check_attention.c: cl/attention.cl against tests/ref/ref_attention.c on PoCL.
 *
 * For each shape and dtype (f32, f16, bf16; inputs rounded to the dtype first, so the error is
 * the kernel's): the forward (o, lse), delta, dq, dk, dv against the double reference, through
 * views (offsets, heads split out of a fused [B, T, 3, H, D] buffer) with a check that nothing
 * outside the output views is written; every kernel run twice with equal bits; accumulate = 1
 * giving twice the gradient. The reference backward is checked against central differences of
 * the reference forward. Last, forward + backward at B 8, H 4, T 256, D 64 is timed against
 * the same math through the full score matrix (test-only kernels below), interleaved. */
#include "kcheck.h"
#include "ref_attention.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL 64
#define SENTINEL 1024.0 /* exact in every dtype; must survive outside the output views */

typedef struct view {
    size_t off;
    long sb, sh, st;
} view;

typedef struct acase {
    int B, H, Tq, Tk, D, causal, fused;
} acase;

typedef struct akern {
    cl_kernel fwd, delta, dq, dkdv;
} akern;

/* Tolerances, errors as kc_err measures them (max |err| / max |ref|), set at 2-5x the largest
 * seen over these cases (the report lists them). */
typedef struct att_tol {
    double o, lse, delta, dq, dk, dv;
} att_tol;
static const att_tol tols[3] = {
    /* f32: float arithmetic over up to 257 keys (seen: 7e-7 .. 9e-7) */
    {5e-6, 1e-6, 5e-6, 5e-6, 5e-6, 5e-6},
    /* f16: o and the gradients are stored as half, 2^-11 = 4.9e-4 of each element */
    {1e-3, 1e-6, 1e-3, 2e-3, 2e-3, 1e-3},
    /* bf16: stored as bf16, 2^-8 = 3.9e-3; delta and so dq, dk also see o's rounding */
    {8e-3, 1e-6, 8e-3, 1.5e-2, 2e-2, 8e-3},
};

static size_t at(view v, int b, int h, int t) { return v.off + b * v.sb + h * v.sh + t * v.st; }

static void put(double *img, view v, const double *x, int B, int H, int T, int D)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(img + at(v, b, h, t), x + (((size_t)b * H + h) * T + t) * D,
                       sizeof(double) * D);
}

static void get(const double *img, view v, double *x, int B, int H, int T, int D)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(x + (((size_t)b * H + h) * T + t) * D, img + at(v, b, h, t),
                       sizeof(double) * D);
}

static void mark(char *m, view v, int B, int H, int T, int D)
{
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memset(m + at(v, b, h, t), 1, D);
}

/* everything outside the marked views still holds the sentinel */
static int untouched(const double *img, const char *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!m[i] && img[i] != SENTINEL)
            return 0;
    return 1;
}

static void arg_view(kc_args *a, cl_mem m, view v)
{
    kc_mem(a, m);
    kc_ul(a, v.off);
    kc_l(a, v.sb);
    kc_l(a, v.sh);
    kc_l(a, v.st);
}

static akern kernels(cl_program p)
{
    return (akern){kc_kernel(p, "okto_attn_fwd"), kc_kernel(p, "okto_attn_bwd_delta"),
                   kc_kernel(p, "okto_attn_bwd_dq"), kc_kernel(p, "okto_attn_bwd_dkdv")};
}

static void free_kernels(akern *k)
{
    clReleaseKernel(k->fwd);
    clReleaseKernel(k->delta);
    clReleaseKernel(k->dq);
    clReleaseKernel(k->dkdv);
}

/* One problem on the device: buffers and views for q, k, v, o, dout (g), dq, dk, dv. */
typedef struct abufs {
    cl_mem q, k, v, o, g, dq, dk, dv, lse, delta;
    view qv, kv, vv, ov, gv, dqv, dkv, dvv;
} abufs;

static size_t local_size = LOCAL; /* the geometry check changes it */
static int check_geometry;        /* for one program: each local size costs a compile */

static void run_fwd(kc_env *e, akern *kk, const abufs *t, const acase *c, float scale,
                    size_t groups)
{
    kc_args a = kc_begin(kk->fwd);
    arg_view(&a, t->q, t->qv);
    arg_view(&a, t->k, t->kv);
    arg_view(&a, t->v, t->vv);
    arg_view(&a, t->o, t->ov);
    kc_mem(&a, t->lse);
    kc_ul(&a, 0);
    kc_ul(&a, c->B);
    kc_ul(&a, c->H);
    kc_ul(&a, c->Tq);
    kc_ul(&a, c->Tk);
    kc_i(&a, c->D);
    kc_f(&a, scale);
    kc_i(&a, c->causal);
    kc_run(e, kk->fwd, groups, local_size);
}

static void run_bwd(kc_env *e, akern *kk, const abufs *t, const acase *c, float scale,
                    int accumulate, size_t groups)
{
    kc_args a = kc_begin(kk->delta);
    arg_view(&a, t->o, t->ov);
    arg_view(&a, t->g, t->gv);
    kc_mem(&a, t->delta);
    kc_ul(&a, 0);
    kc_ul(&a, c->B);
    kc_ul(&a, c->H);
    kc_ul(&a, c->Tq);
    kc_i(&a, c->D);
    /* one item per row, the grid padded to a multiple of the local size */
    kc_run(e, kk->delta, ((size_t)c->B * c->H * c->Tq + LOCAL - 1) / LOCAL, LOCAL);

    a = kc_begin(kk->dq);
    arg_view(&a, t->q, t->qv);
    arg_view(&a, t->k, t->kv);
    arg_view(&a, t->v, t->vv);
    arg_view(&a, t->g, t->gv);
    kc_mem(&a, t->lse);
    kc_ul(&a, 0);
    kc_mem(&a, t->delta);
    kc_ul(&a, 0);
    arg_view(&a, t->dq, t->dqv);
    kc_ul(&a, c->B);
    kc_ul(&a, c->H);
    kc_ul(&a, c->Tq);
    kc_ul(&a, c->Tk);
    kc_i(&a, c->D);
    kc_f(&a, scale);
    kc_i(&a, c->causal);
    kc_i(&a, accumulate);
    kc_run(e, kk->dq, groups, local_size);

    a = kc_begin(kk->dkdv);
    arg_view(&a, t->q, t->qv);
    arg_view(&a, t->k, t->kv);
    arg_view(&a, t->v, t->vv);
    arg_view(&a, t->g, t->gv);
    kc_mem(&a, t->lse);
    kc_ul(&a, 0);
    kc_mem(&a, t->delta);
    kc_ul(&a, 0);
    arg_view(&a, t->dk, t->dkv);
    arg_view(&a, t->dv, t->dvv);
    kc_ul(&a, c->B);
    kc_ul(&a, c->H);
    kc_ul(&a, c->Tq);
    kc_ul(&a, c->Tk);
    kc_i(&a, c->D);
    kc_f(&a, scale);
    kc_i(&a, c->causal);
    kc_i(&a, accumulate);
    kc_run(e, kk->dkdv, groups, local_size);
}

/* lse of a query that sees no key is -inf in both: compare those as equal */
static double lse_err(const double *got, const double *ref, size_t n)
{
    double *g = kc_alloc(sizeof(double) * n), *r = kc_alloc(sizeof(double) * n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        int gi = isinf(got[i]) && got[i] < 0, ri = isinf(ref[i]) && ref[i] < 0;
        bad |= gi != ri;
        g[i] = gi ? 0 : got[i];
        r[i] = ri ? 0 : ref[i];
    }
    double err = bad ? INFINITY : kc_err(g, r, n);
    free(g);
    free(r);
    return err;
}

static int bits_equal(kc_env *e, cl_mem m, size_t bytes, const void *before)
{
    void *now = kc_alloc(bytes);
    kc_read_bytes(e, m, bytes, now);
    int eq = !memcmp(now, before, bytes);
    free(now);
    return eq;
}

static void *snapshot(kc_env *e, cl_mem m, size_t bytes)
{
    void *p = kc_alloc(bytes);
    kc_read_bytes(e, m, bytes, p);
    return p;
}

static void check_case(kc_env *e, akern *kk, int dt, const acase *c, uint64_t *seed)
{
    const int B = c->B, H = c->H, Tq = c->Tq, Tk = c->Tk, D = c->D;
    const size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * H * Tk * D, nr = (size_t)B * H * Tq;
    const float scale = (float)(1.0 / sqrt((double)D));
    const att_tol *tol = &tols[dt];
    char desc[160];
    snprintf(desc, sizeof desc, "B %d H %d Tq %d Tk %d D %d%s%s", B, H, Tq, Tk, D,
             c->causal ? " causal" : "", c->fused ? " fused-qkv views" : "");

    double *q = kc_alloc(sizeof(double) * nq), *k = kc_alloc(sizeof(double) * nk);
    double *v = kc_alloc(sizeof(double) * nk), *g = kc_alloc(sizeof(double) * nq);
    kc_rand(q, nq, -1.5, 1.5, seed);
    kc_rand(k, nk, -1.5, 1.5, seed);
    kc_rand(v, nk, -1, 1, seed);
    kc_rand(g, nq, -1, 1, seed);
    kc_round_all(dt, q, nq);
    kc_round_all(dt, k, nk);
    kc_round_all(dt, v, nk);
    kc_round_all(dt, g, nq);
    double *o = kc_alloc(sizeof(double) * nq), *lse = kc_alloc(sizeof(double) * nr);
    double *dq = kc_alloc(sizeof(double) * nq), *dk = kc_alloc(sizeof(double) * nk);
    double *dv = kc_alloc(sizeof(double) * nk), *delta = kc_alloc(sizeof(double) * nr);
    ref_attention_forward(q, k, v, o, lse, B, H, Tq, Tk, D, scale, c->causal);
    ref_attention_backward(q, k, v, g, dq, dk, dv, B, H, Tq, Tk, D, scale, c->causal);
    /* delta's terms can cancel: its error is measured against sum_d |o g|, the scale of the
     * rounding of o (stored in the dtype) that it inherits */
    double delta_scale = 0;
    for (size_t r = 0; r < nr; r++) {
        double s = 0, a = 0;
        for (int d = 0; d < D; d++) {
            s += o[r * D + d] * g[r * D + d];
            a += fabs(o[r * D + d] * g[r * D + d]);
        }
        delta[r] = s;
        delta_scale = fmax(delta_scale, a);
    }

    /* layouts: fused puts q, k, v (and dq, dk, dv) into one [B, T, 3, H, D] buffer and o into
     * [B, T, H, D] after 5 elements; otherwise each is [B, H, T, D] after a small offset */
    abufs t;
    size_t n_in, n_o, n_g, n_dq, n_dk, n_dv;
    double *in_img, *g_img;
    if (c->fused) {
        const int T = Tq; /* the cases with fused views have Tq == Tk */
        long st = 3L * H * D;
        t.qv = (view){0, T * st, D, st};
        t.kv = (view){(size_t)H * D, T * st, D, st};
        t.vv = (view){2 * (size_t)H * D, T * st, D, st};
        t.dqv = t.qv, t.dkv = t.kv, t.dvv = t.vv;
        t.ov = (view){5, (long)T * H * D, D, (long)H * D};
        t.gv = (view){0, (long)T * H * D, D, (long)H * D};
        n_in = n_dq = n_dk = n_dv = 3 * nq;
        n_o = 5 + nq;
        n_g = nq;
    } else {
        t.qv = (view){3, (long)H * Tq * D, (long)Tq * D, D};
        t.kv = (view){1, (long)H * Tk * D, (long)Tk * D, D};
        t.vv = (view){0, (long)H * Tk * D, (long)Tk * D, D};
        t.ov = (view){2, (long)H * Tq * D, (long)Tq * D, D};
        t.gv = (view){0, (long)H * Tq * D, (long)Tq * D, D};
        t.dqv = (view){1, (long)H * Tq * D, (long)Tq * D, D};
        t.dkv = (view){0, (long)H * Tk * D, (long)Tk * D, D};
        t.dvv = (view){3, (long)H * Tk * D, (long)Tk * D, D};
        n_in = 0; /* separate buffers */
        n_o = 2 + nq;
        n_g = nq;
        n_dq = 1 + nq;
        n_dk = nk;
        n_dv = 3 + nk;
    }
    g_img = kc_alloc(sizeof(double) * n_g);
    put(g_img, t.gv, g, B, H, Tq, D);
    t.g = kc_upload(e, dt, g_img, n_g);
    if (c->fused) {
        in_img = kc_alloc(sizeof(double) * n_in);
        put(in_img, t.qv, q, B, H, Tq, D);
        put(in_img, t.kv, k, B, H, Tk, D);
        put(in_img, t.vv, v, B, H, Tk, D);
        t.q = t.k = t.v = kc_upload(e, dt, in_img, n_in);
        free(in_img);
    } else {
        double *img = kc_alloc(sizeof(double) * (3 + nq + 2 * nk));
        put(img, t.qv, q, B, H, Tq, D);
        t.q = kc_upload(e, dt, img, 3 + nq);
        put(img, t.kv, k, B, H, Tk, D);
        t.k = kc_upload(e, dt, img, 1 + nk);
        put(img, t.vv, v, B, H, Tk, D);
        t.v = kc_upload(e, dt, img, nk);
        free(img);
    }
    /* outputs start as the sentinel */
    size_t n_max = n_o > n_dq ? n_o : n_dq;
    n_max = n_max > n_dk ? n_max : n_dk;
    n_max = n_max > n_dv ? n_max : n_dv;
    double *img = kc_alloc(sizeof(double) * n_max);
    char *mk = kc_alloc(n_max);
    for (size_t i = 0; i < n_max; i++)
        img[i] = SENTINEL;
    t.o = kc_upload(e, dt, img, n_o);
    t.dq = kc_upload(e, dt, img, n_dq);
    if (c->fused) {
        t.dk = t.dv = t.dq;
    } else {
        t.dk = kc_upload(e, dt, img, n_dk);
        t.dv = kc_upload(e, dt, img, n_dv);
    }
    t.lse = kc_buf(e, 4 * nr);
    t.delta = kc_buf(e, 4 * nr);
    const size_t groups = 4 * e->units, es = kc_dt_size(dt);

    /* forward */
    double *got = kc_alloc(sizeof(double) * (nq > nk ? nq : nk));
    run_fwd(e, kk, &t, c, scale, groups);
    kc_download(e, t.o, dt, n_o, img);
    get(img, t.ov, got, B, H, Tq, D);
    kc_track("attn_fwd o", dt, kc_err(got, o, nq), tol->o, desc);
    memset(mk, 0, n_max);
    mark(mk, t.ov, B, H, Tq, D);
    kc_track_exact("attn_fwd writes only o's view", dt, untouched(img, mk, n_o), desc);
    double *gl = kc_alloc(sizeof(double) * nr);
    kc_download_f32(e, t.lse, nr, gl);
    kc_track("attn_fwd lse", dt, lse_err(gl, lse, nr), tol->lse, desc);
    void *o_bits = snapshot(e, t.o, n_o * es), *l_bits = snapshot(e, t.lse, 4 * nr);
    run_fwd(e, kk, &t, c, scale, groups);
    kc_track_exact("attn_fwd same bits twice", dt,
                   bits_equal(e, t.o, n_o * es, o_bits) && bits_equal(e, t.lse, 4 * nr, l_bits),
                   desc);

    /* backward, overwriting */
    run_bwd(e, kk, &t, c, scale, 0, groups);
    kc_download_f32(e, t.delta, nr, gl);
    double de = 0;
    for (size_t r = 0; r < nr; r++)
        de = fmax(de, fabs(gl[r] - delta[r]));
    kc_track("attn_bwd_delta (err / max sum|o g|)", dt, de / delta_scale, tol->delta, desc);
    kc_download(e, t.dq, dt, n_dq, img);
    get(img, t.dqv, got, B, H, Tq, D);
    kc_track("attn_bwd_dq", dt, kc_err(got, dq, nq), tol->dq, desc);
    memset(mk, 0, n_max);
    mark(mk, t.dqv, B, H, Tq, D);
    if (c->fused) {
        mark(mk, t.dkv, B, H, Tk, D);
        mark(mk, t.dvv, B, H, Tk, D);
    }
    int clean = untouched(img, mk, n_dq);
    kc_download(e, t.dk, dt, n_dk, img);
    get(img, t.dkv, got, B, H, Tk, D);
    kc_track("attn_bwd_dkdv dk", dt, kc_err(got, dk, nk), tol->dk, desc);
    if (!c->fused) {
        memset(mk, 0, n_max);
        mark(mk, t.dkv, B, H, Tk, D);
        clean &= untouched(img, mk, n_dk);
    }
    kc_download(e, t.dv, dt, n_dv, img);
    get(img, t.dvv, got, B, H, Tk, D);
    kc_track("attn_bwd_dkdv dv", dt, kc_err(got, dv, nk), tol->dv, desc);
    if (!c->fused) {
        memset(mk, 0, n_max);
        mark(mk, t.dvv, B, H, Tk, D);
        clean &= untouched(img, mk, n_dv);
    }
    kc_track_exact("attn_bwd writes only dq/dk/dv views", dt, clean, desc);

    void *dq_bits = snapshot(e, t.dq, n_dq * es), *dk_bits = snapshot(e, t.dk, n_dk * es);
    void *dv_bits = snapshot(e, t.dv, n_dv * es);
    run_bwd(e, kk, &t, c, scale, 0, groups);
    kc_track_exact("attn_bwd same bits twice", dt,
                   bits_equal(e, t.dq, n_dq * es, dq_bits) &&
                       bits_equal(e, t.dk, n_dk * es, dk_bits) &&
                       bits_equal(e, t.dv, n_dv * es, dv_bits),
                   desc);

    /* another geometry (local 16, 3 groups; local 1, 5 groups) gives the same bits */
    static const size_t geo[2][2] = {{16, 3}, {1, 5}};
    for (int gi = 0; gi < 2 && check_geometry; gi++) {
        local_size = geo[gi][0];
        run_fwd(e, kk, &t, c, scale, geo[gi][1]);
        run_bwd(e, kk, &t, c, scale, 0, geo[gi][1]);
        local_size = LOCAL;
        char g2[200];
        snprintf(g2, sizeof g2, "%s, local %zu, %zu groups", desc, geo[gi][0], geo[gi][1]);
        kc_track_exact(
            "attn same bits at any local size / groups", dt,
            bits_equal(e, t.o, n_o * es, o_bits) && bits_equal(e, t.lse, 4 * nr, l_bits) &&
                bits_equal(e, t.dq, n_dq * es, dq_bits) &&
                bits_equal(e, t.dk, n_dk * es, dk_bits) && bits_equal(e, t.dv, n_dv * es, dv_bits),
            g2);
    }

    /* accumulate: the gradient again on top gives twice the reference */
    run_bwd(e, kk, &t, c, scale, 1, groups);
    for (size_t i = 0; i < nq; i++)
        dq[i] *= 2;
    for (size_t i = 0; i < nk; i++) {
        dk[i] *= 2;
        dv[i] *= 2;
    }
    kc_download(e, t.dq, dt, n_dq, img);
    get(img, t.dqv, got, B, H, Tq, D);
    double ea = kc_err(got, dq, nq);
    kc_download(e, t.dk, dt, n_dk, img);
    get(img, t.dkv, got, B, H, Tk, D);
    ea = fmax(ea, kc_err(got, dk, nk));
    kc_download(e, t.dv, dt, n_dv, img);
    get(img, t.dvv, got, B, H, Tk, D);
    ea = fmax(ea, kc_err(got, dv, nk));
    kc_track("attn_bwd accumulate=1 (2x grad)", dt, ea, fmax(tol->dq, tol->dk), desc);

    free(o_bits);
    free(l_bits);
    free(dq_bits);
    free(dk_bits);
    free(dv_bits);
    if (c->fused) {
        clReleaseMemObject(t.q);
        clReleaseMemObject(t.dq);
    } else {
        clReleaseMemObject(t.q);
        clReleaseMemObject(t.k);
        clReleaseMemObject(t.v);
        clReleaseMemObject(t.dq);
        clReleaseMemObject(t.dk);
        clReleaseMemObject(t.dv);
    }
    clReleaseMemObject(t.o);
    clReleaseMemObject(t.g);
    clReleaseMemObject(t.lse);
    clReleaseMemObject(t.delta);
    free(q), free(k), free(v), free(g), free(o), free(lse), free(dq), free(dk), free(dv);
    free(delta), free(g_img), free(img), free(mk), free(got), free(gl);
}

/* The reference backward against central differences of the reference forward, in double,
 * for the loss sum(G * o) with random G, at every input element. */
static void fd_case(int B, int H, int Tq, int Tk, int D, int causal, uint64_t *seed)
{
    const size_t nq = (size_t)B * H * Tq * D, nk = (size_t)B * H * Tk * D;
    const double scale = 0.7, eps = 1e-5;
    double *x[3], *grad[3], *fd[3];
    size_t n[3] = {nq, nk, nk};
    for (int a = 0; a < 3; a++) {
        x[a] = kc_alloc(sizeof(double) * n[a]);
        grad[a] = kc_alloc(sizeof(double) * n[a]);
        fd[a] = kc_alloc(sizeof(double) * n[a]);
        kc_rand(x[a], n[a], -1.5, 1.5, seed);
    }
    double *G = kc_alloc(sizeof(double) * nq), *o = kc_alloc(sizeof(double) * nq);
    kc_rand(G, nq, -1, 1, seed);
    ref_attention_backward(x[0], x[1], x[2], G, grad[0], grad[1], grad[2], B, H, Tq, Tk, D, scale,
                           causal);
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < n[a]; i++) {
            double keep = x[a][i], l[2];
            for (int s = 0; s < 2; s++) {
                x[a][i] = keep + (s ? -eps : eps);
                ref_attention_forward(x[0], x[1], x[2], o, NULL, B, H, Tq, Tk, D, scale, causal);
                l[s] = 0;
                for (size_t j = 0; j < nq; j++)
                    l[s] += G[j] * o[j];
            }
            x[a][i] = keep;
            fd[a][i] = (l[0] - l[1]) / (2 * eps);
        }
    char desc[120];
    snprintf(desc, sizeof desc, "B %d H %d Tq %d Tk %d D %d%s", B, H, Tq, Tk, D,
             causal ? " causal" : "");
    static const char *names[3] = {"ref_attention_backward dq vs FD",
                                   "ref_attention_backward dk vs FD",
                                   "ref_attention_backward dv vs FD"};
    for (int a = 0; a < 3; a++) {
        kc_track(names[a], KC_F64, kc_err(grad[a], fd[a], n[a]), 1e-7, desc);
        free(x[a]), free(grad[a]), free(fd[a]);
    }
    free(G), free(o);
}

/* Test-only: the same math through the full score matrix, one plain kernel per step. */
static const char *naive_src =
    "__kernel void nv_bmm(__global const float *a, __global const float *b, __global float *c,\n"
    "                     ulong batch, int M, int N, int K, int ta, int tb, float alpha)\n"
    "{\n"
    "    const int ai = ta ? 1 : K, ap = ta ? M : 1, bp = tb ? 1 : N, bj = tb ? K : 1;\n"
    "    for (size_t e = get_global_id(0); e < batch * M * N; e += get_global_size(0)) {\n"
    "        ulong bt = e / ((ulong)M * N);\n"
    "        int i = (int)(e / N % M), j = (int)(e % N);\n"
    "        __global const float *pa = a + bt * M * K + i * ai, *pb = b + bt * K * N + j * bj;\n"
    "        float s = 0.0f;\n"
    "        for (int p = 0; p < K; p++)\n"
    "            s += pa[p * ap] * pb[p * bp];\n"
    "        c[e] = alpha * s;\n"
    "    }\n"
    "}\n"
    "__kernel void nv_softmax(__global float *s, ulong rows, int n, int tq, int causal)\n"
    "{\n"
    "    for (size_t r = get_global_id(0); r < rows; r += get_global_size(0)) {\n"
    "        __global float *x = s + r * n;\n"
    "        int lim = causal ? (int)(r % tq) + n - tq : n - 1;\n"
    "        float m = -INFINITY, sum = 0.0f;\n"
    "        for (int j = 0; j <= lim; j++)\n"
    "            m = fmax(m, x[j]);\n"
    "        for (int j = 0; j <= lim; j++)\n"
    "            sum += exp(x[j] - m);\n"
    "        for (int j = 0; j < n; j++)\n"
    "            x[j] = j <= lim ? exp(x[j] - m) / sum : 0.0f;\n"
    "    }\n"
    "}\n"
    "__kernel void nv_softmax_bwd(__global const float *p, __global float *d, ulong rows, int n)\n"
    "{\n"
    "    for (size_t r = get_global_id(0); r < rows; r += get_global_size(0)) {\n"
    "        float s = 0.0f;\n"
    "        for (int j = 0; j < n; j++)\n"
    "            s += p[r * n + j] * d[r * n + j];\n"
    "        for (int j = 0; j < n; j++)\n"
    "            d[r * n + j] = p[r * n + j] * (d[r * n + j] - s);\n"
    "    }\n"
    "}\n";

typedef struct naive {
    cl_kernel bmm, sm, smb;
    cl_mem s, p; /* [BH, T, T] */
} naive;

static void bmm(kc_env *e, naive *nv, cl_mem a, cl_mem b, cl_mem c, int batch, int M, int N, int K,
                int ta, int tb, float alpha)
{
    kc_args g = kc_begin(nv->bmm);
    kc_mem(&g, a);
    kc_mem(&g, b);
    kc_mem(&g, c);
    kc_ul(&g, batch);
    kc_i(&g, M);
    kc_i(&g, N);
    kc_i(&g, K);
    kc_i(&g, ta);
    kc_i(&g, tb);
    kc_f(&g, alpha);
    kc_run(e, nv->bmm, 16 * e->units, LOCAL);
}

static void naive_run(kc_env *e, naive *nv, const abufs *t, int BH, int T, int D, float scale,
                      int causal)
{
    /* forward: s = scale q k^T, p = softmax(s), o = p v */
    bmm(e, nv, t->q, t->k, nv->p, BH, T, T, D, 0, 1, scale);
    kc_args a = kc_begin(nv->sm);
    kc_mem(&a, nv->p);
    kc_ul(&a, (uint64_t)BH * T);
    kc_i(&a, T);
    kc_i(&a, T);
    kc_i(&a, causal);
    kc_run(e, nv->sm, 16 * e->units, LOCAL);
    bmm(e, nv, nv->p, t->v, t->o, BH, T, D, T, 0, 0, 1.0f);
    /* backward: ds = softmax'(g v^T), dq = scale ds k, dk = scale ds^T q, dv = p^T g */
    bmm(e, nv, t->g, t->v, nv->s, BH, T, T, D, 0, 1, 1.0f);
    a = kc_begin(nv->smb);
    kc_mem(&a, nv->p);
    kc_mem(&a, nv->s);
    kc_ul(&a, (uint64_t)BH * T);
    kc_i(&a, T);
    kc_run(e, nv->smb, 16 * e->units, LOCAL);
    bmm(e, nv, nv->s, t->k, t->dq, BH, T, D, T, 0, 0, scale);
    bmm(e, nv, nv->s, t->q, t->dk, BH, T, D, T, 1, 0, scale);
    bmm(e, nv, nv->p, t->g, t->dv, BH, T, D, T, 1, 0, 1.0f);
}

static double median3(double a, double b, double c)
{
    return a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
}

/* Fused vs full score matrix, f32, B 8 H 4 T 256 D 64 non-causal: printed, not asserted. */
static void bench(kc_env *e, akern *gen, akern *d64, cl_program naive_prog, uint64_t *seed)
{
    const int B = 8, H = 4, T = 256, D = 64, causal = 0, BH = B * H;
    const size_t n = (size_t)BH * T * D, nr = (size_t)BH * T, groups = 4 * e->units;
    const float scale = 0.125f;
    acase c = {B, H, T, T, D, causal, 0}, tiny = {1, 1, 8, 8, D, causal, 0};
    double *x = kc_alloc(sizeof(double) * n);
    view cv = {0, (long)H * T * D, (long)T * D, D};
    abufs f, w; /* fused and full-matrix outputs */
    kc_rand(x, n, -1.5, 1.5, seed);
    f.q = kc_upload_f32(e, x, n);
    kc_rand(x, n, -1.5, 1.5, seed);
    f.k = kc_upload_f32(e, x, n);
    kc_rand(x, n, -1, 1, seed);
    f.v = kc_upload_f32(e, x, n);
    kc_rand(x, n, -1, 1, seed);
    f.g = kc_upload_f32(e, x, n);
    f.qv = f.kv = f.vv = f.ov = f.gv = f.dqv = f.dkv = f.dvv = cv;
    w = f;
    f.o = kc_buf(e, 4 * n), f.dq = kc_buf(e, 4 * n), f.dk = kc_buf(e, 4 * n);
    f.dv = kc_buf(e, 4 * n), f.lse = kc_buf(e, 4 * nr), f.delta = kc_buf(e, 4 * nr);
    w.o = kc_buf(e, 4 * n), w.dq = kc_buf(e, 4 * n), w.dk = kc_buf(e, 4 * n);
    w.dv = kc_buf(e, 4 * n);
    naive nv = {kc_kernel(naive_prog, "nv_bmm"), kc_kernel(naive_prog, "nv_softmax"),
                kc_kernel(naive_prog, "nv_softmax_bwd"), kc_buf(e, 4 * nr * T),
                kc_buf(e, 4 * nr * T)};

    /* PoCL compiles a kernel's work-group function at its first launch: launch each once on
     * a tiny problem with the same grid first, so no timing includes a compile */
    run_fwd(e, gen, &f, &tiny, scale, groups);
    run_bwd(e, gen, &f, &tiny, scale, 0, groups);
    run_fwd(e, d64, &f, &tiny, scale, groups);
    run_bwd(e, d64, &f, &tiny, scale, 0, groups);
    naive_run(e, &nv, &w, 1, 8, D, scale, causal);

    enum { ROUNDS = 3 };
    double tf[ROUNDS], tb[ROUNDS], td[ROUNDS], tn[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) { /* interleaved: drift on a shared machine hits all */
        double t0 = kc_now();
        run_fwd(e, gen, &f, &c, scale, groups);
        double t1 = kc_now();
        run_bwd(e, gen, &f, &c, scale, 0, groups);
        double t2 = kc_now();
        run_fwd(e, d64, &f, &c, scale, groups);
        run_bwd(e, d64, &f, &c, scale, 0, groups);
        double t3 = kc_now();
        naive_run(e, &nv, &w, BH, T, D, scale, causal);
        double t4 = kc_now();
        tf[r] = t1 - t0, tb[r] = t2 - t1, td[r] = t3 - t2, tn[r] = t4 - t3;
    }
    double mf = median3(tf[0], tf[1], tf[2]), mb = median3(tb[0], tb[1], tb[2]);
    double md = median3(td[0], td[1], td[2]), mn = median3(tn[0], tn[1], tn[2]);
    double mg = median3(tf[0] + tb[0], tf[1] + tb[1], tf[2] + tb[2]);
    printf("timing (printed, not asserted): attention forward + backward, f32, B 8 H 4 T 256 "
           "D 64, non-causal, PoCL, local 64, %zu groups; median of %d interleaved runs\n",
           groups, ROUNDS);
    printf("  fused, generic D         %8.1f ms  (forward %.1f, backward %.1f)\n", 1e3 * mg,
           1e3 * mf, 1e3 * mb);
    printf("  fused, -DOKTO_ATT_D=64   %8.1f ms\n", 1e3 * md);
    printf("  full score matrix        %8.1f ms  (plain kernels: batched matmul, softmax)\n",
           1e3 * mn);
    printf("  ratio full / fused: %.2f (generic), %.2f (-DOKTO_ATT_D=64)\n", mn / mg, mn / md);

    /* the two compute the same thing (float vs float in different orders) */
    double *a = kc_alloc(sizeof(double) * n), *b = kc_alloc(sizeof(double) * n);
    cl_mem fo[4] = {f.o, f.dq, f.dk, f.dv}, wo[4] = {w.o, w.dq, w.dk, w.dv};
    double agree = 0;
    for (int i = 0; i < 4; i++) {
        kc_download_f32(e, fo[i], n, a);
        kc_download_f32(e, wo[i], n, b);
        agree = fmax(agree, kc_err(a, b, n));
    }
    kc_track("bench: fused vs full-matrix outputs", KC_F32, agree, 1e-4, "B 8 H 4 T 256 D 64");
    /* f holds the -DOKTO_ATT_D=64 results: the generic build gives the same bits */
    void *bits[4];
    for (int i = 0; i < 4; i++)
        bits[i] = snapshot(e, fo[i], 4 * n);
    run_fwd(e, gen, &f, &c, scale, groups);
    run_bwd(e, gen, &f, &c, scale, 0, groups);
    int same = 1;
    for (int i = 0; i < 4; i++) {
        same &= bits_equal(e, fo[i], 4 * n, bits[i]);
        free(bits[i]);
    }
    kc_track_exact("bench: -DOKTO_ATT_D=64 same bits as generic", KC_F32, same,
                   "B 8 H 4 T 256 D 64");

    free(x), free(a), free(b);
    cl_mem all[] = {f.q,   f.k,     f.v, f.g,  f.o,  f.dq, f.dk, f.dv,
                    f.lse, f.delta, w.o, w.dq, w.dk, w.dv, nv.s, nv.p};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clReleaseMemObject(all[i]);
    clReleaseKernel(nv.bmm);
    clReleaseKernel(nv.sm);
    clReleaseKernel(nv.smb);
}

int main(int argc, char **argv)
{
    int bench_only = argc > 1 && !strcmp(argv[1], "--bench");
    kc_env e;
    kc_init(&e);
    uint64_t seed = 12345;
    double t0 = kc_now();
    static const acase cases[] = {
        {1, 1, 1, 1, 1, 0, 0},      {3, 2, 1, 1, 16, 1, 0},     {3, 2, 7, 7, 5, 1, 0},
        {3, 2, 7, 13, 5, 0, 0},     {1, 3, 13, 7, 16, 0, 0},    {1, 2, 13, 13, 128, 1, 0},
        {3, 2, 13, 13, 64, 0, 1},   {1, 2, 257, 257, 64, 1, 1}, {1, 1, 257, 13, 32, 0, 0},
        {1, 1, 1, 257, 8, 0, 0},    {3, 1, 7, 13, 8, 1, 0},     {1, 1, 13, 7, 8, 1, 0},
        {1, 1, 257, 257, 17, 0, 0}, {1, 1, 70, 70, 100, 1, 0},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    if (bench_only) {
        cl_program g = kc_build(&e, "attention.cl", KC_F32, NULL);
        cl_program d = kc_build(&e, "attention.cl", KC_F32, "-DOKTO_ATT_D=64");
        cl_program nvp = kc_build_src(&e, "naive attention", naive_src, KC_F32, NULL);
        akern gk = kernels(g), dk = kernels(d);
        bench(&e, &gk, &dk, nvp, &seed);
        free_kernels(&gk);
        free_kernels(&dk);
        clReleaseProgram(g);
        clReleaseProgram(d);
        clReleaseProgram(nvp);
    } else {
        fd_case(1, 2, 5, 7, 3, 0, &seed);
        fd_case(2, 1, 6, 6, 3, 1, &seed);
        fd_case(1, 1, 4, 7, 2, 1, &seed); /* Tq < Tk causal: ends aligned */
        fd_case(1, 1, 7, 4, 2, 1, &seed); /* Tq > Tk causal: the first 3 queries see nothing */
        for (int dt = KC_F32; dt <= KC_BF16; dt++) {
            cl_program p = kc_build(&e, "attention.cl", dt, NULL);
            akern kk = kernels(p);
            check_geometry = dt == KC_F32;
            for (int i = 0; i < ncases; i++)
                check_case(&e, &kk, dt, &cases[i], &seed);
            check_geometry = 0;
            free_kernels(&kk);
            clReleaseProgram(p);
        }
        /* the compile-time head dim: as good as the generic build (the bench checks bits) */
        cl_program p = kc_build(&e, "attention.cl", KC_F32, "-DOKTO_ATT_D=64");
        akern kk = kernels(p);
        check_case(&e, &kk, KC_F32, &cases[6], &seed);
        check_case(&e, &kk, KC_F32, &cases[7], &seed);
        free_kernels(&kk);
        clReleaseProgram(p);
    }
    printf("total %.1f s\n", kc_now() - t0);
    int rc = kc_status();
    kc_free(&e);
    return rc;
}
