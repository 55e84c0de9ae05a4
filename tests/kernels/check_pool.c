/* tests/kernels/check_pool.c: cl/pool.cl against tests/ref/ref_pool.c on PoCL.
 *
 * For each geometry (floor and ceil mode) and dtype: max pool forward (values and argmax
 * exactly: a max of stored values is one of them, and ties break the same way) and backward;
 * average pool forward and backward with count_include_pad on and off; global average pooling
 * forward and backward. Every backward: against the reference backward, accumulate = 1 giving
 * twice the gradient, bits equal on a rerun and with a small grid. The reference backward
 * passes are checked against central differences of the reference forward in double, and the
 * average pool divisors against values worked out by hand from PyTorch's definition. */
#include "kcheck.h"
#include "ref_pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL 64

/* tolerances (kc_err: max |err| / max |ref|): the outputs are stored in the dtype (2^-24,
 * 2^-11, 2^-8 relative), the sums are float; each a few times the largest error seen */
typedef struct pool_tol {
    double avg, avg_bwd, max_bwd, gap, gap_bwd;
} pool_tol;
static const pool_tol tols[3] = {
    {5e-7, 5e-7, 5e-7, 5e-7, 5e-7},
    {1e-3, 1e-3, 1e-3, 1e-3, 1e-3},
    {8e-3, 8e-3, 8e-3, 8e-3, 8e-3},
};

typedef struct pcase {
    int N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, ceil;
} pcase;

typedef struct pkern {
    cl_kernel maxf, maxb, avgf, avgb, gapf, gapb;
} pkern;

/* PyTorch's output size: floor, or ceil less one when the last window starts in the right
 * padding */
static int pool_out(int in, int k, int s, int p, int d, int ceil_mode)
{
    int span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0)
        return 0;
    int o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

static size_t groups_for(size_t rows, size_t small)
{
    return small ? small : (rows + LOCAL - 1) / LOCAL;
}

static void geo_args(kc_args *a, const ref_pool_geom *g, int dil)
{
    kc_ul(a, g->NC);
    kc_i(a, g->H);
    kc_i(a, g->W);
    kc_i(a, g->OH);
    kc_i(a, g->OW);
    kc_i(a, g->KH);
    kc_i(a, g->KW);
    kc_i(a, g->sh);
    kc_i(a, g->sw);
    kc_i(a, g->ph);
    kc_i(a, g->pw);
    if (dil) {
        kc_i(a, g->dh);
        kc_i(a, g->dw);
    }
}

static void run_maxf(kc_env *e, pkern *k, cl_mem x, cl_mem y, cl_mem arg, const ref_pool_geom *g)
{
    kc_args a = kc_begin(k->maxf);
    kc_mem(&a, x);
    kc_ul(&a, 0);
    kc_mem(&a, y);
    kc_ul(&a, 0);
    kc_mem(&a, arg);
    kc_ul(&a, 0);
    geo_args(&a, g, 1);
    kc_run(e, k->maxf, groups_for((size_t)g->NC * g->OH, 0), LOCAL);
}

static void run_maxb(kc_env *e, pkern *k, cl_mem dy, cl_mem arg, cl_mem dx, const ref_pool_geom *g,
                     int acc, size_t small)
{
    kc_args a = kc_begin(k->maxb);
    kc_mem(&a, dy);
    kc_ul(&a, 0);
    kc_mem(&a, arg);
    kc_ul(&a, 0);
    kc_mem(&a, dx);
    kc_ul(&a, 0);
    geo_args(&a, g, 1);
    kc_i(&a, acc);
    kc_run(e, k->maxb, groups_for((size_t)g->NC * g->H, small), LOCAL);
}

static void run_avgf(kc_env *e, pkern *k, cl_mem x, cl_mem y, const ref_pool_geom *g, int cip)
{
    kc_args a = kc_begin(k->avgf);
    kc_mem(&a, x);
    kc_ul(&a, 0);
    kc_mem(&a, y);
    kc_ul(&a, 0);
    geo_args(&a, g, 0);
    kc_i(&a, cip);
    kc_run(e, k->avgf, groups_for((size_t)g->NC * g->OH, 0), LOCAL);
}

static void run_avgb(kc_env *e, pkern *k, cl_mem dy, cl_mem dx, const ref_pool_geom *g, int cip,
                     int acc, size_t small)
{
    kc_args a = kc_begin(k->avgb);
    kc_mem(&a, dy);
    kc_ul(&a, 0);
    kc_mem(&a, dx);
    kc_ul(&a, 0);
    geo_args(&a, g, 0);
    kc_i(&a, cip);
    kc_i(&a, acc);
    kc_run(e, k->avgb, groups_for((size_t)g->NC * g->H, small), LOCAL);
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

static void scale2(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= 2;
}

static void check_case(kc_env *e, pkern *k, int dt, const pcase *pc, uint64_t *seed)
{
    const pool_tol *tol = &tols[dt];
    ref_pool_geom g = {pc->N * pc->C, pc->H,  pc->W,  pc->KH, pc->KW, pc->sh, pc->sw,
                       pc->ph,        pc->pw, pc->dh, pc->dw, 0,      0};
    g.OH = pool_out(g.H, g.KH, g.sh, g.ph, g.dh, pc->ceil);
    g.OW = pool_out(g.W, g.KW, g.sw, g.pw, g.dw, pc->ceil);
    const size_t nx = (size_t)g.NC * g.H * g.W, es = kc_dt_size(dt);
    char desc[200];
    snprintf(desc, sizeof desc, "NC %d %dx%d k %dx%d s %d,%d p %d,%d d %d,%d%s -> %dx%d", g.NC, g.H,
             g.W, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, pc->ceil ? " ceil" : "", g.OH,
             g.OW);
    double *x = dalloc(nx), *got = dalloc(nx), *dx_ref = dalloc(nx);
    kc_rand(x, nx, -1, 1, seed);
    kc_round_all(dt, x, nx);
    cl_mem xm = kc_upload(e, dt, x, nx), dxm = kc_buf(e, nx * es);

    /* max pool (with dilation) */
    {
        size_t ny = (size_t)g.NC * g.OH * g.OW;
        double *y_ref = dalloc(ny), *dy = dalloc(ny), *y = dalloc(ny);
        int *arg_ref = kc_alloc(sizeof(int) * (ny ? ny : 1)), *arg = kc_alloc(sizeof(int) * ny);
        ref_maxpool2d_forward(&g, x, y_ref, arg_ref);
        cl_mem ym = kc_buf(e, ny * es), am = kc_buf(e, 4 * ny);
        run_maxf(e, k, xm, ym, am, &g);
        kc_download(e, ym, dt, ny, y);
        kc_download_i32(e, am, ny, arg);
        kc_track_exact("maxpool2d_fwd y and argmax (exact)", dt,
                       !memcmp(y, y_ref, sizeof(double) * ny) &&
                           !memcmp(arg, arg_ref, sizeof(int) * ny),
                       desc);
        kc_rand(dy, ny, -1, 1, seed);
        kc_round_all(dt, dy, ny);
        ref_maxpool2d_backward(&g, dy, arg_ref, dx_ref);
        cl_mem dym = kc_upload(e, dt, dy, ny);
        run_maxb(e, k, dym, am, dxm, &g, 0, 0);
        kc_download(e, dxm, dt, nx, got);
        kc_track("maxpool2d_bwd", dt, kc_err(got, dx_ref, nx), tol->max_bwd, desc);
        void *b = bits_of(e, dxm, nx * es);
        run_maxb(e, k, dym, am, dxm, &g, 0, 0);
        int same = same_bits(e, dxm, nx * es, b);
        run_maxb(e, k, dym, am, dxm, &g, 0, 2);
        same &= same_bits(e, dxm, nx * es, b);
        kc_track_exact("maxpool2d_bwd same bits twice, small grid", dt, same, desc);
        run_maxb(e, k, dym, am, dxm, &g, 1, 0);
        kc_download(e, dxm, dt, nx, got);
        scale2(dx_ref, nx);
        kc_track("maxpool2d_bwd accumulate=1 (2x grad)", dt, kc_err(got, dx_ref, nx), tol->max_bwd,
                 desc);
        free(b), free(y_ref), free(dy), free(y), free(arg_ref), free(arg);
        clReleaseMemObject(ym), clReleaseMemObject(am), clReleaseMemObject(dym);
    }

    /* average pool (no dilation), count_include_pad on and off */
    ref_pool_geom ga = g;
    ga.dh = ga.dw = 1;
    ga.OH = pool_out(g.H, g.KH, g.sh, g.ph, 1, pc->ceil);
    ga.OW = pool_out(g.W, g.KW, g.sw, g.pw, 1, pc->ceil);
    for (int cip = 1; cip >= 0; cip--) {
        char d2[240];
        snprintf(d2, sizeof d2, "NC %d %dx%d k %dx%d s %d,%d p %d,%d%s -> %dx%d, %s", ga.NC, ga.H,
                 ga.W, ga.KH, ga.KW, ga.sh, ga.sw, ga.ph, ga.pw, pc->ceil ? " ceil" : "", ga.OH,
                 ga.OW, cip ? "count_include_pad" : "exclude pad");
        size_t ny = (size_t)ga.NC * ga.OH * ga.OW;
        double *y_ref = dalloc(ny), *dy = dalloc(ny), *y = dalloc(ny);
        ref_avgpool2d_forward(&ga, x, y_ref, cip);
        cl_mem ym = kc_buf(e, ny * es);
        run_avgf(e, k, xm, ym, &ga, cip);
        kc_download(e, ym, dt, ny, y);
        kc_track("avgpool2d_fwd", dt, kc_err(y, y_ref, ny), tol->avg, d2);
        kc_rand(dy, ny, -1, 1, seed);
        kc_round_all(dt, dy, ny);
        ref_avgpool2d_backward(&ga, dy, dx_ref, cip);
        cl_mem dym = kc_upload(e, dt, dy, ny);
        run_avgb(e, k, dym, dxm, &ga, cip, 0, 0);
        kc_download(e, dxm, dt, nx, got);
        kc_track("avgpool2d_bwd", dt, kc_err(got, dx_ref, nx), tol->avg_bwd, d2);
        void *b = bits_of(e, dxm, nx * es);
        run_avgb(e, k, dym, dxm, &ga, cip, 0, 0);
        int same = same_bits(e, dxm, nx * es, b);
        run_avgb(e, k, dym, dxm, &ga, cip, 0, 2);
        same &= same_bits(e, dxm, nx * es, b);
        kc_track_exact("avgpool2d_bwd same bits twice, small grid", dt, same, d2);
        run_avgb(e, k, dym, dxm, &ga, cip, 1, 0);
        kc_download(e, dxm, dt, nx, got);
        scale2(dx_ref, nx);
        kc_track("avgpool2d_bwd accumulate=1 (2x grad)", dt, kc_err(got, dx_ref, nx), tol->avg_bwd,
                 d2);
        free(b), free(y_ref), free(dy), free(y);
        clReleaseMemObject(ym), clReleaseMemObject(dym);
    }

    /* global average pooling over the same planes (floor-mode cases only: no geometry) */
    if (!pc->ceil) {
        const int HW = g.H * g.W;
        double *y_ref = dalloc(g.NC), *y = dalloc(g.NC), *dy = dalloc(g.NC);
        ref_gap_forward(g.NC, HW, x, y_ref);
        /* a mean's terms cancel: its error is measured against the largest mean |x|, the
         * scale of the float sum's rounding */
        double mabs = 0;
        for (int r = 0; r < g.NC; r++) {
            double s = 0;
            for (int i = 0; i < HW; i++)
                s += fabs(x[(size_t)r * HW + i]);
            mabs = fmax(mabs, s / HW);
        }
        cl_mem ym = kc_buf(e, g.NC * es);
        for (int li = 0; li < 2; li++) {
            size_t local = li ? 1 : LOCAL; /* local size 1: one item per plane */
            kc_args a = kc_begin(k->gapf);
            kc_mem(&a, xm);
            kc_ul(&a, 0);
            kc_mem(&a, ym);
            kc_ul(&a, 0);
            kc_ul(&a, g.NC);
            kc_ul(&a, HW);
            kc_run(e, k->gapf, 4 * e->units, local);
            kc_download(e, ym, dt, g.NC, y);
            double err = 0;
            for (int r = 0; r < g.NC; r++)
                err = fmax(err, fabs(y[r] - y_ref[r]));
            kc_track(li ? "gap_fwd at local size 1 (err / max mean|x|)"
                        : "gap_fwd (err / max mean|x|)",
                     dt, mabs > 0 ? err / mabs : err, tol->gap, desc);
        }
        kc_rand(dy, g.NC, -1, 1, seed);
        kc_round_all(dt, dy, g.NC);
        ref_gap_backward(g.NC, HW, dy, dx_ref);
        cl_mem dym = kc_upload(e, dt, dy, g.NC);
        for (int acc = 0; acc < 2; acc++) {
            kc_args a = kc_begin(k->gapb);
            kc_mem(&a, dym);
            kc_ul(&a, 0);
            kc_mem(&a, dxm);
            kc_ul(&a, 0);
            kc_ul(&a, g.NC);
            kc_ul(&a, HW);
            kc_i(&a, acc);
            kc_run(e, k->gapb, groups_for(g.NC, 0), LOCAL);
            kc_download(e, dxm, dt, nx, got);
            if (acc)
                scale2(dx_ref, nx);
            kc_track(acc ? "gap_bwd accumulate=1 (2x grad)" : "gap_bwd", dt,
                     kc_err(got, dx_ref, nx), tol->gap_bwd, desc);
        }
        free(y_ref), free(y), free(dy);
        clReleaseMemObject(ym), clReleaseMemObject(dym);
    }
    clReleaseMemObject(xm), clReleaseMemObject(dxm);
    free(x), free(got), free(dx_ref);
}

/* gradients of sum(G * y) by central differences, for every input pixel */
static void fd_grad(const ref_pool_geom *g, int kind, int cip, double *x, const double *G,
                    double *fd)
{
    const size_t nx = (size_t)g->NC * g->H * g->W, ny = (size_t)g->NC * g->OH * g->OW;
    const int nyk = kind == 2 ? g->NC : (int)ny;
    const double eps = 1e-6;
    double *y = dalloc(ny + g->NC);
    int *arg = kc_alloc(sizeof(int) * (ny + 1));
    for (size_t i = 0; i < nx; i++) {
        double keep = x[i], l[2];
        for (int s = 0; s < 2; s++) {
            x[i] = keep + (s ? -eps : eps);
            if (kind == 0)
                ref_maxpool2d_forward(g, x, y, arg);
            else if (kind == 1)
                ref_avgpool2d_forward(g, x, y, cip);
            else
                ref_gap_forward(g->NC, g->H * g->W, x, y);
            l[s] = 0;
            for (int j = 0; j < nyk; j++)
                l[s] += G[j] * y[j];
        }
        x[i] = keep;
        fd[i] = (l[0] - l[1]) / (2 * eps);
    }
    free(y), free(arg);
}

static void fd_checks(uint64_t *seed)
{
    static const pcase cs[] = {
        {2, 1, 5, 7, 3, 2, 2, 1, 1, 1, 2, 1, 0},
        {1, 2, 6, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    };
    for (int c = 0; c < 2; c++) {
        const pcase *pc = &cs[c];
        ref_pool_geom g = {pc->N * pc->C, pc->H,  pc->W,  pc->KH, pc->KW, pc->sh, pc->sw,
                           pc->ph,        pc->pw, pc->dh, pc->dw, 0,      0};
        g.OH = pool_out(g.H, g.KH, g.sh, g.ph, g.dh, pc->ceil);
        g.OW = pool_out(g.W, g.KW, g.sw, g.pw, g.dw, pc->ceil);
        const size_t nx = (size_t)g.NC * g.H * g.W, ny = (size_t)g.NC * g.OH * g.OW;
        const size_t nm = nx + ny; /* room for either side (the average pool's too) */
        double *x = dalloc(nx), *G = dalloc(nm), *dx = dalloc(nx), *fd = dalloc(nx);
        double *y = dalloc(nm);
        int *arg = kc_alloc(sizeof(int) * nm);
        kc_rand(x, nx, -1, 1, seed);
        kc_rand(G, nm, -1, 1, seed);
        ref_maxpool2d_forward(&g, x, y, arg);
        ref_maxpool2d_backward(&g, G, arg, dx);
        fd_grad(&g, 0, 0, x, G, fd);
        kc_track("ref_maxpool2d_backward vs FD", KC_F64, kc_err(dx, fd, nx), 1e-8, "small");
        ref_pool_geom ga = g;
        ga.dh = ga.dw = 1;
        ga.OH = pool_out(g.H, g.KH, g.sh, g.ph, 1, pc->ceil);
        ga.OW = pool_out(g.W, g.KW, g.sw, g.pw, 1, pc->ceil);
        for (int cip = 0; cip < 2; cip++) {
            ref_avgpool2d_backward(&ga, G, dx, cip);
            fd_grad(&ga, 1, cip, x, G, fd);
            kc_track("ref_avgpool2d_backward vs FD", KC_F64, kc_err(dx, fd, nx), 1e-8,
                     cip ? "small, count_include_pad" : "small, exclude pad");
        }
        ref_gap_backward(g.NC, g.H * g.W, G, dx);
        fd_grad(&g, 2, 0, x, G, fd);
        kc_track("ref_gap_backward vs FD", KC_F64, kc_err(dx, fd, nx), 1e-8, "small");
        free(x), free(G), free(dx), free(fd), free(y), free(arg);
    }
}

/* PyTorch's divisors by hand: ones, k 3, s 1, p 1 on 3x3 gives 4/9, 6/9, 1 with
 * count_include_pad and all ones without; ones, k 3, s 2, p 1, ceil mode on 4x4 (3x3 out, the
 * last window past the padding: row spans 2, 3, 1 of lengths 3, 3, 2). */
static void hand_checks(kc_env *e, pkern *k)
{
    double ones[16], y[9], want[9], yr[9];
    for (int i = 0; i < 16; i++)
        ones[i] = 1;
    cl_mem xm = kc_upload(e, KC_F32, ones, 16), ym = kc_buf(e, 4 * 9);
    ref_pool_geom g1 = {1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3};
    static const double inc[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    ref_pool_geom g2 = {1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 3, 3};
    const double valid[3] = {2, 3, 1}, len[3] = {3, 3, 2};
    for (int t = 0; t < 3; t++) {
        const ref_pool_geom *g = t < 2 ? &g1 : &g2;
        int cip = t != 1;
        for (int i = 0; i < 9; i++)
            want[i] = t == 0   ? inc[i] / 9
                      : t == 1 ? 1
                               : valid[i / 3] * valid[i % 3] / (len[i / 3] * len[i % 3]);
        run_avgf(e, k, xm, ym, g, cip);
        kc_download_f32(e, ym, 9, y);
        ref_avgpool2d_forward(g, ones, yr, cip);
        static const char *what[3] = {"3x3 k3 s1 p1 count_include_pad", "3x3 k3 s1 p1 exclude pad",
                                      "4x4 k3 s2 p1 ceil cip"};
        kc_track("avgpool2d divisors vs hand (kernel)", KC_F32, kc_err(y, want, 9), 1e-7, what[t]);
        kc_track("avgpool2d divisors vs hand (ref)", KC_F64, kc_err(yr, want, 9), 1e-15, what[t]);
    }
    clReleaseMemObject(xm), clReleaseMemObject(ym);
}

int main(void)
{
    kc_env e;
    kc_init(&e);
    uint64_t seed = 4242;
    double t0 = kc_now();
    fd_checks(&seed);

    /* N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, ceil (average pool drops the dilation) */
    static const pcase cases[] = {
        {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0},   {3, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0},
        {3, 3, 5, 7, 3, 3, 2, 2, 1, 1, 1, 1, 0},   {1, 2, 5, 7, 5, 3, 1, 2, 2, 1, 1, 1, 0},
        {3, 2, 5, 7, 3, 3, 1, 1, 2, 2, 2, 2, 0},   {1, 3, 32, 32, 5, 5, 2, 2, 2, 2, 2, 2, 0},
        {3, 4, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 0}, {1, 3, 32, 32, 2, 2, 2, 2, 0, 0, 1, 1, 0},
        {1, 1, 33, 40, 3, 3, 1, 1, 1, 1, 1, 1, 0}, {3, 2, 5, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1},
        {1, 2, 32, 32, 3, 3, 2, 2, 0, 1, 1, 1, 1}, {1, 1, 6, 6, 2, 2, 2, 2, 1, 1, 1, 1, 1},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build(&e, "pool.cl", dt, NULL);
        pkern k = {kc_kernel(p, "okto_maxpool2d_fwd"), kc_kernel(p, "okto_maxpool2d_bwd"),
                   kc_kernel(p, "okto_avgpool2d_fwd"), kc_kernel(p, "okto_avgpool2d_bwd"),
                   kc_kernel(p, "okto_gap_fwd"),       kc_kernel(p, "okto_gap_bwd")};
        if (dt == KC_F32)
            hand_checks(&e, &k);
        for (int i = 0; i < ncases; i++)
            check_case(&e, &k, dt, &cases[i], &seed);
        cl_kernel all[] = {k.maxf, k.maxb, k.avgf, k.avgb, k.gapf, k.gapb};
        for (int i = 0; i < 6; i++)
            clReleaseKernel(all[i]);
        clReleaseProgram(p);
    }
    kc_track_exact("bad geometry (k 5 on 3, no pad) gives OH < 1", KC_F64,
                   pool_out(3, 5, 1, 0, 1, 0) < 1 && pool_out(3, 5, 1, 0, 1, 1) < 1,
                   "host refuses");
    printf("total %.1f s\n", kc_now() - t0);
    int rc = kc_status();
    kc_free(&e);
    return rc;
}
