/* tests/test_plan.c: the coordinator's planning half: the policies' lane assignments, the perf
 * model learning durations and lane hand-off costs, and how HEFT uses them. Reads the plan
 * through lib/engine.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "engine.h"

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
    int nc = okto_context_compute_lanes(ctx);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g->plan.lane[i], i % nc);
    assert_int_equal(g->plan.lane[4], nc); /* the copy lane */
    okto_graph_destroy(g);
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(t[i]);
}

/* reverse: of the tasks whose dependencies are placed, the latest recorded first (a chain keeps
 * its order, independent tasks come out backwards), dealt to the lanes in turn. */
static void test_reverse_order(void **state)
{
    (void)state;
    okto_tensor *t[4], *x = tu_tensor(ctx, 4, 4, NULL);
    for (int i = 0; i < 4; i++)
        t[i] = tu_tensor(ctx, 4, 4, NULL);
    okto_graph *g = graph(OKTO_SCHED_REVERSE);
    for (int i = 0; i < 4; i++)
        TU_OK(okto_fill(g, t[i], (float)i)); /* 0..3: independent */
    TU_OK(okto_fill(g, x, 1.0f));            /* 4: independent */
    TU_OK(okto_scale(g, x, 2.0f));           /* 5: after 4 */
    TU_OK(okto_graph_run(g));
    /* the global order: 4, 5, 3, 2, 1, 0 (5 becomes ready once 4 is placed, and is latest) */
    static const int want[] = {4, 5, 3, 2, 1, 0};
    int nc = okto_context_compute_lanes(ctx), seen[2] = {0, 0};
    for (int k = 0; k < 6; k++) {
        int lane = k % nc;
        assert_int_equal(g->plan.lane[want[k]], lane);
        assert_int_equal(g->plan.order[lane][seen[lane]++], want[k]);
    }
    float *h = tu_read(x);
    assert_true(h[0] == 2.0f);
    free(h);
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
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
    int used[OKTO__MAX_LANES] = {0};
    for (int i = 0; i < 4; i++)
        used[g->plan.lane[i]]++;
    assert_int_equal(used[0], 2);
    assert_int_equal(used[1], 2);
    okto_graph_destroy(g);

    /* a fork: A, then B and C that both read A's output. With free hand-offs C runs beside
     * B on the other lane; when a hand-off costs more than B, C stays on A's lane too. */
    double saved = okto__perf_set_hop(ctx, 0, 0.0);
    okto_tensor *v[3];
    for (int i = 0; i < 3; i++)
        TU_OK(okto_tensor_view(t[i], 0, 64, &v[i])); /* one part per op */
    for (int costly = 0; costly < 2; costly++) {
        okto__perf_set_hop(ctx, 0, costly ? 1.0 : 0.0);
        g = graph(OKTO_SCHED_HEFT);
        TU_OK(okto_scale(g, v[0], 1.0f));
        TU_OK(okto_copy(g, v[1], v[0]));
        TU_OK(okto_copy(g, v[2], v[0]));
        TU_OK(okto__plan_make(g, OKTO_SCHED_HEFT));
        assert_int_equal(g->plan.lane[1], g->plan.lane[0]);
        if (costly)
            assert_int_equal(g->plan.lane[2], g->plan.lane[0]);
        else
            assert_int_not_equal(g->plan.lane[2], g->plan.lane[0]);
        okto_graph_destroy(g);
    }
    okto__perf_set_hop(ctx, 0, saved);
    for (int i = 0; i < 3; i++)
        okto_tensor_destroy(v[i]);
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(t[i]);
}

/* A copy goes to the copy lane unless it is shorter than a round trip through it. */
static void test_heft_copy_lane_choice(void **state)
{
    (void)state;
    double saved = okto__perf_set_hop(ctx, 1, 0.0);
    static float h[64 * 64];
    okto_tensor *x = tu_tensor(ctx, 64, 64, NULL);
    int nc = okto_context_compute_lanes(ctx);
    for (int big = 0; big < 2; big++) {
        okto__perf_set_hop(ctx, 1, big ? 1e-6 : 10.0); /* ms */
        okto_graph *g = graph(OKTO_SCHED_HEFT);
        TU_OK(okto_upload(g, x, h));
        TU_OK(okto_scale(g, x, 2.0f));
        TU_OK(okto__plan_make(g, OKTO_SCHED_HEFT));
        if (big)
            assert_int_equal(g->plan.lane[0], nc);
        else
            assert_true(g->plan.lane[0] < nc);
        okto_graph_destroy(g);
    }
    okto__perf_set_hop(ctx, 1, saved);
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
    int before = okto__perf_hop_samples(ctx, 0);
    double guess = okto__task_estimate(ctx, &g->tasks[0]);
    for (int r = 0; r < 3; r++)
        TU_OK(okto_graph_run(g));
    assert_true(okto__perf_hop_samples(ctx, 0) > before);
    double hop[3];
    okto__perf_hops(ctx, hop);
    assert_true(hop[0] > 0);
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
 * (lib/device.c, "launch geometry"): for every n, the global size covers n with a local size
 * that divides it and at most ~2x idle items, and one local size always comes with one global
 * size; in 2 and 3 dimensions, one local size always comes with one widest dimension. */
static void test_launch_geometry(void **state)
{
    (void)state;
    enum { MAXL = 1024 };
    static size_t global_of[MAXL];
    for (size_t n = 1; n < ((size_t)1 << 26); n = n < 4096 ? n + 1 : n + n / 7 + 1) {
        size_t global, local;
        okto__grid_1d(okto__ctx_device(ctx), n, &global, &local);
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
    /* 2-D and 3-D: (local0, local1) -> the widest global dimension */
    enum { KEYS = 1 << 15 };
    static size_t width_of[KEYS];
    uint64_t seed = 7;
    for (int i = 0; i < 20000; i++) {
        unsigned dims = 2 + (unsigned)(tu_rand(&seed) % 2);
        size_t want[3], global[3], local[3];
        for (unsigned d = 0; d < dims; d++)
            want[d] = 1 + (size_t)(tu_rand(&seed) % (d == 0 ? 3000 : 70000));
        okto__grid_nd(okto__ctx_device(ctx), dims, want, global, local);
        size_t widest = 0;
        for (unsigned d = 0; d < dims; d++) {
            assert_true(global[d] >= want[d]);
            assert_int_equal(global[d] % local[d], 0);
            widest = global[d] > widest ? global[d] : widest;
        }
        size_t key = local[0] << 8 | local[1];
        assert_true(key < KEYS);
        if (width_of[key] == 0)
            width_of[key] = widest;
        if (width_of[key] != widest)
            fail_msg("local (%zu, %zu) came with widest dimensions %zu and %zu", local[0],
                     local[1], width_of[key], widest);
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
        cmocka_unit_test(test_reverse_order),
        cmocka_unit_test(test_heft_spreads_and_chains),
        cmocka_unit_test(test_heft_copy_lane_choice),
        cmocka_unit_test(test_perf_model_learns),
        cmocka_unit_test(test_heft_trial),
        cmocka_unit_test(test_launch_geometry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
