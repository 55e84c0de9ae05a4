/* tests/test_deps.c: dependency analysis on recorded graphs. Each test records a few ops and
 * inspects the tasks' deps through internal.h: RAW, WAR and WAW edges, no edge for
 * read-after-read, region-aware edges (overlapping vs disjoint row ranges of views), the
 * transitive reduction, covering writes hiding older accesses, per-part edges between
 * partitioned ops, and rollback with okto__graph_truncate. Where it matters the graph is also
 * run, so the edges are shown to order the device work, not only to look right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static okto_context *ctx;   /* 4 compute lanes: big ops split into 4 parts */
static okto_kernel *k_rw;   /* y = x + 1 over n floats: (x R, y W) */
static okto_kernel *k_sum3; /* z = x + y over n floats: (x R, y R, z W) */

static const char *kernels_src =
    "__kernel void plus1(__global const float *x, ulong xo, __global float *y, ulong yo, int n)\n"
    "{ int i = get_global_id(0); if (i < n) y[yo + i] = x[xo + i] + 1.0f; }\n"
    "__kernel void sum2(__global const float *x, ulong xo, __global const float *y, ulong yo,\n"
    "                   __global float *z, ulong zo, int n)\n"
    "{ int i = get_global_id(0); if (i < n) z[zo + i] = x[xo + i] + y[yo + i]; }\n";

static int setup(void **state)
{
    (void)state;
    ctx = tu_context_with(4, OKTO_SCHED_AUTO);
    TU_OK(okto_kernel_create(ctx, kernels_src, "plus1", &k_rw));
    TU_OK(okto_kernel_create(ctx, kernels_src, "sum2", &k_sum3));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    okto_kernel_destroy(k_rw);
    okto_kernel_destroy(k_sum3);
    okto_context_destroy(ctx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

/* Dependencies are derived when a graph is launched; the tests ask for them right after
 * recording. */
static const uint32_t *deps_of(const okto_graph *g, int t)
{
    TU_OK(okto__deps_analyze((okto_graph *)g));
    return okto__task_deps(g, &g->tasks[t]);
}

static uint32_t ndeps_of(const okto_graph *g, int t)
{
    deps_of(g, t);
    return g->tasks[t].ndeps;
}

static uint32_t nsucc_of(const okto_graph *g, int t)
{
    deps_of(g, t);
    return g->tasks[t].nsucc;
}

static int has_dep(const okto_graph *g, int t, int d)
{
    const uint32_t *deps = deps_of(g, t);
    for (uint32_t i = 0; i < g->tasks[t].ndeps; i++)
        if ((int)deps[i] == d)
            return 1;
    return 0;
}

/* Fails unless task t's deps are exactly the n given (in any order). */
static void expect_deps(const okto_graph *g, int t, int n, ...)
{
    assert_true(t >= 0 && t < g->ntasks);
    char have[256] = "";
    const uint32_t *deps = deps_of(g, t);
    for (uint32_t i = 0; i < g->tasks[t].ndeps; i++)
        snprintf(have + strlen(have), sizeof have - strlen(have), " %u", deps[i]);
    if ((int)g->tasks[t].ndeps != n)
        fail_msg("task %d has %u deps {%s } but %d were expected", t, g->tasks[t].ndeps, have,
                 n);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        int d = va_arg(ap, int);
        if (!has_dep(g, t, d))
            fail_msg("task %d lacks dep %d (has {%s })", t, d, have);
    }
    va_end(ap);
}

static okto_tensor *view(okto_tensor *t, size_t r0, size_t n)
{
    okto_tensor *v = NULL;
    TU_OK(okto_tensor_view(t, r0, n, &v));
    return v;
}

/* plus1 over the whole of src into dst (same shape). */
static void launch_plus1(okto_graph *g, okto_tensor *dst, okto_tensor *src)
{
    int n = (int)(okto_tensor_rows(src) * okto_tensor_cols(src));
    size_t global = (size_t)n;
    okto_arg args[] = {OKTO_R(src), OKTO_W(dst), OKTO_VALUE(&n)};
    TU_OK(okto_launch(g, k_rw, 1, &global, NULL, 3, args));
}

static void launch_sum2(okto_graph *g, okto_tensor *z, okto_tensor *x, okto_tensor *y)
{
    int n = (int)(okto_tensor_rows(z) * okto_tensor_cols(z));
    size_t global = (size_t)n;
    okto_arg args[] = {OKTO_R(x), OKTO_R(y), OKTO_W(z), OKTO_VALUE(&n)};
    TU_OK(okto_launch(g, k_sum3, 1, &global, NULL, 4, args));
}

static void expect_all(const okto_tensor *t, float want)
{
    float *h = tu_read(t);
    size_t n = okto_tensor_rows(t) * okto_tensor_cols(t);
    for (size_t i = 0; i < n; i++)
        if (h[i] != want) {
            float got = h[i];
            free(h);
            fail_msg("element %zu is %g, expected %g", i, (double)got, (double)want);
        }
    free(h);
}

/* ---- tests --------------------------------------------------------------------------- */

static void raw_war_waw(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, x, 1));       /* 0: W x */
    TU_OK(okto_copy(g, y, x));       /* 1: R x, W y  -> RAW on 0 */
    TU_OK(okto_fill(g, x, 2));       /* 2: W x       -> WAR on 1 (WAW on 0 is implied) */
    TU_OK(okto_fill(g, y, 3));       /* 3: W y       -> WAW on 1 */
    TU_OK(okto_axpy(g, y, 1.0f, x)); /* 4: RW y, R x -> on 3 (y) and 2 (x) */
    assert_int_equal(okto_graph_task_count(g), 5);
    expect_deps(g, 0, 0);
    expect_deps(g, 1, 1, 0);
    expect_deps(g, 2, 1, 1);
    expect_deps(g, 3, 1, 1);
    expect_deps(g, 4, 2, 3, 2);
    /* successor counts follow the reduced edges */
    assert_int_equal(nsucc_of(g, 0), 1);
    assert_int_equal(nsucc_of(g, 1), 2);
    assert_int_equal(nsucc_of(g, 4), 0);
    for (okto_sched s = OKTO_SCHED_SEQUENTIAL; s < OKTO_SCHED_COUNT; s++) {
        TU_OK(okto_graph_set_sched(g, s));
        TU_OK(okto_graph_run(g));
        expect_all(y, 5.0f);
        expect_all(x, 2.0f);
    }
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
}

static void read_after_read_no_edge(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL),
                *z = tu_tensor(ctx, 8, 4, NULL), *w = tu_tensor(ctx, 8, 4, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_copy(g, y, x));  /* 0: R x */
    TU_OK(okto_copy(g, z, x));  /* 1: R x  -> no edge */
    launch_plus1(g, w, x);      /* 2: R x  -> no edge */
    TU_OK(okto_fill(g, x, 7));  /* 3: W x  -> WAR on all three readers */
    expect_deps(g, 1, 0);
    expect_deps(g, 2, 0);
    expect_deps(g, 3, 3, 0, 1, 2);
    okto_graph_destroy(g);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_tensor_destroy(z);
    okto_tensor_destroy(w);
}

static void overlapping_vs_disjoint_views(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL);
    okto_tensor *lo = view(x, 0, 4), *hi = view(x, 4, 4), *mid = view(x, 2, 4);
    okto_tensor *ylo = view(y, 0, 4), *yhi = view(y, 4, 4), *ymid = view(y, 2, 4);
    okto_tensor *last = view(x, 7, 1), *first = view(x, 0, 1);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, lo, 1));     /* 0: W x[0,4) */
    TU_OK(okto_fill(g, hi, 2));     /* 1: W x[4,8)  disjoint: no edge */
    launch_plus1(g, ymid, mid);     /* 2: R x[2,6) W y[2,6): RAW on 0 and 1 */
    TU_OK(okto_scale(g, last, 3));  /* 3: RW x[7,8): WAW on 1 only (2 read rows 2..5) */
    TU_OK(okto_scale(g, first, 5)); /* 4: RW x[0,1): WAW on 0 only */
    TU_OK(okto_fill(g, ylo, 0));    /* 5: W y[0,4): WAW on 2 (rows 2,3) */
    TU_OK(okto_fill(g, yhi, 0));    /* 6: W y[4,8): WAW on 2 (rows 4,5), not on 5 */
    launch_plus1(g, ylo, lo);       /* 7: R x[0,4), W y[0,4): on 4 (x row 0; 0 is implied
                                       through 4), 5 (y); none on the reader 2 */
    expect_deps(g, 1, 0);
    expect_deps(g, 2, 2, 0, 1);
    expect_deps(g, 3, 1, 1);
    expect_deps(g, 4, 1, 0);
    expect_deps(g, 5, 1, 2);
    expect_deps(g, 6, 1, 2);
    /* x rows [0,4): row 0 last written by 4 (which depends on 0), rows 1..3 by 0; y [0,4)
     * last written by 5. A read of x needs no edge to the reader 2. */
    expect_deps(g, 7, 2, 4, 5);
    for (okto_sched s = OKTO_SCHED_SEQUENTIAL; s < OKTO_SCHED_COUNT; s++) {
        TU_OK(okto_tensor_write(y, (float[32]){0}));
        TU_OK(okto_graph_set_sched(g, s));
        TU_OK(okto_graph_run(g));
        float *hx = tu_read(x), *hy = tu_read(y);
        /* x: rows 0..3 = 1 except row 0 = 5; rows 4..7 = 2 except row 7 = 6 */
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 4; c++) {
                float wx = r == 0 ? 5.0f : r < 4 ? 1.0f : r == 7 ? 6.0f : 2.0f;
                float wy = r < 4 ? wx + 1.0f : 0.0f;
                assert_float_equal(hx[r * 4 + c], wx, 0);
                assert_float_equal(hy[r * 4 + c], wy, 0);
            }
        free(hx), free(hy);
    }
    okto_graph_destroy(g);
    okto_tensor *all[] = {lo, hi, mid, ylo, yhi, ymid, last, first, x, y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        TU_OK(okto_tensor_destroy(all[i]));
}

/* One task touching two disjoint views of the same tensor: an access per view, each with its
 * own edges. */
static void two_accesses_one_storage(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL);
    okto_tensor *lo = view(x, 0, 4), *hi = view(x, 4, 4);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, lo, 4));   /* 0 */
    TU_OK(okto_fill(g, hi, 9));   /* 1 */
    TU_OK(okto_copy(g, hi, lo));  /* 2: W x[4,8) R x[0,4): on 0 (RAW) and 1 (WAW) */
    TU_OK(okto_scale(g, lo, 2));  /* 3: RW x[0,4): WAR on 2 (0 implied) */
    TU_OK(okto_scale(g, hi, 3));  /* 4: RW x[4,8): on 2 */
    assert_int_equal(g->tasks[2].nacc, 2);
    expect_deps(g, 2, 2, 0, 1);
    expect_deps(g, 3, 1, 2);
    expect_deps(g, 4, 1, 2);
    TU_OK(okto_graph_run(g));
    float *h = tu_read(x);
    for (int i = 0; i < 32; i++)
        assert_float_equal(h[i], i < 16 ? 8.0f : 12.0f, 0);
    free(h);
    okto_graph_destroy(g);
    okto_tensor_destroy(lo);
    okto_tensor_destroy(hi);
    okto_tensor_destroy(x);
}

static void transitive_reduction(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL),
                *z = tu_tensor(ctx, 8, 4, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, x, 1));  /* a = 0: W x */
    launch_plus1(g, y, x);      /* b = 1: R x, W y  -> on a */
    launch_sum2(g, z, x, y);    /* c = 2: R x, R y  -> conflicts with a and b; only b kept */
    expect_deps(g, 1, 1, 0);
    expect_deps(g, 2, 1, 1);
    /* the conflict with a really exists: without b, c would wait on a */
    okto_graph *g2;
    TU_OK(okto_graph_create(ctx, &g2));
    TU_OK(okto_fill(g2, x, 1));
    launch_sum2(g2, z, x, y);
    expect_deps(g2, 1, 1, 0);
    /* a longer chain: d reads x, y, z; each was last written by a, b, c; a -> b -> c */
    okto_tensor *w = tu_tensor(ctx, 8, 4, NULL);
    TU_OK(okto_copy(g, w, x));  /* 3: R x: on a only (b and c only read x) */
    expect_deps(g, 3, 1, 0);
    TU_OK(okto_axpy(g, w, 1, z)); /* 4: RW w, R z: on 3 and 2 (neither reaches the other) */
    expect_deps(g, 4, 2, 3, 2);
    TU_OK(okto_axpy(g, w, 1, y)); /* 5: RW w, R y (by 1, implied through 4 -> 2 -> 1) */
    expect_deps(g, 5, 1, 4);
    TU_OK(okto_graph_run(g));
    expect_all(z, 3.0f);
    expect_all(w, 1.0f + 3.0f + 2.0f);
    okto_graph_destroy(g);
    okto_graph_destroy(g2);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_tensor_destroy(z);
    okto_tensor_destroy(w);
}

/* A task whose deps reach each other widely: the reduction's search must visit each earlier
 * task at most once (its scratch stack holds one entry per task) and keep exactly the edges
 * that nothing else implies. Task 10 reads A (task 0), B1..B8 (tasks 1..8) and B9 (task 9,
 * which itself read B1..B8): it keeps 0 and 9. */
static void wide_fan_in_reduction(void **state)
{
    (void)state;
    static const char *src =
        "#define IN(i) __global const float *a##i, ulong o##i\n"
        "__kernel void fan(IN(0), IN(1), IN(2), IN(3), IN(4), IN(5), IN(6), IN(7), IN(8),\n"
        "                  IN(9), __global float *z, ulong zo, int n)\n"
        "{ int i = get_global_id(0); if (i >= n) return;\n"
        "  z[zo + i] = a0[o0 + i] + a1[o1 + i] + a2[o2 + i] + a3[o3 + i] + a4[o4 + i] +\n"
        "              a5[o5 + i] + a6[o6 + i] + a7[o7 + i] + a8[o8 + i] + a9[o9 + i]; }\n";
    okto_kernel *fan;
    TU_OK(okto_kernel_create(ctx, src, "fan", &fan));
    okto_tensor *a = tu_tensor(ctx, 2, 4, NULL), *c = tu_tensor(ctx, 2, 4, NULL), *b[10];
    for (int i = 1; i <= 9; i++)
        b[i] = tu_tensor(ctx, 2, 4, NULL);
    int n = 8;
    size_t global = 8;
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, a, 100)); /* 0 */
    for (int i = 1; i <= 8; i++)
        TU_OK(okto_fill(g, b[i], (float)i)); /* 1..8 */
    okto_arg a9[] = {OKTO_R(b[1]), OKTO_R(b[2]), OKTO_R(b[3]), OKTO_R(b[4]), OKTO_R(b[5]),
                     OKTO_R(b[6]), OKTO_R(b[7]), OKTO_R(b[8]), OKTO_R(b[1]), OKTO_R(b[2]),
                     OKTO_W(b[9]), OKTO_VALUE(&n)};
    TU_OK(okto_launch(g, fan, 1, &global, NULL, 12, a9)); /* 9: on 1..8 */
    expect_deps(g, 9, 8, 1, 2, 3, 4, 5, 6, 7, 8);
    okto_arg a10[] = {OKTO_R(a), OKTO_R(b[1]), OKTO_R(b[2]), OKTO_R(b[3]), OKTO_R(b[4]),
                      OKTO_R(b[5]), OKTO_R(b[6]), OKTO_R(b[7]), OKTO_R(b[8]), OKTO_R(b[9]),
                      OKTO_W(c), OKTO_VALUE(&n)};
    TU_OK(okto_launch(g, fan, 1, &global, NULL, 12, a10)); /* 10: on 0 and 9 */
    expect_deps(g, 10, 2, 0, 9);
    for (int i = 1; i <= 8; i++)
        assert_int_equal(nsucc_of(g, i), 1);
    TU_OK(okto_graph_run(g));
    expect_all(b[9], 36.0f + 3.0f);
    expect_all(c, 100.0f + 36.0f + 39.0f);
    okto_graph_destroy(g);
    okto_tensor_destroy(a);
    okto_tensor_destroy(c);
    for (int i = 1; i <= 9; i++)
        okto_tensor_destroy(b[i]);
    okto_kernel_destroy(fan);
}

static void covering_write_hides_older(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL);
    okto_tensor *lo = view(x, 0, 4), *hi = view(x, 4, 4), *ylo = view(y, 0, 4);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, hi, 1));     /* 0: W x[4,8) */
    TU_OK(okto_fill(g, lo, 2));     /* 1: W x[0,4) */
    TU_OK(okto_copy(g, y, x));      /* 2: R x: a write covering part of it does not hide the
                                       rest: on 0 and 1 */
    expect_deps(g, 2, 2, 0, 1);
    TU_OK(okto_fill(g, x, 3));      /* 3: W x (covers everything): WAR on 2 only */
    expect_deps(g, 3, 1, 2);
    launch_plus1(g, ylo, hi);       /* 4: R x[4,8), W y[0,4): x on 3 (which hides 0), y on 2,
                                       which 3 implies */
    expect_deps(g, 4, 1, 3);
    launch_plus1(g, lo, ylo);       /* 5: W x[0,4), R y[0,4): on 4 (RAW y); 3 implied */
    expect_deps(g, 5, 1, 4);
    TU_OK(okto_graph_run(g));
    float *hx = tu_read(x), *hy = tu_read(y);
    for (int i = 0; i < 32; i++) {
        assert_float_equal(hy[i], i < 16 ? 4.0f : 1.0f, 0);
        assert_float_equal(hx[i], i < 16 ? 5.0f : 3.0f, 0);
    }
    free(hx), free(hy);
    okto_graph_destroy(g);
    okto_tensor_destroy(lo);
    okto_tensor_destroy(hi);
    okto_tensor_destroy(ylo);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
}

/* Many small writes split a reader's range into more intervals than the hiding set tracks
 * (16): the analysis must stay correct (keep every conflict) when it gives up hiding. */
static void many_fragments(void **state)
{
    (void)state;
    enum { R = 64, W = 24 };
    okto_tensor *x = tu_tensor(ctx, R, 2, NULL), *y = tu_tensor(ctx, R, 2, NULL);
    okto_tensor *rows[W];
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, x, 1)); /* 0 */
    for (int i = 0; i < W; i++) {
        rows[i] = view(x, (size_t)(2 * i + 1), 1);
        TU_OK(okto_fill(g, rows[i], (float)(i + 2))); /* 1 + i: on 0 */
        expect_deps(g, 1 + i, 1, 0);
    }
    TU_OK(okto_copy(g, y, x)); /* W + 1: on every row write; 0 is implied through them */
    int t = W + 1;
    assert_int_equal(ndeps_of(g, t), W);
    for (int i = 0; i < W; i++)
        assert_true(has_dep(g, t, 1 + i));
    TU_OK(okto_graph_run(g));
    float *h = tu_read(y);
    for (int r = 0; r < R; r++) {
        float want = (r % 2 == 1 && r / 2 < W) ? (float)(r / 2 + 2) : 1.0f;
        assert_float_equal(h[2 * r], want, 0);
        assert_float_equal(h[2 * r + 1], want, 0);
    }
    free(h);
    okto_graph_destroy(g);
    for (int i = 0; i < W; i++)
        okto_tensor_destroy(rows[i]);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
}

static int okto__parts(okto_graph *g, size_t rows, double work)
{
    okto__rec r = {.g = g, .ctx = g->ctx};
    return okto__rec_parts(&r, rows, work);
}

static void parts_rule(void **state)
{
    (void)state;
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    assert_int_equal(ctx->ncompute, 4);
    assert_int_equal(okto__parts(g, 2048, 2048.0 * 512), 4);  /* one per compute lane */
    assert_int_equal(okto__parts(g, 1, 1e9), 1);              /* one row: no split */
    assert_int_equal(okto__parts(g, 3, 1e9), 3);              /* at most one part per row */
    assert_int_equal(okto__parts(g, 4096, 1000), 1);          /* too little work */
    assert_int_equal(okto__parts(g, 4096, 3 * 65536.0), 3);   /* work-limited */
    okto_graph_destroy(g);

    okto_context *one = tu_context_with(1, OKTO_SCHED_AUTO);
    okto_graph *g1;
    TU_OK(okto_graph_create(one, &g1));
    assert_int_equal(okto__parts(g1, 2048, 2048.0 * 512), 1); /* one lane: never split */
    okto_graph_destroy(g1);
    okto_context_destroy(one);

    /* part rows tile the range exactly */
    for (int n = 1; n <= 7; n++) {
        assert_int_equal(okto__part_row(1001, 0, n), 0);
        assert_int_equal(okto__part_row(1001, n, n), 1001);
        for (int p = 0; p < n; p++)
            assert_true(okto__part_row(1001, p, n) < okto__part_row(1001, p + 1, n));
    }
}

/* Part i of op 2 waits only on part i of op 1: partitioned layers pipeline per part. */
static void per_part_edges(void **state)
{
    (void)state;
    enum { R = 2048, C = 512, P = 4 };
    okto_tensor *x = tu_tensor(ctx, R, C, NULL), *y = tu_tensor(ctx, R, C, NULL),
                *z = tu_tensor(ctx, R, C, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, x, 1)); /* tasks 0..3 */
    assert_int_equal(okto_graph_task_count(g), P);
    for (int p = 0; p < P; p++) {
        const okto__task *t = &g->tasks[p];
        assert_int_equal(t->part, p);
        assert_int_equal(t->nparts, P);
        assert_int_equal(t->nacc, 1);
        assert_int_equal(okto__task_acc(g, t)[0].region.lo0, (size_t)(R / P * p));
        assert_int_equal(okto__task_acc(g, t)[0].region.hi0, (size_t)(R / P * (p + 1)));
        expect_deps(g, p, 0);
    }
    TU_OK(okto_fill(g, y, 2));      /* 4..7: independent of x */
    TU_OK(okto_axpy(g, y, 3, x));   /* 8..11: part p on fill y p and fill x p */
    TU_OK(okto_scale(g, y, 0.5f));  /* 12..15: part p on axpy p */
    TU_OK(okto_copy(g, z, y));      /* 16..19: part p on scale p */
    assert_int_equal(okto_graph_task_count(g), 5 * P);
    for (int p = 0; p < P; p++) {
        expect_deps(g, 4 + p, 0);
        expect_deps(g, 8 + p, 2, 4 + p, p);
        expect_deps(g, 12 + p, 1, 8 + p);
        expect_deps(g, 16 + p, 1, 12 + p);
        assert_int_equal(g->tasks[16 + p].part, p);
    }
    /* an op on the upper half's view splits on its own boundaries and waits only on the
     * parts it overlaps: 4 parts of rows [1024,2048) each inside part 2 or 3 of the copy */
    okto_tensor *upper = view(z, R / 2, R / 2);
    TU_OK(okto_scale(g, upper, 2)); /* 20..23 */
    assert_int_equal(okto_graph_task_count(g), 6 * P);
    expect_deps(g, 20, 1, 18);
    expect_deps(g, 21, 1, 18);
    expect_deps(g, 22, 1, 19);
    expect_deps(g, 23, 1, 19);
    /* a whole-tensor read after parts waits on every last part writer */
    okto_tensor *small = tu_tensor(ctx, R, C, NULL);
    launch_plus1(g, small, z); /* 24: unpartitioned: on 16, 17, 20..23 */
    expect_deps(g, 24, 6, 16, 17, 20, 21, 22, 23);

    for (okto_sched s = OKTO_SCHED_SEQUENTIAL; s < OKTO_SCHED_COUNT; s++) {
        TU_OK(okto_graph_set_sched(g, s));
        TU_OK(okto_graph_run(g));
        float *h = tu_read(small);
        for (size_t i = 0; i < (size_t)R * C; i++) {
            float want = (i < (size_t)R * C / 2 ? 2.5f : 5.0f) + 1.0f;
            if (h[i] != want) {
                float got = h[i];
                free(h);
                fail_msg("%s: element %zu is %g, expected %g", okto_sched_name(s), i,
                         (double)got, (double)want);
            }
        }
        free(h);
    }
    okto_graph_destroy(g);
    okto_tensor_destroy(upper);
    okto_tensor_destroy(small);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_tensor_destroy(z);
}

/* okto__graph_truncate rolls recording back: tasks, successor counts and the per-storage
 * histories, so later ops see exactly the graph as it was. */
static void truncate_restores_history(void **state)
{
    (void)state;
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL),
                *z = tu_tensor(ctx, 8, 4, NULL);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, x, 1));     /* 0 */
    TU_OK(okto_copy(g, y, x));     /* 1 */
    TU_OK(okto_fill(g, z, 2));     /* 2 */
    TU_OK(okto_axpy(g, z, 1, y));  /* 3: on 2 and 1 */
    assert_int_equal(nsucc_of(g, 1), 1);
    okto__graph_truncate(g, 2);
    assert_int_equal(okto_graph_task_count(g), 2);
    assert_int_equal(nsucc_of(g, 0), 1);
    assert_int_equal(nsucc_of(g, 1), 0);
    TU_OK(okto_scale(g, x, 3));    /* 2: WAR on 1 */
    expect_deps(g, 2, 1, 1);
    TU_OK(okto_copy(g, z, x));     /* 3: on 2 only: the truncated fill of z left no trace */
    expect_deps(g, 3, 1, 2);
    /* a failing op records nothing */
    okto_tensor *bad = tu_tensor(ctx, 4, 8, NULL);
    assert_int_equal(okto_axpy(g, z, 1, bad), OKTO_EINVAL);
    okto_graph_clear_error(g);
    assert_int_equal(okto_copy(g, bad, z), OKTO_EINVAL);
    okto_graph_clear_error(g);
    assert_int_equal(okto_graph_task_count(g), 4);
    TU_OK(okto_graph_run(g));
    expect_all(y, 1.0f);
    expect_all(z, 3.0f);
    okto_graph_destroy(g);
    okto_tensor_destroy(bad);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_tensor_destroy(z);
}

/* RW user-kernel args: a read-write is both a read and a write for the analysis. */
static void user_kernel_modes(void **state)
{
    (void)state;
    static const char *src =
        "__kernel void inc(__global float *x, ulong xo, int n)\n"
        "{ int i = get_global_id(0); if (i < n) x[xo + i] += 1.0f; }\n";
    okto_kernel *inc;
    TU_OK(okto_kernel_create(ctx, src, "inc", &inc));
    okto_tensor *x = tu_tensor(ctx, 8, 4, NULL), *y = tu_tensor(ctx, 8, 4, NULL);
    okto_tensor *lo = view(x, 0, 4), *hi = view(x, 4, 4);
    int n = 16;
    size_t global = 16;
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    okto_arg a_lo[] = {OKTO_RW(lo), OKTO_VALUE(&n)}, a_hi[] = {OKTO_RW(hi), OKTO_VALUE(&n)};
    TU_OK(okto_launch(g, inc, 1, &global, NULL, 2, a_lo)); /* 0 */
    TU_OK(okto_launch(g, inc, 1, &global, NULL, 2, a_hi)); /* 1: disjoint */
    TU_OK(okto_launch(g, inc, 1, &global, NULL, 2, a_lo)); /* 2: RW after RW on 0 */
    TU_OK(okto_copy(g, y, x));                             /* 3: on 1 and 2 */
    TU_OK(okto_launch(g, inc, 1, &global, NULL, 2, a_hi)); /* 4: WAR on 3 (1 implied) */
    expect_deps(g, 1, 0);
    expect_deps(g, 2, 1, 0);
    expect_deps(g, 3, 2, 1, 2);
    expect_deps(g, 4, 1, 3);
    assert_int_equal(okto__task_acc(g, &g->tasks[0])[0].mode, OKTO__RW);
    for (int run = 0; run < 3; run++)
        TU_OK(okto_graph_run(g));
    float *hx = tu_read(x), *hy = tu_read(y);
    for (int i = 0; i < 32; i++) {
        assert_float_equal(hx[i], 6.0f, 0);
        /* y is x after this run's 2 incs of lo and 1 of hi, on top of 2 earlier runs */
        assert_float_equal(hy[i], i < 16 ? 6.0f : 5.0f, 0);
    }
    free(hx), free(hy);
    okto_graph_destroy(g);
    okto_tensor_destroy(lo);
    okto_tensor_destroy(hi);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
    okto_kernel_destroy(inc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(raw_war_waw),
        cmocka_unit_test(read_after_read_no_edge),
        cmocka_unit_test(overlapping_vs_disjoint_views),
        cmocka_unit_test(two_accesses_one_storage),
        cmocka_unit_test(transitive_reduction),
        cmocka_unit_test(wide_fan_in_reduction),
        cmocka_unit_test(covering_write_hides_older),
        cmocka_unit_test(many_fragments),
        cmocka_unit_test(parts_rule),
        cmocka_unit_test(per_part_edges),
        cmocka_unit_test(truncate_restores_history),
        cmocka_unit_test(user_kernel_modes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
