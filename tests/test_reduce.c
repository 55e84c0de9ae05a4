/* tests/test_reduce.c: okto_reduce (SUM, MAX, MIN, MEAN over axis 0, 1 and -1) against a double
 * host reference on odd and partitioned shapes; 1e7-element reductions (SUM and MEAN within
 * 1e-6 relative error, MAX and MIN exact) through every plan (flat, per row with column chunks,
 * per column); shapes with many more tasks than the kernels' fixed grids, small and large in
 * one graph; partitioned vs one part, sequential vs heft; out aliasing in; the scratch
 * tensors owned by the graph alone; argument errors with both shapes in the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "engine.h" /* the scratch check looks at the graph's storages */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    size_t rows, cols;
} shape;

/* Column counts 6, 1027, 70001: the column kernel's last quad has 2 or 3 columns, rows start
 * at any float alignment, row chunks of the rows kernel end inside a float4. */
static const shape shapes[] = {{1, 1},    {1, 33},   {33, 1},    {7, 13},     {257, 129},
                               {1000, 6}, {5, 1027}, {3, 70001}, {1024, 1024}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])
static const okto_reduce_op ops[] = {OKTO_REDUCE_SUM, OKTO_REDUCE_MAX, OKTO_REDUCE_MIN, OKTO_REDUCE_MEAN};
static const int axes[] = {0, 1, -1};

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

/* axis -1 here is "all of it" (okto_reduce_all); okto_reduce's own -1 is the last dimension */
static okto_status reduce_any(okto_graph *g, okto_tensor *out, const okto_tensor *in,
                              okto_reduce_op op, int axis)
{
    return axis == -1 ? okto_reduce_all(g, out, in, op) : okto_reduce(g, out, in, op, axis);
}

static void out_shape(size_t rows, size_t cols, int axis, size_t *orows, size_t *ocols)
{
    *orows = axis == 1 ? rows : 1;
    *ocols = axis == 0 ? cols : 1;
}

/* Double reference of output i, and the "mass" (sum of |x|, over n for MEAN) that bounds the
 * rounding error of any summation order: a sum is checked as |got - want| <= tol * mass. */
static void reference(const float *x, size_t rows, size_t cols, okto_reduce_op op, int axis,
                      size_t i, double *want, double *mass)
{
    size_t r0 = 0, r1 = rows, c0 = 0, c1 = cols;
    if (axis == 0)
        c0 = i, c1 = i + 1;
    else if (axis == 1)
        r0 = i, r1 = i + 1;
    double s = 0, m = 0, best = op == OKTO_REDUCE_MAX ? -INFINITY : INFINITY;
    for (size_t r = r0; r < r1; r++)
        for (size_t c = c0; c < c1; c++) {
            double v = x[r * cols + c];
            s += v;
            m += fabs(v);
            if (op == OKTO_REDUCE_MAX ? v > best : v < best)
                best = v;
        }
    double n = (double)(r1 - r0) * (double)(c1 - c0);
    *want = op == OKTO_REDUCE_SUM ? s : op == OKTO_REDUCE_MEAN ? s / n : best;
    *mass = op == OKTO_REDUCE_MEAN ? m / n : m;
}

/* Worst error over the outputs: mass-relative for SUM and MEAN, |got - want| for MAX and MIN
 * (which must be exact: they pick one of the inputs). */
static double check(const float *x, size_t rows, size_t cols, okto_reduce_op op, int axis,
                    const float *got)
{
    size_t orows, ocols;
    out_shape(rows, cols, axis, &orows, &ocols);
    double worst = 0;
    for (size_t i = 0; i < orows * ocols; i++) {
        double want, mass;
        reference(x, rows, cols, op, axis, i, &want, &mass);
        double d = fabs((double)got[i] - want);
        if (op == OKTO_REDUCE_SUM || op == OKTO_REDUCE_MEAN)
            d /= mass > 0 ? mass : 1;
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Records every op on one input, runs, returns each output (malloc'd). */
static void run_ops(okto_context *c, const float *x, size_t rows, size_t cols, int axis,
                    okto_sched sched, float *got[4], int *ntasks)
{
    size_t orows, ocols;
    out_shape(rows, cols, axis, &orows, &ocols);
    okto_tensor *in = tu_tensor(c, rows, cols, x), *out[4];
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    for (int k = 0; k < 4; k++) {
        out[k] = tu_tensor(c, orows, ocols, NULL);
        TU_OK(reduce_any(g, out[k], in, ops[k], axis));
    }
    if (ntasks)
        *ntasks = okto_graph_task_count(g);
    TU_OK(okto_graph_run(g));
    for (int k = 0; k < 4; k++) {
        got[k] = tu_read(out[k]);
        okto_tensor_destroy(out[k]);
    }
    okto_graph_destroy(g);
    okto_tensor_destroy(in);
}

/* Bounds: sums 1e-6 of the mass (each work item's Kahan sum is good to ~2 ulp of its mass, and
 * at most ~16 levels of trees each add half an ulp: ~1e-6 in the worst case, ~1e-7 typical);
 * max and min exact. */
#define SUM_TOL 1e-6

static void all_ops_axes_shapes(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++) {
        size_t rows = shapes[si].rows, cols = shapes[si].cols, n = rows * cols;
        float *x = malloc(n * sizeof *x);
        tu_fill_random(x, n, 40 + si, -1.0f, 1.0f);
        for (size_t ai = 0; ai < 3; ai++) {
            float *got[4];
            int ntasks;
            run_ops(ctx, x, rows, cols, axes[ai], OKTO_SCHED_AUTO, got, &ntasks);
            if (n >= 1024 * 1024 && okto_context_compute_lanes(ctx) > 1)
                assert_true(ntasks > 4); /* partitioned */
            for (int k = 0; k < 4; k++) {
                double err = check(x, rows, cols, ops[k], axes[ai], got[k]);
                double tol = ops[k] == OKTO_REDUCE_MAX || ops[k] == OKTO_REDUCE_MIN ? 0 : SUM_TOL;
                if (err > tol)
                    fail_msg("reduce op %d axis %d on %zux%zu: error %g > %g", (int)ops[k],
                             axes[ai], rows, cols, err, tol);
                free(got[k]);
            }
        }
        free(x);
    }
}

/* 1e7 values in [0, 1): SUM and MEAN within 1e-6 relative error of the double reference (here
 * the mass is the sum), MAX and MIN exact, through every plan: flat parts (axis -1, axis 1 of
 * one row), per column with row chunks (axis 0 of a column, of 10000 x 1000), per row with
 * column chunks and a per-part aggregation (axis 1 of 100 x 100000 and 2 x 5000000). */
static void ten_million(void **state)
{
    (void)state;
    static const struct {
        size_t rows, cols;
        int axis;
    } cases[] = {{1, 10000000, 1},  {1, 10000000, -1}, {10000000, 1, 0},
                 {10000000, 1, -1}, {10000, 1000, -1}, {10000, 1000, 0},
                 {10000, 1000, 1},  {100, 100000, 1},  {2, 5000000, 1}};
    size_t n = 10000000;
    float *x = malloc(n * sizeof *x);
    tu_fill_random(x, n, 77, 0.0f, 1.0f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float *got[4];
        run_ops(ctx, x, cases[i].rows, cases[i].cols, cases[i].axis, OKTO_SCHED_AUTO, got, NULL);
        for (int k = 0; k < 4; k++) {
            double err = check(x, cases[i].rows, cases[i].cols, ops[k], cases[i].axis, got[k]);
            double tol = ops[k] == OKTO_REDUCE_MAX || ops[k] == OKTO_REDUCE_MIN ? 0 : 1e-6;
            if (k == 0)
                print_message("1e7 sum, %zux%zu axis %d: relative error %.2g (lanes %d)\n",
                              cases[i].rows, cases[i].cols, cases[i].axis, err,
                              okto_context_compute_lanes(ctx));
            if (err > tol)
                fail_msg("1e7 reduce op %d axis %d on %zux%zu: error %g > %g", (int)ops[k],
                         cases[i].axis, cases[i].rows, cases[i].cols, err, tol);
            free(got[k]);
        }
    }
    free(x);
}

/* One lane (one part per op) vs the default lanes (parts + aggregation): sums agree within the
 * bound (their trees differ), max and min exactly. Sequential vs heft: same tasks, same bits. */
static void partitioned_and_policies_agree(void **state)
{
    (void)state;
    size_t rows = 2048, cols = 512, n = rows * cols;
    float *x = malloc(n * sizeof *x);
    tu_fill_random(x, n, 5, -1.0f, 1.0f);
    okto_context *one = tu_context_with(1, OKTO_SCHED_AUTO);
    for (size_t ai = 0; ai < 3; ai++) {
        int axis = axes[ai], t1, tseq, theft;
        size_t orows, ocols;
        out_shape(rows, cols, axis, &orows, &ocols);
        size_t on = orows * ocols;
        float *a[4], *b[4], *c[4];
        run_ops(one, x, rows, cols, axis, OKTO_SCHED_AUTO, a, &t1);
        run_ops(ctx, x, rows, cols, axis, OKTO_SCHED_SEQUENTIAL, b, &tseq);
        run_ops(ctx, x, rows, cols, axis, OKTO_SCHED_HEFT, c, &theft);
        assert_int_equal(tseq, theft);
        if (okto_context_compute_lanes(ctx) > 1)
            assert_true(tseq > t1);
        for (int k = 0; k < 4; k++) {
            if (ops[k] == OKTO_REDUCE_MAX || ops[k] == OKTO_REDUCE_MIN) {
                assert_memory_equal(a[k], b[k], on * sizeof(float));
            } else {
                double worst = 0;
                for (size_t i = 0; i < on; i++) {
                    double want, mass;
                    reference(x, rows, cols, ops[k], axis, i, &want, &mass);
                    double d = fabs((double)a[k][i] - b[k][i]) / mass;
                    worst = d > worst ? d : worst;
                }
                assert_true(worst <= 2 * SUM_TOL); /* each within SUM_TOL of the reference */
            }
            assert_memory_equal(b[k], c[k], on * sizeof(float));
            free(a[k]);
            free(b[k]);
            free(c[k]);
        }
    }
    okto_context_destroy(one);
    free(x);
}

/* Infinities and NaN through the blocked, compensated sums and the float4 max/min: a +inf
 * makes the sum, mean and max of its row, its column and the whole +inf (never NaN through
 * the compensation); a NaN makes every op of its row, column and the whole NaN. Outputs that
 * see neither stay finite. */
static void inf_and_nan(void **state)
{
    (void)state;
    size_t rows = 300, cols = 301, n = rows * cols;
    float *x = malloc(n * sizeof *x);
    for (int which = 0; which < 2; which++)
        for (size_t ai = 0; ai < 3; ai++) {
            int axis = axes[ai];
            tu_fill_random(x, n, 9, 0.0f, 1.0f);
            size_t r = 123, c = 77;
            x[r * cols + c] = which ? NAN : INFINITY;
            size_t orows, ocols;
            out_shape(rows, cols, axis, &orows, &ocols);
            float *got[4];
            run_ops(ctx, x, rows, cols, axis, OKTO_SCHED_AUTO, got, NULL);
            for (size_t i = 0; i < orows * ocols; i++) {
                int hit = axis == -1 || (axis == 0 ? i == c : i == r);
                for (int k = 0; k < 4; k++) {
                    float v = got[k][i];
                    if (!hit) {
                        if (!isfinite(v))
                            fail_msg("op %d axis %d output %zu: %g, want finite", (int)ops[k], axis,
                                     i, v);
                    } else if (which) {
                        if (!isnan(v))
                            fail_msg("op %d axis %d output %zu: %g, want NaN", (int)ops[k], axis, i,
                                     v);
                    } else if (ops[k] == OKTO_REDUCE_MIN ? !isfinite(v) : v != INFINITY) {
                        fail_msg("op %d axis %d output %zu: %g, want %s", (int)ops[k], axis, i, v,
                                 ops[k] == OKTO_REDUCE_MIN ? "finite" : "inf");
                    }
                }
            }
            for (int k = 0; k < 4; k++)
                free(got[k]);
        }
    free(x);
}

/* The launches have a fixed grid and the kernels loop over their tasks: shapes with far more
 * tasks than work-groups (many short rows, many column tiles, many row chunks), small and
 * large in one graph (one kernel, one local size, the same grid for all, so PoCL keeps one
 * work-group function per kernel even with parts of different sizes in flight), all ops and
 * axes, checked against the reference. */
static void many_tasks_and_mixed_sizes(void **state)
{
    (void)state;
    static const shape mixed[] = {{2, 3},       {50001, 3}, {3, 20001}, {9, 70001},
                                  {40000, 130}, {1, 5},     {777, 1},   {65537, 2}};
    enum { NM = sizeof mixed / sizeof mixed[0] };
    float *x[NM], *got[NM][3][4];
    okto_tensor *in[NM], *out[NM][3][4];
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    for (size_t si = 0; si < NM; si++) {
        size_t n = mixed[si].rows * mixed[si].cols;
        x[si] = malloc(n * sizeof *x[si]);
        tu_fill_random(x[si], n, 300 + si, -1.0f, 1.0f);
        in[si] = tu_tensor(ctx, mixed[si].rows, mixed[si].cols, x[si]);
        for (size_t ai = 0; ai < 3; ai++)
            for (int k = 0; k < 4; k++) {
                size_t orows, ocols;
                out_shape(mixed[si].rows, mixed[si].cols, axes[ai], &orows, &ocols);
                out[si][ai][k] = tu_tensor(ctx, orows, ocols, NULL);
                TU_OK(reduce_any(g, out[si][ai][k], in[si], ops[k], axes[ai]));
            }
    }
    for (int rep = 0; rep < 3; rep++)
        TU_OK(okto_graph_run(g));
    for (size_t si = 0; si < NM; si++) {
        for (size_t ai = 0; ai < 3; ai++)
            for (int k = 0; k < 4; k++) {
                got[si][ai][k] = tu_read(out[si][ai][k]);
                double err =
                    check(x[si], mixed[si].rows, mixed[si].cols, ops[k], axes[ai], got[si][ai][k]);
                double tol = ops[k] == OKTO_REDUCE_MAX || ops[k] == OKTO_REDUCE_MIN ? 0 : SUM_TOL;
                if (err > tol)
                    fail_msg("reduce op %d axis %d on %zux%zu: error %g > %g", (int)ops[k],
                             axes[ai], mixed[si].rows, mixed[si].cols, err, tol);
                free(got[si][ai][k]);
                okto_tensor_destroy(out[si][ai][k]);
            }
        okto_tensor_destroy(in[si]);
        free(x[si]);
    }
    okto_graph_destroy(g);
}

/* out may not be (or overlap) in: a reduction in place is refused, nothing recorded; the same
 * reductions into their own outputs run. */
static void out_aliases_in(void **state)
{
    (void)state;
    float v = 2.5f, col[5] = {1, -2, 3, -4, 5};
    okto_tensor *t = tu_tensor(ctx, 1, 1, &v), *c = tu_tensor(ctx, 5, 1, col);
    okto_tensor *r = tu_tensor(ctx, 1, 5, col), *t2 = tu_tensor(ctx, 1, 1, NULL);
    okto_tensor *c2 = tu_tensor(ctx, 5, 1, NULL), *r2 = tu_tensor(ctx, 1, 5, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    tu_expect_refused(ctx, g, okto_reduce_all(g, t, t, OKTO_REDUCE_MEAN), OKTO_EINVAL, "overlap",
                      NULL, 0);
    tu_expect_refused(ctx, g, okto_reduce(g, c, c, OKTO_REDUCE_MAX, 1), OKTO_EINVAL, "overlap",
                      NULL, 0);
    TU_OK(okto_reduce_all(g, t2, t, OKTO_REDUCE_MEAN));
    TU_OK(okto_reduce(g, c2, c, OKTO_REDUCE_MAX, 1));
    TU_OK(okto_reduce(g, r2, r, OKTO_REDUCE_SUM, 0));
    TU_OK(okto_graph_run(g));
    float *got = tu_read(t2);
    assert_true(got[0] == 2.5f);
    free(got);
    got = tu_read(c2);
    assert_memory_equal(got, col, sizeof col);
    free(got);
    got = tu_read(r2);
    assert_memory_equal(got, col, sizeof col);
    free(got);
    okto_graph_destroy(g);
    okto_tensor_destroy(t2), okto_tensor_destroy(c2), okto_tensor_destroy(r2);
    okto_tensor_destroy(t);
    okto_tensor_destroy(c);
    okto_tensor_destroy(r);
}

/* The scratch of a partitioned reduction belongs to the graph alone (a graph temporary, held by
 * its temporaries and its storages: refcount 2, no handle), so it is freed with the graph; and
 * it is reused, not re-made, on every launch. */
static void scratch_is_owned_by_the_graph(void **state)
{
    (void)state;
    if (okto_context_compute_lanes(ctx) < 2)
        skip();
    okto_tensor *in = tu_tensor(ctx, 1024, 1024, NULL), *out = tu_tensor(ctx, 1, 1, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_reduce_all(g, out, in, OKTO_REDUCE_SUM));
    assert_true(okto_graph_task_count(g) > 1);
    int scratch = 0;
    for (int i = 0; i < g->nstores; i++)
        if (g->stores[i].st != in->st && g->stores[i].st != out->st) {
            scratch++;
            assert_int_equal(atomic_load(&g->stores[i].st->refs), 2);
            int temp = 0;
            for (int k = 0; k < g->ntemps; k++)
                temp |= g->temps[k] == g->stores[i].st;
            assert_true(temp);
        }
    assert_int_equal(scratch, 1);
    TU_OK(okto_graph_run(g));
    TU_OK(okto_graph_run(g));
    float *got = tu_read(out);
    assert_true(got[0] == 0.0f);
    free(got);
    okto_graph_destroy(g);
    okto_tensor_destroy(in);
    okto_tensor_destroy(out);
}

static void expect_fail(okto_graph *g, okto_status got, const char *s1, const char *s2, int n0)
{
    tu_expect_refused(ctx, g, got, OKTO_EINVAL, s1, s2, n0);
}

static void argument_errors(void **state)
{
    (void)state;
    okto_tensor *in = tu_tensor(ctx, 3, 4, NULL), *o14 = tu_tensor(ctx, 1, 4, NULL);
    okto_tensor *o31 = tu_tensor(ctx, 3, 1, NULL), *o11 = tu_tensor(ctx, 1, 1, NULL);
    okto_tensor *big = tu_tensor(ctx, 4, 1, NULL), *va, *vb;
    TU_OK(okto_tensor_view(big, 0, 3, &va));
    TU_OK(okto_tensor_view(big, 1, 3, &vb));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_reduce_all(g, o11, in, OKTO_REDUCE_SUM));
    int n0 = okto_graph_task_count(g);
    expect_fail(g, okto_reduce(g, o31, in, OKTO_REDUCE_SUM, 0), "in is f32[3,4]", "out is f32[3,1]", n0);
    expect_fail(g, okto_reduce(g, o14, in, OKTO_REDUCE_SUM, 1), "in is f32[3,4]", "out is f32[1,4]", n0);
    expect_fail(g, okto_reduce_all(g, o14, in, OKTO_REDUCE_SUM), "in is f32[3,4]", "out is f32[1,4]", n0);
    expect_fail(g, okto_reduce(g, o11, in, OKTO_REDUCE_MAX, 0), "must be f32[1,4]", NULL, n0);
    expect_fail(g, okto_reduce(g, o11, in, OKTO_REDUCE_SUM, 2), "axis 2", NULL, n0);
    expect_fail(g, okto_reduce(g, o11, in, OKTO_REDUCE_SUM, -3), "axis -3", NULL, n0);
    expect_fail(g, okto_reduce_all(g, o11, in, (okto_reduce_op)4), "op 4", NULL, n0);
    expect_fail(g, okto_reduce_all(g, NULL, in, OKTO_REDUCE_SUM), "out", NULL, n0);
    expect_fail(g, okto_reduce_all(g, o11, NULL, OKTO_REDUCE_SUM), "in", NULL, n0);
    expect_fail(g, okto_reduce(g, va, vb, OKTO_REDUCE_SUM, 1), "overlap", NULL, n0);
    assert_int_equal(okto_reduce_all(NULL, o11, in, OKTO_REDUCE_SUM), OKTO_EINVAL);
    okto_context *other = tu_context_with(1, OKTO_SCHED_AUTO);
    okto_tensor *alien = tu_tensor(other, 3, 4, NULL);
    expect_fail(g, okto_reduce_all(g, o11, alien, OKTO_REDUCE_SUM), "another context", NULL, n0);
    okto_tensor_destroy(alien);
    okto_context_destroy(other);
    okto_graph_destroy(g);
    okto_tensor *all[] = {in, o14, o31, o11, va, vb, big};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        okto_tensor_destroy(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_ops_axes_shapes),
        cmocka_unit_test(ten_million),
        cmocka_unit_test(partitioned_and_policies_agree),
        cmocka_unit_test(inf_and_nan),
        cmocka_unit_test(many_tasks_and_mixed_sizes),
        cmocka_unit_test(out_aliases_in),
        cmocka_unit_test(scratch_is_owned_by_the_graph),
        cmocka_unit_test(argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
