/* tests/kernels/check_xent.c: cl/xent.cl (cross-entropy forward, count, mean, backward) against
 * tests/ref/ref_xent.c: odd shapes, f32/f16/bf16 logits, large logits, ignored rows (an
 * ignore_index outside and inside [0, classes)), every row ignored, bad labels (flag, first
 * bad row, NaN rows, no out-of-range read), accumulate, bitwise determinism, nothing written
 * outside the outputs; the reference gradient against central differences of the reference
 * mean loss. */
#include "kc.h"
#include "../ref/ref_xent.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    size_t rows, classes;
    int ignore_index;
    const char *labels; /* "rand", "some-ignored", "all-ignored", "bad" */
    double off;         /* added to the logits */
} xcase;

static const xcase cases[] = {
    {1, 1, -100, "rand", 0},
    {7, 13, -100, "some-ignored", 0},
    {13, 7, 0, "rand", 0},
    {257, 1, -100, "some-ignored", 0},
    {3, 1000, -100, "rand", 1000},
    {2, 50000, -100, "rand", 0},
    {64, 10, -100, "all-ignored", 0},
    {33, 17, -100, "bad", 0},
    {1000, 5, 3, "some-ignored", -50},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* loss, stat, mean are float32 computed from the dtype's logits exactly: a few float ulps of
 * the loss (~10) whatever the dtype. The gradient is written in the dtype: one rounding. */
static const double tol_loss = 2e-6;
static double tol_grad(int dt) { return dt == KC_F32 ? 2e-6 : dt == KC_F16 ? 1e-3 : 8e-3; }

#define U(t) (t).m, (unsigned long long)(t).off

static void make_labels(const xcase *xc, int *lab, uint64_t seed)
{
    uint64_t s = seed;
    static const int bad[] = {17, -1, 1000000, INT_MIN, INT_MAX, 18};
    for (size_t r = 0; r < xc->rows; r++) {
        lab[r] = (int)(kc_rand(&s) % xc->classes);
        if (xc->labels[0] == 's' && kc_rand(&s) % 4 == 0)
            lab[r] = xc->ignore_index;
        if (xc->labels[0] == 'a')
            lab[r] = xc->ignore_index;
        if (xc->labels[0] == 'b' && r % 5 == 3)
            lab[r] = bad[(r / 5) % 6];
    }
}

static void check_fd(void)
{
    const size_t rows = 5, classes = 6, n = rows * classes;
    const int labels[5] = {2, -100, 0, 5, 3};
    double *x = kc_dalloc(n), *g = kc_dalloc(n), *loss = kc_dalloc(rows), cnt, e = 0;
    kc_fill(x, n, 1, -3, 3, KC_F32);
    ref_xent_bwd(x, labels, rows, classes, -100, 0.7, g);
    for (size_t i = 0; i < n; i++) {
        double keep = x[i], h = 1e-6;
        x[i] = keep + h;
        double lp = ref_xent_fwd(x, labels, rows, classes, -100, loss, &cnt);
        x[i] = keep - h;
        double lm = ref_xent_fwd(x, labels, rows, classes, -100, loss, &cnt);
        x[i] = keep;
        double fd = 0.7 * (lp - lm) / (2 * h), d = fabs(fd - g[i]) / (fabs(fd) > 1 ? fabs(fd) : 1);
        e = d > e ? d : e;
    }
    kc_check("ref xent bwd vs central differences", -1, e, 1e-7);
    free(x), free(g), free(loss);
}

typedef struct {
    cl_kernel fwd, count, mean, bwd;
} kernels;

typedef struct {
    kc_stat loss, stat, mean, grad;
    int count_ok, flag_ok, det_ok, pads_ok;
} errs;

static void run(int dt, const kernels *k, size_t ci, errs *e)
{
    const xcase *xc = &cases[ci];
    size_t rows = xc->rows, classes = xc->classes, n = rows * classes, o = ci % 4;
    int acc = ci % 2, ng, nlo;
    const kc_geom *geoms = kc_geoms(dt, &ng);
    const kc_local *locals = kc_locals(dt, &nlo);
    double *x = kc_dalloc(n), *g0 = kc_dalloc(n), *loss = kc_dalloc(rows), *grad = kc_dalloc(n),
           *got = kc_dalloc(n > 2 * rows ? n : 2 * rows), *stat = kc_dalloc(2 * rows);
    int *lab = malloc(rows * sizeof *lab);
    kc_fill(x, n, 10 + ci, xc->off - 5, xc->off + 5, dt);
    kc_fill(g0, n, 20 + ci, -1, 1, dt);
    make_labels(xc, lab, 30 + ci);
    double count, mean = ref_xent_fwd(x, lab, rows, classes, xc->ignore_index, loss, &count);
    double dloss = count > 0 ? 0.75 * count : 1.0; /* gradients of order 1, not 1/count */
    ref_xent_bwd(x, lab, rows, classes, xc->ignore_index, dloss, grad);
    int first_bad = INT_MAX;
    for (size_t r = 0; r < rows; r++) {
        const double *xr = x + r * classes;
        double m = -INFINITY, s = 0;
        for (size_t c = 0; c < classes; c++)
            m = xr[c] > m ? xr[c] : m;
        for (size_t c = 0; c < classes; c++)
            s += exp(xr[c] - m);
        stat[2 * r] = m, stat[2 * r + 1] = log(s);
        if (lab[r] != xc->ignore_index && (lab[r] < 0 || (size_t)lab[r] >= classes) &&
            first_bad == INT_MAX)
            first_bad = (int)r;
        for (size_t c = 0; acc && c < classes; c++)
            if (lab[r] != xc->ignore_index)
                grad[r * classes + c] += g0[r * classes + c];
            else
                grad[r * classes + c] = g0[r * classes + c]; /* left as it was */
    }
    double *labd = kc_dalloc(rows), flag0[2] = {0, INT_MAX};
    for (size_t r = 0; r < rows; r++)
        labd[r] = lab[r];
    kc_t tx = kc_t_new(dt, x, n, o), tlab = kc_t_new(KC_I32, labd, rows, o + 1),
         tloss = kc_t_new(KC_F32, NULL, rows, o + 2), tstat = kc_t_new(KC_F32, NULL, 2 * rows, o),
         tcount = kc_t_new(KC_F32, NULL, 1, o + 3), tmean = kc_t_new(KC_F32, NULL, 1, o),
         tdloss = kc_t_new(KC_F32, &dloss, 1, o + 1), tdx = kc_t_new(dt, NULL, n, o + 2),
         tflag = kc_t_new(KC_I32, flag0, 2, o + 3);
    void *bits[4] = {0};
    kc_t *outs[4] = {&tloss, &tstat, &tmean, &tdx};
    for (int gi = 0; gi < ng; gi++) {
        for (int rep = 0; rep < (gi == 0 ? 2 : 1); rep++) {
            kc_local lo = locals[gi % nlo];
            kc_t_write(&tflag, flag0);
            kc_args(k->fwd, "bubububuuuibu", U(tx), U(tlab), U(tloss), U(tstat),
                    (unsigned long long)rows, (unsigned long long)classes, xc->ignore_index,
                    U(tflag));
            kc_launch(k->fwd, geoms[gi]);
            kc_args(k->count, "buuibu", U(tlab), (unsigned long long)rows, xc->ignore_index,
                    U(tcount));
            kc_launch(k->count, geoms[gi]); /* groups past the first return */
            kc_args(k->mean, "buububu", U(tloss), (unsigned long long)rows, U(tcount), U(tmean));
            kc_launch(k->mean, geoms[gi]);
            kc_t_write(&tdx, g0);
            kc_args(k->bwd, "bubububububuuuii", U(tx), U(tlab), U(tstat), U(tcount), U(tdloss),
                    U(tdx), (unsigned long long)rows, (unsigned long long)classes, xc->ignore_index,
                    acc);
            kc_launch2(k->bwd, classes, rows, lo.lx, lo.ly);

            kc_t_read(&tloss, got);
            kc_stat_add(&e->loss, kc_err(got, loss, rows), "%zux%zu %s L%zu", rows, classes,
                        xc->labels, geoms[gi].local);
            kc_t_read(&tstat, got);
            kc_stat_add(&e->stat, kc_err(got, stat, 2 * rows), "%zux%zu L%zu", rows, classes,
                        geoms[gi].local);
            kc_t_read(&tcount, got);
            e->count_ok &= got[0] == count;
            kc_t_read(&tmean, got);
            kc_stat_add(&e->mean, kc_err(got, &mean, 1), "%zux%zu %s L%zu", rows, classes,
                        xc->labels, geoms[gi].local);
            kc_t_read(&tdx, got);
            kc_stat_add(&e->grad, kc_err(got, grad, n), "%zux%zu %s acc%d local %zux%zu", rows,
                        classes, xc->labels, acc, lo.lx, lo.ly);
            kc_t_read(&tflag, got);
            int flag_want = first_bad != INT_MAX;
            if (got[0] != flag_want || got[1] != first_bad) {
                printf("    flag {%g, %g}, want {%d, %d} (%zux%zu)\n", got[0], got[1], flag_want,
                       first_bad, rows, classes);
                e->flag_ok = 0;
            }
            for (int i = 0; i < 4; i++) {
                if (gi == 0 && rep == 0)
                    bits[i] = kc_t_bits(outs[i]);
                else if (gi == 0)
                    e->det_ok &= kc_t_same(outs[i], bits[i]);
            }
        }
    }
    kc_t *ts[] = {&tx, &tlab, &tloss, &tstat, &tcount, &tmean, &tdloss, &tdx, &tflag};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        e->pads_ok &= kc_t_pads_ok(ts[i]);
        kc_t_free(ts[i]);
    }
    for (int i = 0; i < 4; i++)
        free(bits[i]);
    free(x), free(g0), free(loss), free(grad), free(got), free(stat), free(lab), free(labd);
}

int main(void)
{
    kc_init("check_xent");
    check_fd();
    for (int dt = KC_F32; dt <= KC_BF16; dt++) {
        cl_program p = kc_build("xent.cl", dt);
        kernels k = {kc_kernel(p, "okto_xent_fwd"), kc_kernel(p, "okto_xent_count"),
                     kc_kernel(p, "okto_xent_mean"), kc_kernel(p, "okto_xent_bwd")};
        errs e = {.count_ok = 1, .flag_ok = 1, .det_ok = 1, .pads_ok = 1};
        for (size_t ci = 0; ci < NCASES; ci++)
            run(dt, &k, ci, &e);
        kc_stat_check("xent_fwd loss (float32)", dt, &e.loss, tol_loss);
        kc_stat_check("xent_fwd stat: max, log-sum (float32)", dt, &e.stat, tol_loss);
        kc_stat_check("xent_mean mean loss (float32)", dt, &e.mean, tol_loss);
        kc_expect("xent_count count (exact)", dt, e.count_ok, NULL);
        kc_stat_check("xent_bwd dx", dt, &e.grad, tol_grad(dt));
        kc_expect("bad labels: flag {1, first bad row}, else {0, INT_MAX}", dt, e.flag_ok, NULL);
        kc_expect("all outputs: same bits on a second run", dt, e.det_ok, NULL);
        kc_expect("nothing written outside the outputs", dt, e.pads_ok, NULL);
    }
    return kc_finish();
}
