/* tests/test_softmax.c: okto_softmax and okto_softmax_xent against double host references on
 * odd and partitioned shapes; logits around 1e4 (finite and correct); in place; loss only,
 * grad only, grad in place of the logits; bad labels; partitioned vs one part, sequential vs
 * heft; argument errors with both shapes in the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    size_t rows, cols;
} shape;

static const shape shapes[] = {{1, 1}, {1, 33}, {33, 1}, {7, 13}, {257, 129}, {1024, 1024}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* Bounds. softmax: relative error per element 1e-5 (exp is within 3 ulp, x - max is exact,
 * the row sum is good to a few ulp; a value far below 1 keeps its relative accuracy). loss:
 * 1e-5 relative (the mean of per-row losses, each (max - x[label]) + log(sum)). grad: 1e-5 of
 * 1/rows, the largest a gradient entry can be. */
#define SOFTMAX_TOL 1e-5
#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-5

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

static void ref_softmax(const float *x, size_t rows, size_t cols, double *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        double m = -INFINITY, s = 0;
        for (size_t c = 0; c < cols; c++)
            m = row[c] > m ? row[c] : m;
        for (size_t c = 0; c < cols; c++)
            s += exp((double)row[c] - m);
        for (size_t c = 0; c < cols; c++)
            y[r * cols + c] = exp((double)row[c] - m) / s;
    }
}

/* Largest |got - want| / |want| (every softmax value is positive). */
static double max_rel(const float *got, const double *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / want[i];
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static float *softmax_run(okto_context *c, const float *x, size_t rows, size_t cols, int in_place,
                          okto_sched sched, int *ntasks)
{
    okto_tensor *in = tu_tensor(c, rows, cols, x);
    okto_tensor *out = in_place ? in : tu_tensor(c, rows, cols, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    TU_OK(okto_softmax(g, out, in));
    if (ntasks)
        *ntasks = okto_graph_task_count(g);
    TU_OK(okto_graph_run(g));
    float *got = tu_read(out);
    okto_graph_destroy(g);
    if (!in_place)
        okto_tensor_destroy(out);
    okto_tensor_destroy(in);
    return got;
}

static void softmax_shapes(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++) {
        size_t rows = shapes[si].rows, cols = shapes[si].cols, n = rows * cols;
        float *x = malloc(n * sizeof *x);
        double *want = malloc(n * sizeof *want);
        tu_fill_random(x, n, 3 + si, -8.0f, 8.0f);
        ref_softmax(x, rows, cols, want);
        int ntasks;
        float *got = softmax_run(ctx, x, rows, cols, 0, OKTO_SCHED_AUTO, &ntasks);
        if (n >= 1024 * 1024 && okto_context_compute_lanes(ctx) > 1)
            assert_true(ntasks > 1); /* partitioned */
        double err = max_rel(got, want, n);
        if (err > SOFTMAX_TOL)
            fail_msg("softmax %zux%zu: error %g > %g", rows, cols, err, SOFTMAX_TOL);
        free(got);
        got = softmax_run(ctx, x, rows, cols, 1, OKTO_SCHED_AUTO, NULL); /* out == in */
        err = max_rel(got, want, n);
        if (err > SOFTMAX_TOL)
            fail_msg("softmax in place %zux%zu: error %g > %g", rows, cols, err, SOFTMAX_TOL);
        free(got);
        free(x);
        free(want);
    }
}

/* Logits around 1e4 (exp would overflow without the max subtracted) and one row with a spread
 * of 1e4 between its entries: all finite and as accurate as small logits. */
static void softmax_large_logits(void **state)
{
    (void)state;
    size_t rows = 64, cols = 300, n = rows * cols;
    float *x = malloc(n * sizeof *x);
    double *want = malloc(n * sizeof *want);
    tu_fill_random(x, n, 9, 9990.0f, 10010.0f);
    for (size_t c = 0; c < cols; c++)
        x[c] = c % 2 ? 1e4f : -1e4f; /* half the row underflows to 0 in the reference too */
    ref_softmax(x, rows, cols, want);
    float *got = softmax_run(ctx, x, rows, cols, 0, OKTO_SCHED_AUTO, NULL);
    for (size_t i = 0; i < n; i++)
        assert_true(isfinite(got[i]));
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = want[i] > 0 ? fabs(got[i] - want[i]) / want[i] : fabs(got[i]);
        worst = d > worst ? d : worst;
    }
    if (worst > SOFTMAX_TOL)
        fail_msg("softmax of logits ~1e4: error %g > %g", worst, SOFTMAX_TOL);
    free(got);
    free(x);
    free(want);
}

/* Double reference: mean loss and grad = (softmax - onehot) / rows. */
static double ref_xent(const float *x, const float *lab, size_t rows, size_t cols, double *grad)
{
    double total = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        double m = -INFINITY, s = 0;
        for (size_t c = 0; c < cols; c++)
            m = row[c] > m ? row[c] : m;
        for (size_t c = 0; c < cols; c++)
            s += exp((double)row[c] - m);
        size_t label = (size_t)lab[r];
        total += m + log(s) - row[label];
        for (size_t c = 0; c < cols; c++)
            grad[r * cols + c] =
                (exp((double)row[c] - m) / s - (c == label ? 1.0 : 0.0)) / (double)rows;
    }
    return total / (double)rows;
}

static void labels_for(float *lab, size_t rows, size_t cols, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t r = 0; r < rows; r++)
        lab[r] = (float)(tu_rand(&s) % cols);
}

/* Runs softmax_xent with the outputs asked for; returns the loss (NAN when not asked). */
static float xent_run_bad(okto_context *c, const float *x, const float *lab, size_t rows,
                          size_t cols, int want_loss, int want_grad, int grad_in_place,
                          okto_sched sched, float **grad_out, int bad_row)
{
    okto_tensor *tx = tu_tensor(c, rows, cols, x), *tl = NULL;
    TU_OK(okto_tensor_create(c, OKTO_I32, 2, (size_t[]){rows, 1}, &tl));
    TU_OK(okto_tensor_write_f32(tl, lab)); /* the labels are small integers: exact */
    okto_tensor *loss = want_loss ? tu_tensor(c, 1, 1, NULL) : NULL;
    okto_tensor *grad = !want_grad ? NULL : grad_in_place ? tx : tu_tensor(c, rows, cols, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    TU_OK(okto_softmax_xent(g, loss, grad, tx, tl));
    okto_status st = okto_graph_run(g);
    if (bad_row >= 0) {
        /* a label out of range is found on the device and fails the run, naming the row */
        char want[64];
        snprintf(want, sizeof want, "the label of row %d is", bad_row);
        assert_int_equal(st, OKTO_EINVAL);
        if (!strstr(okto_last_error(c), "okto_softmax_xent") ||
            !strstr(okto_last_error(c), want))
            fail_msg("the failure \"%s\" does not name the op and row %d", okto_last_error(c),
                     bad_row);
    } else {
        TU_OK(st);
    }
    float l = NAN;
    if (loss)
        TU_OK(okto_tensor_read(loss, &l));
    if (grad)
        *grad_out = tu_read(grad);
    if (bad_row >= 0) {
        /* the flag was cleared: with the label mended the same graph runs */
        int32_t *good = malloc(rows * sizeof *good);
        for (size_t r = 0; r < rows; r++)
            good[r] = (int)r == bad_row ? 0 : (int32_t)lab[r];
        TU_OK(okto_tensor_write(tl, good));
        TU_OK(okto_graph_run(g));
        free(good);
    }
    okto_tensor_destroy(loss);
    okto_graph_destroy(g);
    if (grad && !grad_in_place)
        okto_tensor_destroy(grad);
    okto_tensor_destroy(tx);
    okto_tensor_destroy(tl);
    return l;
}

static float xent_run(okto_context *c, const float *x, const float *lab, size_t rows, size_t cols,
                      int want_loss, int want_grad, int grad_in_place, okto_sched sched,
                      float **grad_out)
{
    return xent_run_bad(c, x, lab, rows, cols, want_loss, want_grad, grad_in_place, sched,
                        grad_out, -1);
}

static double grad_err(const float *got, const double *want, size_t rows, size_t cols)
{
    double worst = 0;
    for (size_t i = 0; i < rows * cols; i++) {
        double d = fabs((double)got[i] - want[i]) * (double)rows; /* relative to 1/rows */
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static void xent_case(size_t rows, size_t cols, float lo, float hi, uint64_t seed)
{
    size_t n = rows * cols;
    float *x = malloc(n * sizeof *x), *lab = malloc(rows * sizeof *lab), *grad;
    double *want = malloc(n * sizeof *want);
    tu_fill_random(x, n, seed, lo, hi);
    labels_for(lab, rows, cols, seed);
    double wl = ref_xent(x, lab, rows, cols, want);
    /* loss and grad */
    float l = xent_run(ctx, x, lab, rows, cols, 1, 1, 0, OKTO_SCHED_AUTO, &grad);
    double le = fabs(l - wl) / fmax(fabs(wl), 1e-30);
    if (!(le <= LOSS_TOL) && !(wl == 0 && fabs(l) <= 1e-6))
        fail_msg("xent loss %zux%zu [%g, %g): %.9g vs %.9g (error %g > %g)", rows, cols, lo, hi, l,
                 wl, le, LOSS_TOL);
    double ge = grad_err(grad, want, rows, cols);
    if (ge > GRAD_TOL)
        fail_msg("xent grad %zux%zu: error %g > %g", rows, cols, ge, GRAD_TOL);
    free(grad);
    /* loss only */
    float l2 = xent_run(ctx, x, lab, rows, cols, 1, 0, 0, OKTO_SCHED_AUTO, NULL);
    assert_true(l2 == l);
    /* grad only, in place of the logits */
    xent_run(ctx, x, lab, rows, cols, 0, 1, 1, OKTO_SCHED_AUTO, &grad);
    ge = grad_err(grad, want, rows, cols);
    if (ge > GRAD_TOL)
        fail_msg("xent grad in place %zux%zu: error %g > %g", rows, cols, ge, GRAD_TOL);
    free(grad);
    free(x);
    free(lab);
    free(want);
}

static void xent_shapes(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        xent_case(shapes[si].rows, shapes[si].cols, -6.0f, 6.0f, 20 + si);
}

static void xent_large_logits(void **state)
{
    (void)state;
    xent_case(300, 37, 9990.0f, 10010.0f, 31);
    xent_case(64, 1000, -1e4f, 1e4f, 32); /* near one-hot softmax: losses 0 or ~1e4 */
}

/* A label outside [0, cols) makes its row's loss NaN and fails the run with OKTO_EINVAL naming
 * the row (a device-side check); the other rows' gradients are untouched, and the context and
 * graph are fine afterwards. */
static void xent_bad_label(void **state)
{
    (void)state;
    size_t rows = 4, cols = 5;
    float x[20], lab[4] = {0, 4, 2, 1}, *grad;
    double want[20];
    tu_fill_random(x, 20, 8, -1.0f, 1.0f);
    ref_xent(x, lab, rows, cols, want);
    static const float bad[] = {5.0f, -1.0f, 1e6f};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lab[3] = bad[i];
        float l = xent_run_bad(ctx, x, lab, rows, cols, 1, 1, 0, OKTO_SCHED_AUTO, &grad, 3);
        assert_true(isnan(l));
        assert_true(grad_err(grad, want, 3, cols) <= GRAD_TOL * 3.0 / rows);
        free(grad);
        lab[3] = 1;
    }
}

/* One part vs parts per lane; sequential vs heft (the same tasks: the same bits). */
static void partitioned_and_policies_agree(void **state)
{
    (void)state;
    size_t rows = 1024, cols = 512, n = rows * cols;
    float *x = malloc(n * sizeof *x), *lab = malloc(rows * sizeof *lab);
    tu_fill_random(x, n, 12, -5.0f, 5.0f);
    labels_for(lab, rows, cols, 12);
    okto_context *one = tu_context_with(1, OKTO_SCHED_AUTO);
    int t1, tseq, theft;
    float *a = softmax_run(one, x, rows, cols, 0, OKTO_SCHED_AUTO, &t1);
    float *b = softmax_run(ctx, x, rows, cols, 0, OKTO_SCHED_SEQUENTIAL, &tseq);
    float *c = softmax_run(ctx, x, rows, cols, 0, OKTO_SCHED_HEFT, &theft);
    assert_int_equal(t1, 1);
    if (okto_context_compute_lanes(ctx) > 1)
        assert_true(tseq > 1 && tseq == theft);
    /* each row is one work-group in every plan: the same bits */
    assert_memory_equal(a, b, n * sizeof *a);
    assert_memory_equal(b, c, n * sizeof *b);
    free(a);
    free(b);
    free(c);
    float la = xent_run(one, x, lab, rows, cols, 1, 1, 0, OKTO_SCHED_AUTO, &a);
    float lb = xent_run(ctx, x, lab, rows, cols, 1, 1, 0, OKTO_SCHED_SEQUENTIAL, &b);
    float lc = xent_run(ctx, x, lab, rows, cols, 1, 1, 0, OKTO_SCHED_HEFT, &c);
    assert_memory_equal(a, b, n * sizeof *a);
    assert_memory_equal(b, c, n * sizeof *b);
    assert_true(fabs(la - lb) <= 2 * LOSS_TOL * fabs(la)); /* the mean's tree may differ */
    assert_true(lb == lc);
    free(a);
    free(b);
    free(c);
    okto_context_destroy(one);
    free(x);
    free(lab);
}

static void expect_fail(okto_graph *g, okto_status got, const char *s1, const char *s2, int n0)
{
    tu_expect_refused(ctx, g, got, OKTO_EINVAL, s1, s2, n0);
}

static void argument_errors(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 3, 4, NULL), *o = tu_tensor(ctx, 3, 4, NULL);
    okto_tensor *o43 = tu_tensor(ctx, 4, 3, NULL), *lab, *lab2, *lab32;
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){3, 1}, &lab));
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){2, 1}, &lab2));
    TU_OK(okto_tensor_create(ctx, OKTO_I32, 2, (size_t[]){3, 2}, &lab32));
    okto_tensor *loss = tu_tensor(ctx, 1, 1, NULL), *loss12 = tu_tensor(ctx, 1, 2, NULL);
    okto_tensor *big = tu_tensor(ctx, 4, 4, NULL), *va, *vb;
    TU_OK(okto_tensor_view(big, 0, 3, &va));
    TU_OK(okto_tensor_view(big, 1, 3, &vb));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_softmax(g, o, x));
    int n0 = okto_graph_task_count(g);
    expect_fail(g, okto_softmax(g, o43, x), "in is f32[3,4]", "out is f32[4,3]", n0);
    expect_fail(g, okto_softmax(g, NULL, x), "out", NULL, n0);
    expect_fail(g, okto_softmax(g, o, NULL), "in", NULL, n0);
    expect_fail(g, okto_softmax(g, vb, va), "overlap", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, x, lab2), "logits is f32[3,4]", "labels is i32[2,1]", n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, x, lab32), "logits is f32[3,4]", "labels is i32[3,2]", n0);
    expect_fail(g, okto_softmax_xent(g, loss12, o, x, lab), "logits is f32[3,4]", "loss is f32[1,2]", n0);
    expect_fail(g, okto_softmax_xent(g, loss, o43, x, lab), "logits is f32[3,4]", "grad is f32[4,3]", n0);
    expect_fail(g, okto_softmax_xent(g, NULL, NULL, x, lab), "both NULL", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, NULL, lab), "logits", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, x, NULL), "labels", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, vb, va, lab), "overlap", NULL, n0);
    assert_int_equal(okto_softmax(NULL, o, x), OKTO_EINVAL);
    assert_int_equal(okto_softmax_xent(NULL, loss, o, x, lab), OKTO_EINVAL);
    okto_context *other = tu_context_with(1, OKTO_SCHED_AUTO);
    okto_tensor *alien = tu_tensor(other, 3, 4, NULL), *alien_lab = tu_tensor(other, 3, 1, NULL);
    expect_fail(g, okto_softmax(g, o, alien), "another context", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, alien, lab), "another context", NULL, n0);
    expect_fail(g, okto_softmax_xent(g, loss, o, x, alien_lab), "another context", NULL, n0);
    okto_tensor_destroy(alien);
    okto_tensor_destroy(alien_lab);
    okto_context_destroy(other);
    okto_graph_destroy(g);
    okto_tensor *all[] = {x, o, o43, lab, lab2, lab32, loss, loss12, va, vb, big};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        okto_tensor_destroy(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softmax_shapes),  cmocka_unit_test(softmax_large_logits),
        cmocka_unit_test(xent_shapes),     cmocka_unit_test(xent_large_logits),
        cmocka_unit_test(xent_bad_label),  cmocka_unit_test(partitioned_and_policies_agree),
        cmocka_unit_test(argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
