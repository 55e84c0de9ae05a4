/* tests/kernels/check_norm.c: cl/norm.cl (layernorm, rmsnorm, forward and backward) against
 * tests/ref/ref_norm.c on odd shapes, f32/f16/bf16, with and without weight and bias, under
 * several launch shapes; the reference backward against central differences of the reference
 * forward; bitwise determinism; dweight/dbias identical under every launch shape (they depend on
 * block_rows only). */
#include "kc.h"
#include "../ref/ref_norm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const size_t shapes[][2] = {{1, 1},   {7, 13},  {13, 7},    {1, 257},
                                   {257, 1}, {3, 257}, {33, 1000}, {2, 100000}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])
static const double eps = 1e-5;

/* Output tolerances (the kernel's error, inputs already in the dtype): f16/bf16 one rounding of
 * the output (2^-11, 2^-8 relative) and a little; f32 ~1e-6 except rmsnorm's dx at cols = 1,
 * where dx = rstd * g * (1 - xhat^2) cancels (xhat^2 -> 1 as x^2 >> eps) and the float32 rstd's
 * last bit is amplified: ~6e-6 measured, hence 2e-5. */
static double tol_out(int dt) { return dt == KC_F32 ? 2e-5 : dt == KC_F16 ? 1e-3 : 8e-3; }
static const double tol_stat = 1e-6; /* mean, rstd: float32 whatever the dtype */

typedef struct {
    int dt;
    cl_kernel ln_fwd, ln_dx, ln_wb, red, rms_fwd, rms_dx, rms_w;
} kernels;

static double loss_ln(const double *dy, const double *x, const double *w, const double *b,
                      size_t rows, size_t cols, double *y)
{
    ref_layernorm_fwd(x, w, b, y, NULL, NULL, rows, cols, eps);
    double s = 0;
    for (size_t i = 0; i < rows * cols; i++)
        s += dy[i] * y[i];
    return s;
}

static double loss_rms(const double *dy, const double *x, const double *w, size_t rows, size_t cols,
                       double *y)
{
    ref_rmsnorm_fwd(x, w, y, NULL, rows, cols, eps);
    double s = 0;
    for (size_t i = 0; i < rows * cols; i++)
        s += dy[i] * y[i];
    return s;
}

/* Central differences of sum(dy * y) with respect to every element of v (n of them). */
static double fd_err(double *v, size_t n, const double *grad, int rms, const double *dy, double *x,
                     double *w, double *b, size_t rows, size_t cols)
{
    double *y = kc_dalloc(rows * cols), m = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = v[i], h = 1e-6 * (fabs(keep) > 1 ? fabs(keep) : 1);
        v[i] = keep + h;
        double lp = rms ? loss_rms(dy, x, w, rows, cols, y) : loss_ln(dy, x, w, b, rows, cols, y);
        v[i] = keep - h;
        double lm = rms ? loss_rms(dy, x, w, rows, cols, y) : loss_ln(dy, x, w, b, rows, cols, y);
        v[i] = keep;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - grad[i]) / (fabs(fd) > 1 ? fabs(fd) : 1);
        if (e > m)
            m = e;
    }
    free(y);
    return m;
}

static void check_fd(void)
{
    const size_t rows = 3, cols = 7;
    double *x = kc_dalloc(rows * cols), *dy = kc_dalloc(rows * cols), *w = kc_dalloc(cols),
           *b = kc_dalloc(cols), *dx = kc_dalloc(rows * cols), *dw = kc_dalloc(cols),
           *db = kc_dalloc(cols);
    kc_fill(x, rows * cols, 1, -2, 3, KC_F32);
    kc_fill(dy, rows * cols, 2, -1, 1, KC_F32);
    kc_fill(w, cols, 3, 0.5, 1.5, KC_F32);
    kc_fill(b, cols, 4, -1, 1, KC_F32);
    ref_layernorm_bwd(dy, x, w, dx, dw, db, rows, cols, eps);
    double e = fd_err(x, rows * cols, dx, 0, dy, x, w, b, rows, cols);
    e = fmax(e, fd_err(w, cols, dw, 0, dy, x, w, b, rows, cols));
    e = fmax(e, fd_err(b, cols, db, 0, dy, x, w, b, rows, cols));
    kc_check("ref layernorm bwd vs central differences", -1, e, 1e-6);
    ref_rmsnorm_bwd(dy, x, w, dx, dw, rows, cols, eps);
    e = fd_err(x, rows * cols, dx, 1, dy, x, w, b, rows, cols);
    e = fmax(e, fd_err(w, cols, dw, 1, dy, x, w, b, rows, cols));
    kc_check("ref rmsnorm bwd vs central differences", -1, e, 1e-6);
    free(x), free(dy), free(w), free(b), free(dx), free(dw), free(db);
}

/* One shape's tensors: on the host (doubles, in the dtype) and on the device (at an offset,
 * padded with sentinels). */
typedef struct {
    size_t rows, cols, n, block_rows, nblocks;
    int has_w, has_b, acc;
    double *x, *w, *b, *dy, *dx0, *dw0, *db0; /* inputs; the gradients' prior contents */
    double *y, *mean, *rstd, *dx, *dw, *db;   /* the reference's answers */
    double *got;
    kc_t tx, tw, tb, tdy, ty, tmean, trstd, tdx, tpw, tpb, tdw, tdb;
} shape;

#define U(t) (t).m, (unsigned long long)(t).off

static void shape_init(shape *s, int dt, size_t si)
{
    size_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols;
    size_t o = (si * 5) % 7; /* element offsets 0, 5, 3, 1, 6, 4, 2, 0 */
    s->rows = rows, s->cols = cols, s->n = n;
    s->has_w = (si & 1) == 0, s->has_b = (si & 2) == 0, s->acc = (si % 3) == 1;
    s->block_rows = si % 3 == 0 ? 1 : si % 3 == 1 ? 5 : rows;
    s->nblocks = (rows + s->block_rows - 1) / s->block_rows;
    double **h[] = {&s->x, &s->dy, &s->dx0, &s->y, &s->dx, &s->got};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
        *h[i] = kc_dalloc(n);
    double **hc[] = {&s->w, &s->b, &s->dw0, &s->db0, &s->dw, &s->db};
    for (size_t i = 0; i < sizeof hc / sizeof hc[0]; i++)
        *hc[i] = kc_dalloc(cols);
    s->mean = kc_dalloc(rows), s->rstd = kc_dalloc(rows);
    /* rows centred away from 0 on some shapes: the two-pass variance must not cancel */
    double off = si % 2 ? 8.0 : 0.0;
    kc_fill(s->x, n, 10 + si, off - 2, off + 3, dt);
    kc_fill(s->w, cols, 20 + si, 0.5, 1.5, dt);
    kc_fill(s->b, cols, 30 + si, -1, 1, dt);
    kc_fill(s->dy, n, 40 + si, -1, 1, dt);
    kc_fill(s->dx0, n, 50 + si, -1, 1, dt);
    kc_fill(s->dw0, cols, 60 + si, -1, 1, dt);
    kc_fill(s->db0, cols, 70 + si, -1, 1, dt);
    s->tx = kc_t_new(dt, s->x, n, o), s->tw = kc_t_new(dt, s->w, cols, o + 1);
    s->tb = kc_t_new(dt, s->b, cols, o + 2), s->tdy = kc_t_new(dt, s->dy, n, o + 3);
    s->ty = kc_t_new(dt, NULL, n, o + 4), s->tdx = kc_t_new(dt, NULL, n, o);
    s->tmean = kc_t_new(KC_F32, NULL, rows, o + 1), s->trstd = kc_t_new(KC_F32, NULL, rows, o);
    s->tpw = kc_t_new(KC_F32, NULL, s->nblocks * cols, o + 2);
    s->tpb = kc_t_new(KC_F32, NULL, s->nblocks * cols, o);
    s->tdw = kc_t_new(dt, NULL, cols, o + 3), s->tdb = kc_t_new(dt, NULL, cols, o);
}

static int shape_free(shape *s)
{
    kc_t *t[] = {&s->tx,    &s->tw,  &s->tb,  &s->tdy, &s->ty,  &s->tmean,
                 &s->trstd, &s->tdx, &s->tpw, &s->tpb, &s->tdw, &s->tdb};
    int pads = 1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        pads &= kc_t_pads_ok(t[i]);
        kc_t_free(t[i]);
    }
    double *h[] = {s->x, s->w,    s->b,    s->dy, s->dx0, s->dw0, s->db0,
                   s->y, s->mean, s->rstd, s->dx, s->dw,  s->db,  s->got};
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
        free(h[i]);
    return pads;
}

/* With accumulate on, the kernel's answer is the prior contents plus the gradient. */
static void add_prior(const shape *s, double *dx, double *dw, double *db)
{
    for (size_t i = 0; s->acc && i < s->n; i++)
        dx[i] += s->dx0[i];
    for (size_t i = 0; s->acc && i < s->cols; i++) {
        dw[i] += s->dw0[i];
        if (db)
            db[i] += s->db0[i];
    }
}

static const char *where = "%zux%zu w%d b%d acc%d block_rows %zu L%zu";

static void compare(const kc_t *t, const double *want, kc_stat *st, const shape *s, size_t local,
                    int relative)
{
    kc_t_read(t, s->got);
    double e = relative ? kc_rel_err(s->got, want, t->n) : kc_err(s->got, want, t->n);
    kc_stat_add(st, e, where, s->rows, s->cols, s->has_w, s->has_b, s->acc, s->block_rows, local);
}

typedef struct {
    kc_stat y, mean, rstd, dx, dw, db;
} errs;

/* Keeps the first run's bits of ts[0 .. n) in bits[], or checks a later run against them. */
static void bits_keep_or_check(kc_t *const *ts, void **bits, int n, int first, int *ok)
{
    for (int i = 0; i < n; i++) {
        if (first)
            bits[i] = kc_t_bits(ts[i]);
        else
            *ok &= kc_t_same(ts[i], bits[i]);
    }
}

static void run_layernorm(const kernels *k, shape *s, errs *e, int *det_ok, int *geom_ok,
                          const kc_geom *geoms, int ngeoms)
{
    unsigned long long rows = s->rows, cols = s->cols;
    void *bits[6] = {0}, *stats[2] = {0};
    kc_t *outs[6] = {&s->ty, &s->tmean, &s->trstd, &s->tdx, &s->tdw, &s->tdb};
    ref_layernorm_fwd(s->x, s->has_w ? s->w : NULL, s->has_b ? s->b : NULL, s->y, s->mean, s->rstd,
                      s->rows, s->cols, eps);
    ref_layernorm_bwd(s->dy, s->x, s->has_w ? s->w : NULL, s->dx, s->dw, s->db, s->rows, s->cols,
                      eps);
    add_prior(s, s->dx, s->dw, s->db);
    for (int gi = 0; gi < ngeoms; gi++) {
        for (int rep = 0; rep < (gi == 0 ? 2 : 1); rep++) {
            size_t L = geoms[gi].local;
            int nlo;
            kc_local lo = kc_locals(k->dt, &nlo)[gi % nlo];
            kc_args(k->ln_fwd, "bubububububuuufii", U(s->tx), U(s->tw), U(s->tb), U(s->ty),
                    U(s->tmean), U(s->trstd), rows, cols, eps, s->has_w, s->has_b);
            kc_launch(k->ln_fwd, geoms[gi]);
            compare(&s->ty, s->y, &e->y, s, L, 0);
            compare(&s->tmean, s->mean, &e->mean, s, L, 0);
            compare(&s->trstd, s->rstd, &e->rstd, s, L, 1);
            if (gi == 0 && rep == 0) {
                stats[0] = kc_t_bits(&s->tmean);
                stats[1] = kc_t_bits(&s->trstd);
            } else if (gi > 0) { /* the partials from the same statistics must match bitwise */
                kc_write(s->tmean.m, stats[0], kc_t_bytes(&s->tmean));
                kc_write(s->trstd.m, stats[1], kc_t_bytes(&s->trstd));
            }
            kc_t_write(&s->tdx, s->dx0);
            kc_t_write(&s->tdw, s->dw0);
            kc_t_write(&s->tdb, s->db0);
            kc_args(k->ln_dx, "bubububububuuuii", U(s->tdy), U(s->tx), U(s->tw), U(s->tmean),
                    U(s->trstd), U(s->tdx), rows, cols, s->has_w, s->acc);
            kc_launch(k->ln_dx, geoms[gi]);
            kc_args(k->ln_wb, "bubububububuuuuii", U(s->tdy), U(s->tx), U(s->tmean), U(s->trstd),
                    U(s->tpw), U(s->tpb), rows, cols, (unsigned long long)s->block_rows, 1, 1);
            kc_launch2(k->ln_wb, s->cols, s->nblocks, lo.lx, lo.ly);
            kc_args(k->red, "bubuuui", U(s->tpw), U(s->tdw), (unsigned long long)s->nblocks, cols,
                    s->acc);
            kc_launch1(k->red, s->cols, lo.lx * lo.ly);
            kc_args(k->red, "bubuuui", U(s->tpb), U(s->tdb), (unsigned long long)s->nblocks, cols,
                    s->acc);
            kc_launch1(k->red, s->cols, lo.lx * lo.ly);
            compare(&s->tdx, s->dx, &e->dx, s, L, 0);
            compare(&s->tdw, s->dw, &e->dw, s, L, 0);
            compare(&s->tdb, s->db, &e->db, s, L, 0);
            if (gi == 0)
                bits_keep_or_check(outs, bits, 6, rep == 0, det_ok);
            else
                bits_keep_or_check(outs + 4, bits + 4, 2, 0, geom_ok);
        }
    }
    for (int o = 0; o < 6; o++)
        free(bits[o]);
    free(stats[0]), free(stats[1]);
}

static void run_rmsnorm(const kernels *k, shape *s, errs *e, int *det_ok, int *geom_ok,
                        const kc_geom *geoms, int ngeoms)
{
    unsigned long long rows = s->rows, cols = s->cols;
    void *bits[4] = {0}, *stats = NULL;
    kc_t *outs[4] = {&s->ty, &s->trstd, &s->tdx, &s->tdw};
    ref_rmsnorm_fwd(s->x, s->has_w ? s->w : NULL, s->y, s->rstd, s->rows, s->cols, eps);
    ref_rmsnorm_bwd(s->dy, s->x, s->has_w ? s->w : NULL, s->dx, s->dw, s->rows, s->cols, eps);
    add_prior(s, s->dx, s->dw, NULL);
    for (int gi = 0; gi < ngeoms; gi++) {
        for (int rep = 0; rep < (gi == 0 ? 2 : 1); rep++) {
            size_t L = geoms[gi].local;
            int nlo;
            kc_local lo = kc_locals(k->dt, &nlo)[gi % nlo];
            kc_args(k->rms_fwd, "bubububuuufi", U(s->tx), U(s->tw), U(s->ty), U(s->trstd), rows,
                    cols, eps, s->has_w);
            kc_launch(k->rms_fwd, geoms[gi]);
            compare(&s->ty, s->y, &e->y, s, L, 0);
            compare(&s->trstd, s->rstd, &e->rstd, s, L, 1);
            if (gi == 0 && rep == 0)
                stats = kc_t_bits(&s->trstd);
            else if (gi > 0)
                kc_write(s->trstd.m, stats, kc_t_bytes(&s->trstd));
            kc_t_write(&s->tdx, s->dx0);
            kc_t_write(&s->tdw, s->dw0);
            kc_args(k->rms_dx, "bububububuuuii", U(s->tdy), U(s->tx), U(s->tw), U(s->trstd),
                    U(s->tdx), rows, cols, s->has_w, s->acc);
            kc_launch(k->rms_dx, geoms[gi]);
            kc_args(k->rms_w, "bubububuuuu", U(s->tdy), U(s->tx), U(s->trstd), U(s->tpw), rows,
                    cols, (unsigned long long)s->block_rows);
            kc_launch2(k->rms_w, s->cols, s->nblocks, lo.lx, lo.ly);
            kc_args(k->red, "bubuuui", U(s->tpw), U(s->tdw), (unsigned long long)s->nblocks, cols,
                    s->acc);
            kc_launch1(k->red, s->cols, lo.lx * lo.ly);
            compare(&s->tdx, s->dx, &e->dx, s, L, 0);
            compare(&s->tdw, s->dw, &e->dw, s, L, 0);
            if (gi == 0)
                bits_keep_or_check(outs, bits, 4, rep == 0, det_ok);
            else
                bits_keep_or_check(outs + 3, bits + 3, 1, 0, geom_ok);
        }
    }
    for (int o = 0; o < 4; o++)
        free(bits[o]);
    free(stats);
}

static void check_dtype(int dt, const kernels *k)
{
    errs ln = {0}, rms = {0};
    int det_ok = 1, geom_ok = 1, pads_ok = 1, ngeoms;
    const kc_geom *geoms = kc_geoms(dt, &ngeoms);
    for (size_t si = 0; si < NSHAPES; si++) {
        shape s;
        shape_init(&s, dt, si);
        run_layernorm(k, &s, &ln, &det_ok, &geom_ok, geoms, ngeoms);
        run_rmsnorm(k, &s, &rms, &det_ok, &geom_ok, geoms, ngeoms);
        pads_ok &= shape_free(&s);
    }
    /* dweight/dbias sum up to 257 rows; their error is relative to max(1, |sum|): compensated
     * float sums, one output rounding */
    double t = tol_out(dt);
    kc_stat_check("layernorm_fwd y", dt, &ln.y, t);
    kc_stat_check("layernorm_fwd mean (float32)", dt, &ln.mean, tol_stat);
    kc_stat_check("layernorm_fwd rstd (float32, relative)", dt, &ln.rstd, tol_stat);
    kc_stat_check("layernorm_bwd_dx dx", dt, &ln.dx, t);
    kc_stat_check("layernorm_bwd_wb + reduce_partials dweight", dt, &ln.dw, t);
    kc_stat_check("layernorm_bwd_wb + reduce_partials dbias", dt, &ln.db, t);
    kc_stat_check("rmsnorm_fwd y", dt, &rms.y, t);
    kc_stat_check("rmsnorm_fwd rstd (float32, relative)", dt, &rms.rstd, tol_stat);
    kc_stat_check("rmsnorm_bwd_dx dx", dt, &rms.dx, t);
    kc_stat_check("rmsnorm_bwd_w + reduce_partials dweight", dt, &rms.dw, t);
    kc_expect("all outputs: same bits on a second run", dt, det_ok, NULL);
    if (ngeoms > 1)
        kc_expect("dweight/dbias: same bits under every launch shape", dt, geom_ok, NULL);
    kc_expect("nothing written outside the outputs", dt, pads_ok, NULL);
}

int main(void)
{
    kc_init("check_norm");
    check_fd();
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("norm.cl", dt);
        kernels k = {dt,
                     kc_kernel(p, "okto_layernorm_fwd"),
                     kc_kernel(p, "okto_layernorm_bwd_dx"),
                     kc_kernel(p, "okto_layernorm_bwd_wb"),
                     kc_kernel(p, "okto_norm_reduce_partials"),
                     kc_kernel(p, "okto_rmsnorm_fwd"),
                     kc_kernel(p, "okto_rmsnorm_bwd_dx"),
                     kc_kernel(p, "okto_rmsnorm_bwd_w")};
        check_dtype(dt, &k);
    }
    return kc_finish();
}
