/* tests/kernels/check_conv.c: cl/conv.cl against tests/ref/ref_conv.c on PoCL.
 *
 * The GEMMs that the library leaves to CLBlast are done here on the host in double, on the
 * kernels' own outputs, with the result rounded to the dtype as a dtype GEMM would store it.
 * For each geometry, dtype and column layout (per image, one GEMM):
 *   im2col against ref_im2col (an exact copy: bits), nothing written outside cols;
 *   conv forward = im2col + GEMM + bias_add against the direct convolution;
 *   col2im against ref_col2im on the same (rounded) column gradient, and conv dx = GEMM +
 *   col2im against the direct backward; dW = GEMM on im2col's columns against the direct dW;
 *   bias_grad (partials + reduce) against the direct db;
 *   accumulate = 1 giving twice the gradient; bits equal on a rerun and with a small grid
 *   (items looping over rows).
 * The reference backward (dx, dW, db, col2im) is checked against central differences of the
 * reference forward in double. */
#include "kcheck.h"
#include "ref_conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL 64
#define SENTINEL 1024.0
#define COLS_OFF 3 /* cols start after a few sentinels */

/* tolerances (kc_err: max |err| / max |ref|); each is a few times the largest error seen */
typedef struct conv_tol {
    double fwd, bias, col2im, dx, db;
} conv_tol;
static const conv_tol tols[3] = {
    /* f32: float sums; the GEMM result is rounded to float once (seen: 6e-8 .. 4e-7) */
    {5e-7, 5e-7, 5e-7, 5e-7, 1e-6},
    /* f16: y rounded after the GEMM and after the bias, 2^-11 = 4.9e-4 each; dcols rounded
     * before col2im (seen: 4e-4 .. 7e-4) */
    {1e-3, 1e-3, 1e-3, 2e-3, 1e-3},
    /* bf16: the same at 2^-8 = 3.9e-3 (seen: 3e-3 .. 4.3e-3) */
    {1e-2, 8e-3, 8e-3, 1.2e-2, 8e-3},
};

typedef struct kcase {
    int N, C, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw;
} kcase;

typedef struct ckern {
    cl_kernel im2col, col2im, bias_add, bgp, bgr;
} ckern;

static size_t rows_groups(size_t rows) { return (rows + LOCAL - 1) / LOCAL; }

static void geom_args(kc_args *a, const ref_conv_geom *g)
{
    kc_ul(a, g->N);
    kc_i(a, g->C);
    kc_i(a, g->H);
    kc_i(a, g->W);
    kc_i(a, g->KH);
    kc_i(a, g->KW);
    kc_i(a, g->sh);
    kc_i(a, g->sw);
    kc_i(a, g->ph);
    kc_i(a, g->pw);
    kc_i(a, g->dh);
    kc_i(a, g->dw);
    kc_i(a, g->OH);
    kc_i(a, g->OW);
}

/* groups 0: one item per row (padded grid); else that many groups of LOCAL (items loop) */
static void run_im2col(kc_env *e, ckern *k, cl_mem x, cl_mem cols, const ref_conv_geom *g,
                       size_t ld, size_t ns, size_t groups)
{
    kc_args a = kc_begin(k->im2col);
    kc_mem(&a, x);
    kc_ul(&a, 0);
    kc_mem(&a, cols);
    kc_ul(&a, COLS_OFF);
    geom_args(&a, g);
    kc_ul(&a, ld);
    kc_ul(&a, ns);
    size_t rows = (size_t)g->C * g->KH * g->KW * g->N * g->OH;
    kc_run(e, k->im2col, groups ? groups : rows_groups(rows), LOCAL);
}

static void run_col2im(kc_env *e, ckern *k, cl_mem cols, cl_mem dx, const ref_conv_geom *g,
                       size_t ld, size_t ns, int accumulate, size_t groups)
{
    kc_args a = kc_begin(k->col2im);
    kc_mem(&a, cols);
    kc_ul(&a, COLS_OFF);
    kc_mem(&a, dx);
    kc_ul(&a, 0);
    geom_args(&a, g);
    kc_ul(&a, ld);
    kc_ul(&a, ns);
    kc_i(&a, accumulate);
    size_t rows = (size_t)g->N * g->C * g->H;
    kc_run(e, k->col2im, groups ? groups : rows_groups(rows), LOCAL);
}

static void run_bias_grad(kc_env *e, ckern *k, cl_mem dy, cl_mem part, cl_mem db, size_t N,
                          size_t C, size_t HW, long sn, long sc, int accumulate, size_t local)
{
    kc_args a = kc_begin(k->bgp);
    kc_mem(&a, dy);
    kc_ul(&a, 0);
    kc_mem(&a, part);
    kc_ul(&a, 0);
    kc_ul(&a, N);
    kc_ul(&a, C);
    kc_ul(&a, HW);
    kc_l(&a, sn);
    kc_l(&a, sc);
    /* one item per plane; local size 1 runs a smaller grid (items loop over the planes) */
    kc_run(e, k->bgp, local == 1 ? 4 * e->units : rows_groups(N * C), local);
    a = kc_begin(k->bgr);
    kc_mem(&a, part);
    kc_ul(&a, 0);
    kc_mem(&a, db);
    kc_ul(&a, 0);
    kc_ul(&a, N);
    kc_ul(&a, C);
    kc_i(&a, accumulate);
    kc_run(e, k->bgr, rows_groups(C), LOCAL);
}

static int same_bits(kc_env *e, cl_mem m, size_t bytes, const void *ref)
{
    void *now = kc_alloc(bytes);
    kc_read_bytes(e, m, bytes, now);
    int eq = !memcmp(now, ref, bytes);
    free(now);
    return eq;
}

static void *bits_of(kc_env *e, cl_mem m, size_t bytes)
{
    void *p = kc_alloc(bytes);
    kc_read_bytes(e, m, bytes, p);
    return p;
}

static double *dalloc(size_t n) { return kc_alloc(sizeof(double) * (n ? n : 1)); }

static void check_case(kc_env *e, ckern *k, int dt, const kcase *kc, int big, uint64_t *seed)
{
    ref_conv_geom g = {kc->N,  kc->C,  kc->H,  kc->W,  kc->Cout, kc->KH, kc->KW, kc->sh,
                       kc->sw, kc->ph, kc->pw, kc->dh, kc->dw,   0,      0};
    g.OH = ref_conv_out(g.H, g.KH, g.sh, g.ph, g.dh);
    g.OW = ref_conv_out(g.W, g.KW, g.sw, g.pw, g.dw);
    const size_t N = g.N, P = (size_t)g.OH * g.OW, K = (size_t)g.C * g.KH * g.KW;
    const size_t nx = N * g.C * g.H * g.W, nw = (size_t)g.Cout * K, ny = N * g.Cout * P;
    const size_t ncols = K * N * P, es = kc_dt_size(dt);
    const size_t ld = big ? N * P : P, ns = big ? P : K * P;
    const conv_tol *tol = &tols[dt];
    char desc[200];
    snprintf(desc, sizeof desc,
             "N %d C %d %dx%d Cout %d k %dx%d s %d,%d p %d,%d d %d,%d -> %dx%d, %s layout", g.N,
             g.C, g.H, g.W, g.Cout, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.OH, g.OW,
             big ? "one-GEMM [K, N P]" : "per-image [N, K, P]");

    double *x = dalloc(nx), *w = dalloc(nw), *b = dalloc(g.Cout), *dy = dalloc(ny);
    kc_rand(x, nx, -1, 1, seed);
    kc_rand(w, nw, -1, 1, seed);
    kc_rand(b, g.Cout, -1, 1, seed);
    kc_rand(dy, ny, -1, 1, seed);
    kc_round_all(dt, x, nx);
    kc_round_all(dt, w, nw);
    kc_round_all(dt, b, g.Cout);
    kc_round_all(dt, dy, ny);
    double *y_ref = dalloc(ny), *dx_ref = dalloc(nx), *dw_ref = dalloc(nw);
    double *db_ref = dalloc(g.Cout), *cols_ref = dalloc(ncols);
    ref_conv2d_forward(&g, x, w, b, y_ref);
    ref_conv2d_backward(&g, x, w, dy, dx_ref, dw_ref, db_ref);
    ref_im2col(&g, x, cols_ref, ld, ns);

    /* im2col: an exact copy of the (rounded) inputs and zeros */
    cl_mem xm = kc_upload(e, dt, x, nx);
    double *img = dalloc(COLS_OFF + ncols);
    for (size_t i = 0; i < COLS_OFF + ncols; i++)
        img[i] = SENTINEL;
    cl_mem cm = kc_upload(e, dt, img, COLS_OFF + ncols);
    run_im2col(e, k, xm, cm, &g, ld, ns, 0);
    kc_download(e, cm, dt, COLS_OFF + ncols, img);
    int exact = 1;
    for (size_t i = 0; i < COLS_OFF; i++)
        exact &= img[i] == SENTINEL;
    kc_track_exact("im2col writes only cols", dt, exact, desc);
    double *cols = img + COLS_OFF;
    exact = !memcmp(cols, cols_ref, sizeof(double) * ncols);
    kc_track_exact("im2col (exact copy)", dt, exact, desc);
    void *cbits = bits_of(e, cm, (COLS_OFF + ncols) * es);
    run_im2col(e, k, xm, cm, &g, ld, ns, 2);
    kc_track_exact("im2col same bits, small grid", dt,
                   same_bits(e, cm, (COLS_OFF + ncols) * es, cbits), desc);
    free(cbits);

    /* forward: y = W x cols (host, rounded to the dtype as a dtype GEMM stores it), then
     * bias_add in place; y is NCHW (per image) or CNHW (one GEMM) */
    double *y = dalloc(ny), *yb = dalloc(ny), *got = dalloc(ny > nx ? ny : nx);
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < g.Cout; o++)
            for (size_t p = 0; p < P; p++) {
                double s = 0;
                for (size_t r = 0; r < K; r++)
                    s += w[o * K + r] * cols[r * ld + n * ns + p];
                size_t yi = big ? ((size_t)o * N + n) * P + p : (n * g.Cout + o) * P + p;
                y[yi] = kc_round(dt, s);
            }
    long sn = big ? (long)P : (long)(g.Cout * P), sc = big ? (long)(N * P) : (long)P;
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < g.Cout; o++)
            for (size_t p = 0; p < P; p++)
                yb[n * sn + o * sc + p] = y[n * sn + o * sc + p] + b[o];
    cl_mem ym = kc_upload(e, dt, y, ny), bm = kc_upload(e, dt, b, g.Cout);
    kc_args a = kc_begin(k->bias_add);
    kc_mem(&a, ym);
    kc_ul(&a, 0);
    kc_mem(&a, bm);
    kc_ul(&a, 0);
    kc_mem(&a, ym);
    kc_ul(&a, 0);
    kc_ul(&a, N);
    kc_ul(&a, g.Cout);
    kc_ul(&a, P);
    kc_l(&a, sn);
    kc_l(&a, sc);
    kc_l(&a, sn);
    kc_l(&a, sc);
    kc_i(&a, 1);
    kc_run(e, k->bias_add, rows_groups(N * g.Cout), LOCAL);
    kc_download(e, ym, dt, ny, got);
    kc_track("bias_add (vs y + b in double)", dt, kc_err(got, yb, ny), tol->bias, desc);
    {
        /* the one-GEMM path's permute: y (this layout) to the other layout, with the bias
         * and without (has_bias 0: a plain copy) */
        long on = big ? (long)(g.Cout * P) : (long)P, oc = big ? (long)P : (long)(N * P);
        double *want = dalloc(ny), *pg = dalloc(ny);
        cl_mem src = kc_upload(e, dt, y, ny), dst = kc_buf(e, ny * es);
        for (int hb = 0; hb < 2; hb++) {
            for (size_t n = 0; n < N; n++)
                for (int o = 0; o < g.Cout; o++)
                    for (size_t p = 0; p < P; p++)
                        want[n * on + o * oc + p] = y[n * sn + o * sc + p] + (hb ? b[o] : 0.0);
            a = kc_begin(k->bias_add);
            kc_mem(&a, src);
            kc_ul(&a, 0);
            kc_mem(&a, bm);
            kc_ul(&a, 0);
            kc_mem(&a, dst);
            kc_ul(&a, 0);
            kc_ul(&a, N);
            kc_ul(&a, g.Cout);
            kc_ul(&a, P);
            kc_l(&a, sn);
            kc_l(&a, sc);
            kc_l(&a, on);
            kc_l(&a, oc);
            kc_i(&a, hb);
            kc_run(e, k->bias_add, rows_groups(N * g.Cout), LOCAL);
            kc_download(e, dst, dt, ny, pg);
            kc_track(hb ? "bias_add permuting (NCHW <-> CNHW, + b)" : "bias_add as a permute (no bias)",
                     dt, kc_err(pg, want, ny), hb ? tol->bias : 0.0, desc);
        }
        clReleaseMemObject(src);
        clReleaseMemObject(dst);
        free(want);
        free(pg);
    }
    for (size_t n = 0; n < N; n++) /* to NCHW for the direct convolution */
        for (int o = 0; o < g.Cout; o++)
            for (size_t p = 0; p < P; p++)
                yb[(n * g.Cout + o) * P + p] = got[n * sn + o * sc + p];
    kc_track("conv fwd: im2col + GEMM + bias_add", dt, kc_err(yb, y_ref, ny), tol->fwd, desc);

    /* dW = sum_n dy[n] x cols[n]^T on im2col's columns (checks the layout) */
    double *dw = dalloc(nw);
    for (int o = 0; o < g.Cout; o++)
        for (size_t r = 0; r < K; r++) {
            double s = 0;
            for (size_t n = 0; n < N; n++)
                for (size_t p = 0; p < P; p++)
                    s += dy[(n * g.Cout + o) * P + p] * cols[r * ld + n * ns + p];
            dw[o * K + r] = s;
        }
    kc_track("conv bwd dW: GEMM on im2col cols", dt, kc_err(dw, dw_ref, nw), 1e-12, desc);

    /* dcols = W^T x dy (host, rounded), col2im -> dx */
    double *dcols = dalloc(ncols), *dx_c2i = dalloc(nx);
    for (size_t r = 0; r < K; r++)
        for (size_t n = 0; n < N; n++)
            for (size_t p = 0; p < P; p++) {
                double s = 0;
                for (int o = 0; o < g.Cout; o++)
                    s += w[o * K + r] * dy[(n * g.Cout + o) * P + p];
                dcols[r * ld + n * ns + p] = kc_round(dt, s);
            }
    ref_col2im(&g, dcols, dx_c2i, ld, ns);
    for (size_t i = 0; i < ncols; i++)
        img[COLS_OFF + i] = dcols[i];
    kc_write(e, cm, dt, img, COLS_OFF + ncols);
    cl_mem dxm = kc_buf(e, nx * es);
    run_col2im(e, k, cm, dxm, &g, ld, ns, 0, 0);
    kc_download(e, dxm, dt, nx, got);
    kc_track("col2im (vs ref_col2im, same dcols)", dt, kc_err(got, dx_c2i, nx), tol->col2im, desc);
    kc_track("conv bwd dx: GEMM + col2im", dt, kc_err(got, dx_ref, nx), tol->dx, desc);
    void *xbits = bits_of(e, dxm, nx * es);
    run_col2im(e, k, cm, dxm, &g, ld, ns, 0, 0);
    int same = same_bits(e, dxm, nx * es, xbits);
    run_col2im(e, k, cm, dxm, &g, ld, ns, 0, 2);
    same &= same_bits(e, dxm, nx * es, xbits);
    kc_track_exact("col2im same bits twice and with a small grid", dt, same, desc);
    run_col2im(e, k, cm, dxm, &g, ld, ns, 1, 0);
    kc_download(e, dxm, dt, nx, got);
    for (size_t i = 0; i < nx; i++)
        dx_c2i[i] *= 2;
    kc_track("col2im accumulate=1 (2x grad)", dt, kc_err(got, dx_c2i, nx), tol->col2im, desc);
    free(xbits);

    /* bias gradient over dy in y's layout */
    double *dyl = dalloc(ny);
    for (size_t n = 0; n < N; n++)
        for (int o = 0; o < g.Cout; o++)
            for (size_t p = 0; p < P; p++)
                dyl[n * sn + o * sc + p] = dy[(n * g.Cout + o) * P + p];
    cl_mem dym = kc_upload(e, dt, dyl, ny), part = kc_buf(e, 4 * N * g.Cout);
    cl_mem dbm = kc_buf(e, g.Cout * es);
    double *db = dalloc(g.Cout);
    run_bias_grad(e, k, dym, part, dbm, N, g.Cout, P, sn, sc, 0, LOCAL);
    kc_download(e, dbm, dt, g.Cout, db);
    kc_track("bias_grad (partial + reduce)", dt, kc_err(db, db_ref, g.Cout), tol->db, desc);
    void *bbits = bits_of(e, dbm, g.Cout * es);
    run_bias_grad(e, k, dym, part, dbm, N, g.Cout, P, sn, sc, 0, LOCAL);
    kc_track_exact("bias_grad same bits twice", dt, same_bits(e, dbm, g.Cout * es, bbits), desc);
    run_bias_grad(e, k, dym, part, dbm, N, g.Cout, P, sn, sc, 1, LOCAL);
    kc_download(e, dbm, dt, g.Cout, db);
    for (int o = 0; o < g.Cout; o++)
        db_ref[o] *= 2;
    kc_track("bias_grad accumulate=1 (2x grad)", dt, kc_err(db, db_ref, g.Cout), tol->db, desc);
    if (dt == KC_F32) { /* local size 1: one item per plane */
        run_bias_grad(e, k, dym, part, dbm, N, g.Cout, P, sn, sc, 0, 1);
        kc_download(e, dbm, dt, g.Cout, db);
        for (int o = 0; o < g.Cout; o++)
            db_ref[o] /= 2;
        kc_track("bias_grad at local size 1", dt, kc_err(db, db_ref, g.Cout), tol->db, desc);
    }
    free(bbits);

    cl_mem all[] = {xm, cm, ym, bm, dxm, dym, part, dbm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        clReleaseMemObject(all[i]);
    free(x), free(w), free(b), free(dy), free(y_ref), free(dx_ref), free(dw_ref), free(db_ref);
    free(cols_ref), free(img), free(y), free(yb), free(got), free(dw), free(dcols), free(dx_c2i);
    free(dyl), free(db);
}

/* loss = sum(G * y): the reference backward and col2im against central differences */
static void fd_check(const kcase *kc, uint64_t *seed)
{
    ref_conv_geom g = {kc->N,  kc->C,  kc->H,  kc->W,  kc->Cout, kc->KH, kc->KW, kc->sh,
                       kc->sw, kc->ph, kc->pw, kc->dh, kc->dw,   0,      0};
    g.OH = ref_conv_out(g.H, g.KH, g.sh, g.ph, g.dh);
    g.OW = ref_conv_out(g.W, g.KW, g.sw, g.pw, g.dw);
    const size_t P = (size_t)g.OH * g.OW, K = (size_t)g.C * g.KH * g.KW;
    const size_t nx = (size_t)g.N * g.C * g.H * g.W, nw = g.Cout * K, ny = g.N * g.Cout * P;
    const double eps = 1e-5;
    double *x = dalloc(nx), *w = dalloc(nw), *b = dalloc(g.Cout), *G = dalloc(ny);
    double *y = dalloc(ny), *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc(g.Cout);
    kc_rand(x, nx, -1, 1, seed);
    kc_rand(w, nw, -1, 1, seed);
    kc_rand(b, g.Cout, -1, 1, seed);
    kc_rand(G, ny, -1, 1, seed);
    ref_conv2d_backward(&g, x, w, G, dx, dw, db);
    double *vars[3] = {x, w, b}, *grads[3] = {dx, dw, db};
    size_t ns[3] = {nx, nw, (size_t)g.Cout};
    static const char *names[3] = {"ref_conv2d_backward dx vs FD", "ref_conv2d_backward dW vs FD",
                                   "ref_conv2d_backward db vs FD"};
    for (int v = 0; v < 3; v++) {
        double *fd = dalloc(ns[v]);
        for (size_t i = 0; i < ns[v]; i++) {
            double keep = vars[v][i], l[2];
            for (int s = 0; s < 2; s++) {
                vars[v][i] = keep + (s ? -eps : eps);
                ref_conv2d_forward(&g, x, w, b, y);
                l[s] = 0;
                for (size_t j = 0; j < ny; j++)
                    l[s] += G[j] * y[j];
            }
            vars[v][i] = keep;
            fd[i] = (l[0] - l[1]) / (2 * eps);
        }
        kc_track(names[v], KC_F64, kc_err(grads[v], fd, ns[v]), 1e-8, "small geometry");
        free(fd);
    }
    /* col2im is the gradient of sum(C * im2col(x)) */
    const size_t ncols = K * g.N * P;
    double *C = dalloc(ncols), *cols = dalloc(ncols), *c2i = dalloc(nx), *fd = dalloc(nx);
    kc_rand(C, ncols, -1, 1, seed);
    ref_col2im(&g, C, c2i, P, K * P);
    for (size_t i = 0; i < nx; i++) {
        double keep = x[i], l[2];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (s ? -eps : eps);
            ref_im2col(&g, x, cols, P, K * P);
            l[s] = 0;
            for (size_t j = 0; j < ncols; j++)
                l[s] += C[j] * cols[j];
        }
        x[i] = keep;
        fd[i] = (l[0] - l[1]) / (2 * eps);
    }
    kc_track("ref_col2im vs FD of ref_im2col", KC_F64, kc_err(c2i, fd, nx), 1e-8, "small geometry");
    free(x), free(w), free(b), free(G), free(y), free(dx), free(dw), free(db);
    free(C), free(cols), free(c2i), free(fd);
}

int main(void)
{
    kc_env e;
    kc_init(&e);
    uint64_t seed = 777;
    double t0 = kc_now();

    static const kcase fd_cases[] = {
        {2, 2, 5, 4, 3, 3, 3, 2, 1, 1, 2, 2, 1},
        {1, 2, 5, 7, 2, 3, 2, 1, 2, 0, 1, 1, 2},
    };
    for (int i = 0; i < 2; i++)
        fd_check(&fd_cases[i], &seed);

    /* N, C, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw */
    static const kcase cases[] = {
        {1, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0, 1, 1},   /* 1x1 image, 1x1 kernel */
        {3, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1},   /* 1x1 image, 3x3 kernel, pad 1 */
        {3, 3, 5, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1},   /* stride 2 */
        {1, 2, 5, 7, 3, 5, 3, 1, 2, 2, 0, 1, 1},   /* 5x3 kernel, strides 1,2 */
        {3, 2, 5, 7, 2, 3, 3, 1, 1, 2, 2, 2, 2},   /* dilation 2, pad 2 */
        {3, 2, 5, 7, 3, 5, 5, 2, 1, 2, 1, 1, 2},   /* 5x5, mixed */
        {1, 3, 32, 32, 4, 5, 5, 2, 2, 2, 2, 2, 2}, /* 32x32, 5x5 dilated, stride 2 */
        {3, 4, 32, 32, 5, 3, 3, 1, 1, 1, 1, 1, 1}, /* 32x32, 3x3 */
        {1, 3, 32, 32, 2, 1, 1, 2, 2, 0, 0, 1, 1}, /* 1x1 kernel, stride 2 */
        {1, 1, 33, 40, 1, 3, 3, 1, 1, 0, 0, 1, 1}, /* W > the col2im tile (32) */
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build(&e, "conv.cl", dt, NULL);
        ckern k = {kc_kernel(p, "okto_im2col"), kc_kernel(p, "okto_col2im"),
                   kc_kernel(p, "okto_bias_add"), kc_kernel(p, "okto_bias_grad_partial"),
                   kc_kernel(p, "okto_bias_grad_reduce")};
        for (int i = 0; i < ncases; i++)
            for (int big = 0; big < 2; big++)
                check_case(&e, &k, dt, &cases[i], big, &seed);
        clReleaseKernel(k.im2col);
        clReleaseKernel(k.col2im);
        clReleaseKernel(k.bias_add);
        clReleaseKernel(k.bgp);
        clReleaseKernel(k.bgr);
        clReleaseProgram(p);
    }
    /* the host's precondition: a kernel larger than the padded input has no output */
    kc_track_exact("bad geometry (k 5 on 3 + 2x0 pad) gives OH < 1", KC_F64,
                   ref_conv_out(3, 5, 1, 0, 1) < 1 && ref_conv_out(1, 3, 1, 0, 2) < 1,
                   "host refuses");
    printf("total %.1f s\n", kc_now() - t0);
    int rc = kc_status();
    kc_free(&e);
    return rc;
}
