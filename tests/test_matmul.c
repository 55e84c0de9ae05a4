/* tests/test_matmul.c: okto_matmul / okto_gemm against a double-precision host reference, on
 * odd shapes, every transpose combination, accumulate, alpha/beta, and the three execution
 * paths (own small kernel, one CLBlast call, row panels, split-K); partitioned and unpartitioned
 * runs and the sequential and heft policies agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static okto_context *ctx, *ctx1; /* default lanes; one compute lane (nothing partitioned) */

/* The error of a float dot product of length k grows at worst linearly with k; this bound
 * (relative to max(1, |reference|)) is about 30x float epsilon per sqrt of the terms, with
 * room for PoCL's fma contraction and CLBlast's blocking order. */
static double tol_for(size_t k) { return 4e-6 * sqrt((double)k) + 1e-6; }

static void ref_gemm(double *c, const float *a, const float *b, const float *c0, size_t m,
                     size_t n, size_t k, int ta, int tb, double alpha, double beta)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++) {
                double x = ta ? a[p * m + i] : a[i * k + p];
                double y = tb ? b[j * k + p] : b[p * n + j];
                s += x * y;
            }
            c[i * n + j] = alpha * s + (beta != 0 ? beta * c0[i * n + j] : 0);
        }
}

/* Runs c = alpha op(a) op(b) + beta c on context cx with the policy; returns the result. */
static float *run_gemm(okto_context *cx, okto_sched sched, const float *ha, const float *hb,
                       const float *hc, size_t m, size_t n, size_t k, unsigned flags, float alpha,
                       float beta, int use_matmul, int *ntasks)
{
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    okto_tensor *a = tu_tensor(cx, ta ? k : m, ta ? m : k, ha);
    okto_tensor *b = tu_tensor(cx, tb ? n : k, tb ? k : n, hb);
    okto_tensor *c = tu_tensor(cx, m, n, hc);
    okto_graph *g;
    TU_OK(okto_graph_create(cx, &g));
    TU_OK(okto_graph_set_sched(g, sched));
    if (use_matmul)
        TU_OK(okto_matmul(g, c, a, b, flags));
    else
        TU_OK(okto_gemm(g, c, alpha, a, b, beta, flags));
    if (ntasks)
        *ntasks = okto_graph_task_count(g);
    TU_OK(okto_graph_run(g));
    float *out = tu_read(c);
    okto_graph_destroy(g);
    okto_tensor_destroy(a);
    okto_tensor_destroy(b);
    okto_tensor_destroy(c);
    return out;
}

static void check_case(size_t m, size_t n, size_t k, unsigned flags, float alpha, float beta,
                       int use_matmul)
{
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    if (use_matmul) {
        alpha = 1.0f;
        beta = (flags & OKTO_ACCUMULATE) ? 1.0f : 0.0f;
    }
    float *ha = malloc(m * k * sizeof *ha), *hb = malloc(k * n * sizeof *hb);
    float *hc = malloc(m * n * sizeof *hc);
    double *want = malloc(m * n * sizeof *want);
    tu_fill_random(ha, m * k, m * 31 + k, -1, 1);
    tu_fill_random(hb, k * n, n * 17 + k, -1, 1);
    tu_fill_random(hc, m * n, m + n, -1, 1);
    ref_gemm(want, ha, hb, hc, m, n, k, ta, tb, alpha, beta);
    float *got = run_gemm(ctx, OKTO_SCHED_HEFT, ha, hb, hc, m, n, k, flags, alpha, beta,
                          use_matmul, NULL);
    double err = tu_max_rel_err(got, want, m * n), tol = tol_for(k);
    if (!(err <= tol))
        fail_msg("%zux%zux%zu flags %u alpha %g beta %g: max rel err %.3g > %.3g", m, n, k, flags,
                 alpha, beta, err, tol);
    free(ha), free(hb), free(hc), free(want), free(got);
}

static void test_odd_shapes_all_transposes(void **state)
{
    (void)state;
    static const size_t shapes[][3] = {{1, 1, 1},  {1, 37, 5},    {37, 1, 5},   {5, 7, 1},
                                       {7, 13, 5}, {1, 300, 200}, {257, 129, 65}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (unsigned f = 0; f < 4; f++) {
            check_case(shapes[s][0], shapes[s][1], shapes[s][2], f, 1, 0, 1);
            check_case(shapes[s][0], shapes[s][1], shapes[s][2], f | OKTO_ACCUMULATE, 1, 1, 1);
        }
}

static void test_gemm_alpha_beta(void **state)
{
    (void)state;
    for (unsigned f = 0; f < 4; f++) {
        check_case(7, 13, 5, f, 0.5f, -2.0f, 0);
        check_case(257, 129, 65, f, -1.5f, 0.25f, 0);
        check_case(300, 200, 260, f, 2.0f, 0.0f, 0);
    }
}

/* Big shapes take the partitioned paths: row panels (large m) and split-K (small m, large k).
 * Each is checked against the reference and against a one-lane context where nothing is
 * partitioned, under both policies. */
static void partition_case(size_t m, size_t n, size_t k, unsigned flags, int want_parts)
{
    int ta = (flags & OKTO_TRANS_A) != 0, tb = (flags & OKTO_TRANS_B) != 0;
    float *ha = malloc(m * k * sizeof *ha), *hb = malloc(k * n * sizeof *hb);
    float *hc = malloc(m * n * sizeof *hc);
    double *want = malloc(m * n * sizeof *want);
    tu_fill_random(ha, m * k, 5, -1, 1);
    tu_fill_random(hb, k * n, 6, -1, 1);
    tu_fill_random(hc, m * n, 7, -1, 1);
    ref_gemm(want, ha, hb, hc, m, n, k, ta, tb, 1.0, 1.0);
    int parts = 0, one = 0;
    unsigned fl = flags | OKTO_ACCUMULATE;
    float *heft = run_gemm(ctx, OKTO_SCHED_HEFT, ha, hb, hc, m, n, k, fl, 1, 1, 1, &parts);
    float *seq = run_gemm(ctx, OKTO_SCHED_SEQUENTIAL, ha, hb, hc, m, n, k, fl, 1, 1, 1, NULL);
    float *single = run_gemm(ctx1, OKTO_SCHED_HEFT, ha, hb, hc, m, n, k, fl, 1, 1, 1, &one);
    if (okto_context_compute_lanes(ctx) >= 2)
        assert_int_equal(parts, want_parts);
    assert_int_equal(one, 1);
    double tol = tol_for(k);
    double e1 = tu_max_rel_err(heft, want, m * n), e2 = tu_max_rel_err(single, want, m * n);
    if (!(e1 <= tol) || !(e2 <= tol))
        fail_msg("%zux%zux%zu: partitioned err %.3g, unpartitioned err %.3g, tol %.3g", m, n, k,
                 e1, e2, tol);
    /* the same tasks in another order: the same bits */
    assert_memory_equal(heft, seq, m * n * sizeof *heft);
    free(ha), free(hb), free(hc), free(want), free(heft), free(seq), free(single);
}

static void test_row_panels(void **state)
{
    (void)state;
    int lanes = okto_context_compute_lanes(ctx);
    partition_case(512, 256, 320, 0, lanes);
    partition_case(512, 256, 320, OKTO_TRANS_A | OKTO_TRANS_B, lanes);
}

static void test_split_k(void **state)
{
    (void)state;
    int lanes = okto_context_compute_lanes(ctx);
    partition_case(16, 64, 40000, 0, lanes + 1);
    partition_case(16, 64, 40000, OKTO_TRANS_A, lanes + 1);
    partition_case(16, 64, 40000, OKTO_TRANS_B, lanes + 1);
}

/* Views: a matmul on rows [r0, r1) of bigger tensors touches only those rows. */
static void test_views(void **state)
{
    (void)state;
    size_t m = 40, n = 9, k = 11;
    float ha[40 * 11], hb[11 * 9];
    tu_fill_random(ha, m * k, 1, -1, 1);
    tu_fill_random(hb, k * n, 2, -1, 1);
    okto_tensor *a = tu_tensor(ctx, m, k, ha), *b = tu_tensor(ctx, k, n, hb);
    okto_tensor *c = tu_tensor(ctx, m, n, NULL);
    okto_tensor *av, *cv;
    TU_OK(okto_tensor_view(a, 10, 20, &av));
    TU_OK(okto_tensor_view(c, 10, 20, &cv));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, c, -7.0f));
    TU_OK(okto_matmul(g, cv, av, b, 0));
    TU_OK(okto_graph_run(g));
    float *got = tu_read(c);
    double *want = malloc(m * n * sizeof *want);
    for (size_t i = 0; i < m * n; i++)
        want[i] = -7.0;
    ref_gemm(want + 10 * n, ha + 10 * k, hb, NULL, 20, n, k, 0, 0, 1, 0);
    assert_true(tu_max_rel_err(got, want, m * n) <= tol_for(k));
    free(got), free(want);
    okto_graph_destroy(g);
    okto_tensor_destroy(av), okto_tensor_destroy(cv);
    okto_tensor_destroy(a), okto_tensor_destroy(b), okto_tensor_destroy(c);
}

static void test_bad_shapes(void **state)
{
    (void)state;
    okto_tensor *a = tu_tensor(ctx, 3, 4, NULL), *b = tu_tensor(ctx, 5, 6, NULL);
    okto_tensor *c = tu_tensor(ctx, 3, 6, NULL), *c2 = tu_tensor(ctx, 4, 6, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    assert_int_equal(okto_matmul(g, c, a, b, 0), OKTO_EINVAL);
    const char *msg = okto_last_error(ctx);
    assert_non_null(strstr(msg, "[3,4]"));
    assert_non_null(strstr(msg, "[5,6]"));
    okto_graph_clear_error(g);
    assert_int_equal(okto_matmul(g, c2, a, b, OKTO_TRANS_A), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "[4,6]"));
    okto_graph_clear_error(g);
    assert_int_equal(okto_matmul(g, c, a, b, 0x100), OKTO_EINVAL);
    okto_graph_clear_error(g);
    assert_int_equal(okto_matmul(NULL, c, a, b, 0), OKTO_EINVAL);
    assert_int_equal(okto_matmul(g, NULL, a, b, 0), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "c must not be NULL"));
    okto_graph_clear_error(g);
    assert_int_equal(okto_matmul(g, c, a, NULL, 0), OKTO_EINVAL);
    okto_graph_clear_error(g);
    assert_int_equal(okto_gemm(g, c, 1, NULL, b, 0, 0), OKTO_EINVAL);
    okto_graph_clear_error(g);
    assert_int_equal(okto_gemm(g, c, 1, a, b, 0, OKTO_ACCUMULATE), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "OKTO_ACCUMULATE"));
    okto_graph_clear_error(g);
    /* c may not overlap an input */
    okto_tensor *sq = tu_tensor(ctx, 4, 4, NULL);
    assert_int_equal(okto_matmul(g, sq, sq, sq, 0), OKTO_EINVAL);
    okto_graph_clear_error(g);
    /* another context's tensor */
    okto_tensor *other = tu_tensor(ctx1, 4, 6, NULL);
    okto_tensor *b46 = tu_tensor(ctx, 4, 6, NULL);
    assert_int_equal(okto_matmul(g, c, a, other, 0), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "another context"));
    /* the graph keeps the first error: the next op is refused until it is cleared */
    assert_int_equal(okto_matmul(g, c, a, b46, 0), OKTO_EINVAL);
    assert_non_null(strstr(okto_last_error(ctx), "keeps an earlier error"));
    assert_int_equal(okto_graph_launch(g), OKTO_EINVAL);
    okto_graph_clear_error(g);
    TU_OK(okto_matmul(g, c, a, b46, 0));
    assert_int_equal(okto_graph_task_count(g), 1); /* the failed calls recorded nothing */
    okto_graph_destroy(g);
    okto_tensor_destroy(a), okto_tensor_destroy(b), okto_tensor_destroy(c);
    okto_tensor_destroy(c2), okto_tensor_destroy(sq), okto_tensor_destroy(other);
    okto_tensor_destroy(b46);
}

static int setup(void **state)
{
    (void)state;
    ctx = tu_context();
    ctx1 = tu_context_with(1, OKTO_SCHED_AUTO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx);
    okto_context_destroy(ctx1);
    return 0;
}

/* In-order lanes: a CLBlast matmul on one lane must wait for the input another lane writes. The
 * foreign-call recipe once dropped the marker's wait list on in-order lanes while the run
 * passed only cross-lane events, so the GEMM read a stale input and the run returned OK with
 * wrong numbers (every device without out-of-order queues: AMD's OpenCL among them). A slow
 * kernel writes a on lane 0; under round-robin the matmul runs on lane 1. */
static void test_in_order_lanes_wait(void **state)
{
    (void)state;
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.compute_lanes = 2;
    cfg.in_order = 1;
    okto_context *c;
    TU_OK(okto_context_create(&cfg, &c));
    assert_true(okto_context_in_order(c));
    enum { M = 96, K = 96, N = 96 }; /* past the own small kernel: CLBlast */
    static const char *src =
        "__kernel void slow_fill(__global float *a, ulong ao, int n, float v)\n"
        "{ int i = get_global_id(0); if (i >= n) return;\n"
        "  float x = v; for (int k = 0; k < 20000; k++) x = x * 0.999999f + 1e-6f * v;\n"
        "  a[ao + i] = x; }\n";
    okto_kernel *k;
    TU_OK(okto_kernel_create(c, src, "slow_fill", &k));
    float *ones = malloc(K * N * sizeof *ones);
    for (int i = 0; i < K * N; i++)
        ones[i] = 1.0f;
    okto_tensor *a = tu_tensor(c, M, K, NULL), *b = tu_tensor(c, K, N, ones);
    okto_tensor *out = tu_tensor(c, M, N, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(c, &g));
    TU_OK(okto_graph_set_sched(g, OKTO_SCHED_ROUND_ROBIN));
    int n = M * K;
    float v = 1.0f;
    size_t global = (size_t)n;
    okto_arg args[] = {OKTO_W(a), OKTO_VALUE(&n), OKTO_VALUE(&v)};
    TU_OK(okto_launch(g, k, 1, &global, NULL, 3, args)); /* lane 0 */
    TU_OK(okto_matmul(g, out, a, b, 0));                  /* lane 1: waits for lane 0 */
    for (int rep = 0; rep < 3; rep++) {
        TU_OK(okto_tensor_write(a, (float[M * K]){0}));
        TU_OK(okto_graph_run(g));
        float *h = tu_read(out), *ha = tu_read(a);
        double want = 0;
        for (int p = 0; p < K; p++)
            want += ha[p];
        for (int i = 0; i < M * N; i++)
            if (fabs(h[i] - want) > 1e-3 * want)
                fail_msg("run %d: out[%d] = %g, expected %g: the GEMM read a before lane 0 "
                         "wrote it", rep, i, (double)h[i], want);
        free(h), free(ha);
    }
    okto_graph_destroy(g);
    okto_tensor_destroy(a), okto_tensor_destroy(b), okto_tensor_destroy(out);
    okto_kernel_destroy(k);
    free(ones);
    okto_context_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_odd_shapes_all_transposes),
        cmocka_unit_test(test_gemm_alpha_beta),
        cmocka_unit_test(test_row_panels),
        cmocka_unit_test(test_split_k),
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_in_order_lanes_wait),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
