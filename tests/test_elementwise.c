/* tests/test_elementwise.c: what tests/test_ops.c's per-op table does not: okto_zip on 2-D
 * shapes with partitioned broadcast rows, out aliasing an input, partitioned vs one part,
 * sequential vs heft, and every argument error (shapes named in the message, bad enums, NULLs,
 * another context's tensors, overlapping views), each leaving the graph as it was. The maps'
 * references are test_ops.c's. */
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

/* 1024 x 1024 is big enough to be split into one part per compute lane. */
static const shape shapes[] = {{1, 1}, {1, 33}, {33, 1}, {7, 13}, {257, 129}, {1024, 1024}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static okto_context *ctx; /* default lanes (2+ on the test machine: ops partition) */

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

static double ref_zip(okto_zip_op op, double a, double b)
{
    switch (op) {
    case OKTO_ZIP_ADD: return a + b;
    case OKTO_ZIP_SUB: return a - b;
    case OKTO_ZIP_MUL: return a * b;
    case OKTO_ZIP_DIV: return a / b;
    case OKTO_ZIP_MAX: return a > b ? a : b;
    case OKTO_ZIP_MIN: return a < b ? a : b;
    case OKTO_ZIP_RELU_GRAD: return a * (b > 0 ? 1.0 : 0.0);
    case OKTO_ZIP_COUNT: break;
    }
    return NAN;
}

/* Error bounds, as |got - want| / max(1, |want|) (tu_max_rel_err) against a double reference:
 * one float rounding is 2^-24 = 6e-8 (square, +, -, *); the OpenCL spec allows 3 ulp for
 * sqrt, 2.5 ulp for divide, 3-5 ulp for exp, log, tanh, and GELU and SIGMOID compose two of
 * them; neg, abs, relu, max, min are exact. */
/* one rounding of the result: half an ulp of float, relative */
#define ONE_ROUNDING 6e-8

static void run(okto_graph *g) { TU_OK(okto_graph_run(g)); }

static double zip_tol(okto_zip_op op)
{
    switch (op) {
    case OKTO_ZIP_DIV: return 3e-7;
    case OKTO_ZIP_MAX:
    case OKTO_ZIP_MIN:
    case OKTO_ZIP_RELU_GRAD: return 0;
    default: return ONE_ROUNDING;
    }
}

static void zip_case(size_t rows, size_t cols, int bcast, okto_zip_op op, uint64_t seed)
{
    size_t n = rows * cols, bn = bcast ? cols : n;
    float *a = malloc(n * sizeof *a), *b = malloc(bn * sizeof *b);
    double *want = malloc(n * sizeof *want);
    tu_fill_random(a, n, seed, -3.0f, 3.0f);
    if (op == OKTO_ZIP_DIV)
        tu_fill_random(b, bn, seed + 1, 0.5f, 3.0f);
    else
        tu_fill_random(b, bn, seed + 1, -3.0f, 3.0f);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            want[r * cols + c] = ref_zip(op, a[r * cols + c], b[bcast ? c : r * cols + c]);
    okto_tensor *ta = tu_tensor(ctx, rows, cols, a),
                *tb = tu_tensor(ctx, bcast ? 1 : rows, cols, b);
    okto_tensor *out = tu_tensor(ctx, rows, cols, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_zip(g, out, ta, tb, op));
    run(g);
    float *got = tu_read(out);
    double err = tu_max_rel_err(got, want, n);
    if (err > zip_tol(op))
        fail_msg("zip op %d on %zux%zu (b %s): error %g > %g", op, rows, cols,
                 bcast ? "broadcast" : "full", err, zip_tol(op));
    free(got);
    okto_graph_destroy(g);
    okto_tensor_destroy(ta);
    okto_tensor_destroy(tb);
    okto_tensor_destroy(out);
    free(a);
    free(b);
    free(want);
}

static void zip_all_ops_all_shapes(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (int op = OKTO_ZIP_ADD; op <= OKTO_ZIP_RELU_GRAD; op++)
            zip_case(shapes[si].rows, shapes[si].cols, 0, (okto_zip_op)op, 7 + (uint64_t)op);
}

static void zip_broadcast_row(void **state)
{
    (void)state;
    for (size_t si = 0; si < NSHAPES; si++)
        for (int op = OKTO_ZIP_ADD; op <= OKTO_ZIP_RELU_GRAD; op++)
            zip_case(shapes[si].rows, shapes[si].cols, 1, (okto_zip_op)op, 17 + (uint64_t)op);
}

/* out == in for map, out == a, out == b, out == a == b for zip: results as out of place. */
static void out_aliases_input(void **state)
{
    (void)state;
    size_t rows = 1024, cols = 1024, n = rows * cols;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    double *want = malloc(n * sizeof *want);
    tu_fill_random(x, n, 3, -2.0f, 2.0f);
    tu_fill_random(y, n, 4, -2.0f, 2.0f);
    okto_graph *g;

    /* map in place: tanh */
    okto_tensor *t = tu_tensor(ctx, rows, cols, x);
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_map(g, t, t, OKTO_MAP_TANH));
    run(g);
    for (size_t i = 0; i < n; i++)
        want[i] = tanh((double)x[i]);
    float *got = tu_read(t);
    assert_true(tu_max_rel_err(got, want, n) <= 2e-6); /* tanh: as tests/test_ops.c holds it */
    free(got);
    okto_graph_destroy(g);
    okto_tensor_destroy(t);

    /* zip: out == a (a - b), out == b (a - b), out == a == b (a * a) */
    for (int which = 0; which < 3; which++) {
        okto_tensor *ta = tu_tensor(ctx, rows, cols, x), *tb = tu_tensor(ctx, rows, cols, y);
        TU_OK(okto_graph_create(ctx, &g));
        okto_tensor *out = which == 1 ? tb : ta;
        if (which == 2)
            TU_OK(okto_zip(g, ta, ta, ta, OKTO_ZIP_MUL));
        else
            TU_OK(okto_zip(g, out, ta, tb, OKTO_ZIP_SUB));
        run(g);
        for (size_t i = 0; i < n; i++)
            want[i] = which == 2 ? (double)x[i] * x[i] : (double)x[i] - y[i];
        got = tu_read(out);
        assert_true(tu_max_rel_err(got, want, n) <= ONE_ROUNDING);
        free(got);
        okto_graph_destroy(g);
        okto_tensor_destroy(ta);
        okto_tensor_destroy(tb);
    }

    /* out == a with a broadcast b (bias add in place) */
    okto_tensor *ta = tu_tensor(ctx, rows, cols, x), *tb = tu_tensor(ctx, 1, cols, y);
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_zip(g, ta, ta, tb, OKTO_ZIP_ADD));
    run(g);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            want[r * cols + c] = (double)x[r * cols + c] + y[c];
    got = tu_read(ta);
    assert_true(tu_max_rel_err(got, want, n) <= ONE_ROUNDING);
    free(got);
    okto_graph_destroy(g);
    okto_tensor_destroy(ta);
    okto_tensor_destroy(tb);
    free(x);
    free(y);
    free(want);
}

/* Records gelu(x) + bias, relu_grad and a chain on c; returns the downloaded out. */
static float *chain(okto_context *c, const float *x, const float *bias, size_t rows, size_t cols,
                    okto_sched sched, int *ntasks)
{
    okto_tensor *tx = tu_tensor(c, rows, cols, x), *tb = tu_tensor(c, 1, cols, bias);
    okto_tensor *h = tu_tensor(c, rows, cols, NULL), *out = tu_tensor(c, rows, cols, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    TU_OK(okto_map(g, h, tx, OKTO_MAP_GELU_TANH));
    TU_OK(okto_zip(g, h, h, tb, OKTO_ZIP_ADD));
    TU_OK(okto_map(g, out, h, OKTO_MAP_SIGMOID));
    TU_OK(okto_zip(g, out, out, h, OKTO_ZIP_RELU_GRAD));
    TU_OK(okto_map(g, out, out, OKTO_MAP_SQUARE));
    *ntasks = okto_graph_task_count(g);
    run(g);
    run(g); /* a replay computes the same from the same inputs: the chain rewrites h and out */
    float *got = tu_read(out);
    okto_graph_destroy(g);
    okto_tensor_destroy(tx);
    okto_tensor_destroy(tb);
    okto_tensor_destroy(h);
    okto_tensor_destroy(out);
    return got;
}

/* The same kernels on the same rows: partitioning and policy change no bit. */
static void partitioned_and_policies_agree(void **state)
{
    (void)state;
    size_t rows = 1024, cols = 1024, n = rows * cols;
    float *x = malloc(n * sizeof *x), *bias = malloc(cols * sizeof *bias);
    tu_fill_random(x, n, 11, -3.0f, 3.0f);
    tu_fill_random(bias, cols, 12, -1.0f, 1.0f);
    okto_context *one = tu_context_with(1, OKTO_SCHED_AUTO);
    int t1, tseq, theft;
    float *a = chain(one, x, bias, rows, cols, OKTO_SCHED_AUTO, &t1);
    float *b = chain(ctx, x, bias, rows, cols, OKTO_SCHED_SEQUENTIAL, &tseq);
    float *c = chain(ctx, x, bias, rows, cols, OKTO_SCHED_HEFT, &theft);
    assert_int_equal(t1, 5); /* one lane: one part per op */
    if (okto_context_compute_lanes(ctx) > 1)
        assert_true(tseq > 5 && tseq == theft);
    assert_memory_equal(a, b, n * sizeof *a);
    assert_memory_equal(b, c, n * sizeof *b);
    free(a);
    free(b);
    free(c);
    free(x);
    free(bias);
    okto_context_destroy(one);
}

/* A failing call: the status, both shapes (or the culprit) in the message, nothing recorded. */
static void expect_fail(okto_graph *g, okto_status got, okto_status want, const char *s1,
                        const char *s2, int tasks_before)
{
    tu_expect_refused(ctx, g, got, want, s1, s2, tasks_before);
}

static void argument_errors(void **state)
{
    (void)state;
    okto_tensor *a34 = tu_tensor(ctx, 3, 4, NULL), *b24 = tu_tensor(ctx, 2, 4, NULL);
    okto_tensor *b14 = tu_tensor(ctx, 1, 4, NULL), *b35 = tu_tensor(ctx, 3, 5, NULL);
    okto_tensor *o34 = tu_tensor(ctx, 3, 4, NULL), *o43 = tu_tensor(ctx, 4, 3, NULL);
    okto_tensor *big = tu_tensor(ctx, 6, 4, NULL), *v0, *v1;
    TU_OK(okto_tensor_view(big, 0, 3, &v0));
    TU_OK(okto_tensor_view(big, 1, 3, &v1));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_map(g, o34, a34, OKTO_MAP_RELU)); /* something recorded: failures keep it */
    int n0 = okto_graph_task_count(g);

    expect_fail(g, okto_zip(g, o34, a34, b24, OKTO_ZIP_ADD), OKTO_EINVAL, "a is f32[3,4], b is f32[2,4]",
                "do not broadcast", n0);
    expect_fail(g, okto_zip(g, o34, a34, b35, OKTO_ZIP_ADD), OKTO_EINVAL, "[3,4]", "[3,5]", n0);
    expect_fail(g, okto_zip(g, o43, a34, b14, OKTO_ZIP_ADD), OKTO_EINVAL, "[3,4]", "[4,3]", n0);
    expect_fail(g, okto_map(g, o43, a34, OKTO_MAP_EXP), OKTO_EINVAL, "[3,4]", "[4,3]", n0);
    expect_fail(g, okto_map(g, o34, a34, (okto_map_op)99), OKTO_EINVAL, "99", NULL, n0);
    expect_fail(g, okto_map(g, o34, a34, (okto_map_op)-1), OKTO_EINVAL, "-1", NULL, n0);
    expect_fail(g, okto_zip(g, o34, a34, a34, (okto_zip_op)7), OKTO_EINVAL, "7", NULL, n0);
    expect_fail(g, okto_map(g, NULL, a34, OKTO_MAP_EXP), OKTO_EINVAL, "out", NULL, n0);
    expect_fail(g, okto_map(g, o34, NULL, OKTO_MAP_EXP), OKTO_EINVAL, "in", NULL, n0);
    expect_fail(g, okto_zip(g, o34, a34, NULL, OKTO_ZIP_ADD), OKTO_EINVAL, "b", NULL, n0);
    assert_int_equal(okto_map(NULL, o34, a34, OKTO_MAP_EXP), OKTO_EINVAL);
    assert_int_equal(okto_zip(NULL, o34, a34, a34, OKTO_ZIP_ADD), OKTO_EINVAL);
    /* views of one tensor that overlap without being the same rows */
    expect_fail(g, okto_map(g, v1, v0, OKTO_MAP_EXP), OKTO_EINVAL, "overlap", NULL, n0);
    expect_fail(g, okto_zip(g, v1, a34, v0, OKTO_ZIP_ADD), OKTO_EINVAL, "overlap", NULL, n0);
    /* a broadcast row inside out */
    okto_tensor *row1;
    TU_OK(okto_tensor_view(big, 1, 1, &row1));
    okto_tensor *big4;
    TU_OK(okto_tensor_view(big, 0, 4, &big4));
    expect_fail(g, okto_zip(g, big4, big4, row1, OKTO_ZIP_ADD), OKTO_EINVAL, "overlap", NULL, n0);

    /* a tensor of another context */
    okto_context *other = tu_context_with(1, OKTO_SCHED_AUTO);
    okto_tensor *alien = tu_tensor(other, 3, 4, NULL);
    expect_fail(g, okto_map(g, o34, alien, OKTO_MAP_EXP), OKTO_EINVAL, "another context", NULL, n0);
    expect_fail(g, okto_zip(g, o34, a34, alien, OKTO_ZIP_ADD), OKTO_EINVAL, "another context", NULL,
                n0);
    okto_tensor_destroy(alien);
    okto_context_destroy(other);

    /* disjoint views of one tensor are fine */
    okto_tensor *top, *bottom;
    TU_OK(okto_tensor_view(big, 0, 3, &top));
    TU_OK(okto_tensor_view(big, 3, 3, &bottom));
    TU_OK(okto_map(g, bottom, top, OKTO_MAP_NEG));
    run(g);

    okto_graph_destroy(g);
    okto_tensor *all[] = {a34, b24, b14, b35, o34, o43, v0, v1, row1, big4, top, bottom, big};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        okto_tensor_destroy(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(zip_all_ops_all_shapes),
        cmocka_unit_test(zip_broadcast_row),
        cmocka_unit_test(out_aliases_input),
        cmocka_unit_test(partitioned_and_policies_agree),
        cmocka_unit_test(argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
