/* tests/test_plan.c: the coordinator's planning half: the policies' lane assignments, the perf
 * model learning durations and lane hand-off costs, and how HEFT uses them. Reads the plan
 * through internal.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "internal.h"

#include <stdlib.h>

static okto_context *ctx; /* 2 compute lanes + 1 copy lane */

static okto_graph *graph(okto_sched s)
{
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_graph_set_sched(g, s));
    return g;
}

static void test_sequential_is_recorded_order(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 4, 4, NULL), *y = tu_tensor(ctx, 4, 4, NULL);
    okto_graph *g = graph(OKTO_SCHED_SEQUENTIAL);
    for (int i = 0; i < 6; i++)
        TU_OK(okto_fill(g, i % 2 ? x : y, (float)i));
    TU_OK(okto_graph_run(g));
    assert_int_equal(g->plan.nlanes, 1);
    assert_int_equal(g->plan.count[0], 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(g->plan.order[0][i], i);
    okto_graph_destroy(g);
    okto_tensor_destroy(x), okto_tensor_destroy(y);
}

static void test_round_robin_deals_compute_and_copy(void **state)
{
    (void)state;
    float h[16] = {0};
    okto_tensor *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = tu_tensor(ctx, 4, 4, NULL);
    okto_graph *g = graph(OKTO_SCHED_ROUND_ROBIN);
    for (int i = 0; i < 4; i++)
        TU_OK(okto_fill(g, t[i], 1.0f));
    TU_OK(okto_upload(g, t[0], h));
    TU_OK(okto_graph_run(g));
    int nc = okto_compute_lane_count(ctx);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g->tasks[i].lane, i % nc);
    assert_int_equal(g->tasks[4].lane, nc); /* the copy lane */
    okto_graph_destroy(g);
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(t[i]);
}

/* Independent equal tasks spread over the compute lanes; work that shares an input spreads
 * only while a hand-off costs less than the work. */
static void test_heft_spreads_and_chains(void **state)
{
    (void)state;
    okto_tensor *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = tu_tensor(ctx, 512, 512, NULL);
    okto_graph *g = graph(OKTO_SCHED_HEFT);
    for (int i = 0; i < 4; i++) {
        okto_tensor *v;
        TU_OK(okto_tensor_view(t[i], 0, 64, &v)); /* small enough to stay one part */
        TU_OK(okto_fill(g, v, 1.0f));
        okto_tensor_destroy(v);
    }
    TU_OK(okto_graph_run(g));
    int used[OKTO_MAX_LANES] = {0};
    for (int i = 0; i < 4; i++)
        used[g->tasks[i].lane]++;
    assert_int_equal(used[0], 2);
    assert_int_equal(used[1], 2);
    okto_graph_destroy(g);

    /* a fork: A, then B and C that both read A's output. With free hand-offs C runs beside
     * B on the other lane; when a hand-off costs more than B, C stays on A's lane too. */
    okto__perf_model *m = &ctx->perf;
    double saved = m->hop_ms[0];
    okto_tensor *v[3];
    for (int i = 0; i < 3; i++)
        TU_OK(okto_tensor_view(t[i], 0, 64, &v[i])); /* one part per op */
    for (int costly = 0; costly < 2; costly++) {
        m->hop_ms[0] = costly ? 1.0 : 0.0;
        g = graph(OKTO_SCHED_HEFT);
        TU_OK(okto_scale(g, v[0], 1.0f));
        TU_OK(okto_copy(g, v[1], v[0]));
        TU_OK(okto_copy(g, v[2], v[0]));
        TU_OK(okto__plan_make(g, OKTO_SCHED_HEFT));
        assert_int_equal(g->tasks[1].lane, g->tasks[0].lane);
        if (costly)
            assert_int_equal(g->tasks[2].lane, g->tasks[0].lane);
        else
            assert_int_not_equal(g->tasks[2].lane, g->tasks[0].lane);
        okto_graph_destroy(g);
    }
    m->hop_ms[0] = saved;
    for (int i = 0; i < 3; i++)
        okto_tensor_destroy(v[i]);
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(t[i]);
}

/* A copy goes to the copy lane unless it is shorter than a round trip through it. */
static void test_heft_copy_lane_choice(void **state)
{
    (void)state;
    okto__perf_model *m = &ctx->perf;
    double saved = m->hop_ms[1];
    static float h[64 * 64];
    okto_tensor *x = tu_tensor(ctx, 64, 64, NULL);
    int nc = okto_compute_lane_count(ctx);
    for (int big = 0; big < 2; big++) {
        m->hop_ms[1] = big ? 1e-6 : 10.0; /* ms */
        okto_graph *g = graph(OKTO_SCHED_HEFT);
        TU_OK(okto_upload(g, x, h));
        TU_OK(okto_scale(g, x, 2.0f));
        TU_OK(okto__plan_make(g, OKTO_SCHED_HEFT));
        if (big)
            assert_int_equal(g->tasks[0].lane, nc);
        else
            assert_true(g->tasks[0].lane < nc);
        okto_graph_destroy(g);
    }
    m->hop_ms[1] = saved;
    okto_tensor_destroy(x);
}

/* Running a graph teaches the perf model its tasks' durations and the hand-off cost. */
static void test_perf_model_learns(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 256, 256, NULL);
    okto_graph *g = graph(OKTO_SCHED_ROUND_ROBIN); /* a chain dealt across lanes: hand-offs */
    for (int i = 0; i < 16; i++)
        TU_OK(okto_scale(g, x, 1.0f));
    okto__perf_model *m = &ctx->perf;
    int before = m->hop_n[0];
    double guess = okto__task_estimate(ctx, &g->tasks[0]);
    for (int r = 0; r < 3; r++)
        TU_OK(okto_graph_run(g));
    assert_true(m->hop_n[0] > before);
    assert_true(m->hop_ms[0] > 0);
    /* the estimate is now the measured duration, which the report's busy time bounds */
    okto_report rep;
    TU_OK(okto_graph_report(g, &rep));
    double est = okto__task_estimate(ctx, &g->tasks[0]);
    assert_true(est > 0);
    assert_true(est <= rep.busy_ms);
    (void)guess;
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
}

/* heft times its plan against the sequential plan on its first runs and keeps the faster;
 * the report says which ran, results stay the same, and changing the graph starts over. */
static void test_heft_trial(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 64, 64, NULL);
    okto_graph *g = graph(OKTO_SCHED_HEFT);
    for (int i = 0; i < 12; i++)
        TU_OK(okto_scale(g, x, 1.0f));
    okto_report rep;
    static const okto_sched plan[9] = {
        OKTO_SCHED_HEFT, OKTO_SCHED_HEFT, OKTO_SCHED_SEQUENTIAL, /* learning, first queue use */
        OKTO_SCHED_HEFT, OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_HEFT, OKTO_SCHED_SEQUENTIAL,
        OKTO_SCHED_HEFT, OKTO_SCHED_SEQUENTIAL}; /* timed, interleaved */
    for (int r = 0; r < 9; r++) {
        TU_OK(okto_graph_run(g));
        TU_OK(okto_graph_report(g, &rep));
        assert_int_equal(rep.sched, plan[r]);
    }
    assert_true(g->trial.decided);
    assert_true(g->trial.heft_ms > 0 && g->trial.seq_ms > 0);
    okto_sched kept = g->trial.choice;
    assert_true(kept == OKTO_SCHED_HEFT || kept == OKTO_SCHED_SEQUENTIAL);
    assert_int_equal(kept == OKTO_SCHED_SEQUENTIAL, g->trial.seq_ms < 0.9 * g->trial.heft_ms);
    TU_OK(okto_graph_run(g));
    TU_OK(okto_graph_report(g, &rep));
    assert_int_equal(rep.sched, kept);
    /* a change to the graph starts the trial over */
    TU_OK(okto_scale(g, x, 1.0f));
    assert_false(g->trial.decided);
    assert_int_equal(g->trial.runs, 0);
    TU_OK(okto_graph_run(g));
    TU_OK(okto_graph_report(g, &rep));
    assert_int_equal(rep.sched, OKTO_SCHED_HEFT);
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
}

/* The launch rule that keeps PoCL 3.1's work-group-function cache from aborting
 * (lib/kernels.c): for every n, the global size covers n with a local size that divides it and
 * at most ~2x idle items, and one local size always comes with one global size. */
static void test_launch_geometry(void **state)
{
    (void)state;
    enum { MAXL = 1024 };
    static size_t global_of[MAXL];
    for (size_t n = 1; n < ((size_t)1 << 26); n = n < 4096 ? n + 1 : n + n / 7 + 1) {
        size_t global, local;
        okto__grid_1d(ctx, n, &global, &local);
        assert_true(local >= 1 && local < MAXL);
        assert_true(global >= n);
        assert_int_equal(global % local, 0);
        assert_true(global <= 2 * n + 2 * local);
        if (global_of[local] == 0)
            global_of[local] = global;
        if (global_of[local] != global)
            fail_msg("local %zu came with global %zu and %zu (n = %zu)", local, global_of[local],
                     global, n);
    }
}

static int setup(void **state)
{
    (void)state;
    okto_config cfg;
    okto_config_init(&cfg);
    cfg.compute_lanes = 2;
    cfg.copy_lanes = 1;
    okto_status s = okto_context_create(&cfg, &ctx);
    if (s == OKTO_ENODEV)
        exit(77);
    return s == OKTO_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    okto_context_destroy(ctx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_is_recorded_order),
        cmocka_unit_test(test_round_robin_deals_compute_and_copy),
        cmocka_unit_test(test_heft_spreads_and_chains),
        cmocka_unit_test(test_heft_copy_lane_choice),
        cmocka_unit_test(test_perf_model_learns),
        cmocka_unit_test(test_heft_trial),
        cmocka_unit_test(test_launch_geometry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
