/* tests/kernels/check_softmax_ext.c: cl/softmax_ext.cl (softmax and log-softmax, forward and
 * backward) against tests/ref/ref_softmax_ext.c on odd shapes, f32/f16/bf16, with logits near
 * 0 and near 1000 (where an unshifted exp() overflows), under several launch shapes; the
 * reference backward against central differences of the reference forward; bitwise
 * determinism; nothing written outside the outputs. */
#include "kc.h"
#include "../ref/ref_softmax_ext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const size_t shapes[][2] = {{1, 1},   {7, 13},   {13, 7},    {1, 257},
                                   {257, 1}, {3, 1000}, {2, 50000}, {33, 64}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* The kernel's error, inputs already in the dtype: f32 a few float ulps; f16/bf16 one rounding
 * of the output (2^-11, 2^-8 relative) and a little. */
static double tol(int dt) { return dt == KC_F32 ? 2e-6 : dt == KC_F16 ? 1e-3 : 8e-3; }

#define U(t) (t).m, (unsigned long long)(t).off

typedef double (*loss_fn)(const double *x, const double *dy, size_t rows, size_t cols, double *y);

static double loss_sm(const double *x, const double *dy, size_t rows, size_t cols, double *y)
{
    ref_softmax_fwd(x, y, rows, cols);
    double s = 0;
    for (size_t i = 0; i < rows * cols; i++)
        s += dy[i] * y[i];
    return s;
}

static double loss_lsm(const double *x, const double *dy, size_t rows, size_t cols, double *y)
{
    ref_log_softmax_fwd(x, y, rows, cols);
    double s = 0;
    for (size_t i = 0; i < rows * cols; i++)
        s += dy[i] * y[i];
    return s;
}

static double fd_err(loss_fn f, double *x, const double *dy, const double *dx, size_t rows,
                     size_t cols)
{
    double *y = kc_dalloc(rows * cols), m = 0;
    for (size_t i = 0; i < rows * cols; i++) {
        double keep = x[i], h = 1e-6;
        x[i] = keep + h;
        double lp = f(x, dy, rows, cols, y);
        x[i] = keep - h;
        double lm = f(x, dy, rows, cols, y);
        x[i] = keep;
        double fd = (lp - lm) / (2 * h), e = fabs(fd - dx[i]) / (fabs(fd) > 1 ? fabs(fd) : 1);
        m = e > m ? e : m;
    }
    free(y);
    return m;
}

static void check_fd(void)
{
    const size_t rows = 3, cols = 7, n = rows * cols;
    double *x = kc_dalloc(n), *dy = kc_dalloc(n), *y = kc_dalloc(n), *dx = kc_dalloc(n);
    kc_fill(x, n, 1, -3, 3, KC_F32);
    kc_fill(dy, n, 2, -1, 1, KC_F32);
    ref_softmax_fwd(x, y, rows, cols);
    ref_softmax_bwd(y, dy, dx, rows, cols);
    kc_check("ref softmax bwd vs central differences", -1, fd_err(loss_sm, x, dy, dx, rows, cols),
             1e-6);
    ref_log_softmax_fwd(x, y, rows, cols);
    ref_log_softmax_bwd(y, dy, dx, rows, cols);
    kc_check("ref log_softmax bwd vs central differences", -1,
             fd_err(loss_lsm, x, dy, dx, rows, cols), 1e-6);
    free(x), free(dy), free(y), free(dx);
}

typedef struct {
    cl_kernel sm_fwd, sm_bwd, lsm_fwd, lsm_bwd;
} kernels;

typedef struct {
    kc_stat sm_fwd, sm_bwd, lsm_fwd, lsm_bwd;
} errs;

/* Runs one forward kernel and one backward kernel on shape si under every launch shape and
 * compares; log selects log-softmax. */
static void run(int dt, const kernels *k, size_t si, int log, errs *e, int *det, int *pads)
{
    size_t rows = shapes[si][0], cols = shapes[si][1], n = rows * cols, o = (si * 3) % 5;
    int acc = si % 2, ng;
    const kc_geom *geoms = kc_geoms(dt, &ng);
    double *x = kc_dalloc(n), *dy = kc_dalloc(n), *dx0 = kc_dalloc(n), *y = kc_dalloc(n),
           *yin = kc_dalloc(n), *dx = kc_dalloc(n), *got = kc_dalloc(n);
    double off = si % 3 == 2 ? 1000.0 : 0.0;
    kc_fill(x, n, 10 + si, off - 4, off + 4, dt);
    kc_fill(dy, n, 20 + si, -1, 1, dt);
    kc_fill(dx0, n, 30 + si, -1, 1, dt);
    (log ? ref_log_softmax_fwd : ref_softmax_fwd)(x, y, rows, cols);
    for (size_t i = 0; i < n; i++) /* the backward's input: the forward's output in the dtype */
        yin[i] = kc_round(dt, y[i]);
    (log ? ref_log_softmax_bwd : ref_softmax_bwd)(yin, dy, dx, rows, cols);
    for (size_t i = 0; acc && i < n; i++)
        dx[i] += dx0[i];
    kc_t tx = kc_t_new(dt, x, n, o), ty = kc_t_new(dt, NULL, n, o + 1),
         tyin = kc_t_new(dt, yin, n, o + 2), tdy = kc_t_new(dt, dy, n, o),
         tdx = kc_t_new(dt, NULL, n, o + 3);
    cl_kernel fwd = log ? k->lsm_fwd : k->sm_fwd, bwd = log ? k->lsm_bwd : k->sm_bwd;
    kc_stat *ef = log ? &e->lsm_fwd : &e->sm_fwd, *eb = log ? &e->lsm_bwd : &e->sm_bwd;
    void *bits[2] = {0};
    for (int gi = 0; gi < ng; gi++) {
        for (int rep = 0; rep < (gi == 0 ? 2 : 1); rep++) {
            kc_args(fwd, "bubuuu", U(tx), U(ty), (unsigned long long)rows,
                    (unsigned long long)cols);
            kc_launch(fwd, geoms[gi]);
            kc_t_read(&ty, got);
            kc_stat_add(ef, kc_err(got, y, n), "%zux%zu +%g L%zu", rows, cols, off,
                        geoms[gi].local);
            kc_t_write(&tdx, dx0);
            kc_args(bwd, "bububuuui", U(tyin), U(tdy), U(tdx), (unsigned long long)rows,
                    (unsigned long long)cols, acc);
            kc_launch(bwd, geoms[gi]);
            kc_t_read(&tdx, got);
            kc_stat_add(eb, kc_err(got, dx, n), "%zux%zu acc%d L%zu", rows, cols, acc,
                        geoms[gi].local);
            if (gi == 0 && rep == 0) {
                bits[0] = kc_t_bits(&ty);
                bits[1] = kc_t_bits(&tdx);
            } else if (gi == 0) {
                *det &= kc_t_same(&ty, bits[0]) && kc_t_same(&tdx, bits[1]);
            }
        }
    }
    kc_t *ts[] = {&tx, &ty, &tyin, &tdy, &tdx};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        *pads &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    free(bits[0]), free(bits[1]);
    free(x), free(dy), free(dx0), free(y), free(yin), free(dx), free(got);
}

int main(void)
{
    kc_init("check_softmax_ext");
    check_fd();
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("softmax_ext.cl", dt);
        kernels k = {kc_kernel(p, "okto_softmax_fwd"), kc_kernel(p, "okto_softmax_bwd"),
                     kc_kernel(p, "okto_log_softmax_fwd"), kc_kernel(p, "okto_log_softmax_bwd")};
        errs e = {0};
        int det = 1, pads = 1;
        for (size_t si = 0; si < NSHAPES; si++) {
            run(dt, &k, si, 0, &e, &det, &pads);
            run(dt, &k, si, 1, &e, &det, &pads);
        }
        kc_stat_check("softmax_fwd y", dt, &e.sm_fwd, tol(dt));
        kc_stat_check("softmax_bwd dx", dt, &e.sm_bwd, tol(dt));
        kc_stat_check("log_softmax_fwd y", dt, &e.lsm_fwd, tol(dt));
        kc_stat_check("log_softmax_bwd dx", dt, &e.lsm_bwd, tol(dt));
        kc_expect("all outputs: same bits on a second run", dt, det, NULL);
        kc_expect("nothing written outside the outputs", dt, pads, NULL);
    }
    return kc_finish();
}
