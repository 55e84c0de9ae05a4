/* tests/testutil.c: see testutil.h. */
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

okto_context *tu_context_with(int compute_lanes, okto_sched sched)
{
    okto_config cfg;
    okto_config_init(&cfg);
    if (compute_lanes > 0)
        cfg.compute_lanes = compute_lanes;
    if (sched != OKTO_SCHED_AUTO)
        cfg.sched = sched;
    okto_context *ctx = NULL;
    okto_status s = okto_context_create(&cfg, &ctx);
    if (s == OKTO_ENODEV) {
        fprintf(stderr, "skipped: no OpenCL device: %s\n", okto_last_error(NULL));
        exit(77);
    }
    if (s != OKTO_OK)
        fail_msg("okto_context_create: %s: %s", okto_status_str(s), okto_last_error(NULL));
    return ctx;
}

okto_context *tu_context(void) { return tu_context_with(0, OKTO_SCHED_AUTO); }

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

float tu_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(tu_rand(s) >> 11) * (1.0 / 9007199254740992.0));
}

void tu_fill_random(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    for (size_t i = 0; i < n; i++)
        x[i] = tu_uniform(&s, lo, hi);
}

double tu_max_rel_err(const float *got, const double *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(d <= worst)) /* NaN counts as the worst */
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

void tu_expect_refused(okto_context *ctx, okto_graph *g, okto_status got, okto_status want,
                       const char *s1, const char *s2, int tasks_before)
{
    const char *msg = okto_last_error(ctx);
    if (got != want)
        fail_msg("got %s, want %s (%s)", okto_status_str(got), okto_status_str(want), msg);
    if (s1 && !strstr(msg, s1))
        fail_msg("message \"%s\" lacks \"%s\"", msg, s1);
    if (s2 && !strstr(msg, s2))
        fail_msg("message \"%s\" lacks \"%s\"", msg, s2);
    assert_int_equal(okto_graph_task_count(g), tasks_before);
    /* the graph keeps the error (okto/graph.h): the next op is refused with it until cleared */
    if (g && want != OKTO_OK) {
        const char *kept;
        assert_int_equal(okto_graph_status(g, &kept), got);
        okto_graph_clear_error(g);
        assert_int_equal(okto_graph_status(g, NULL), OKTO_OK);
    }
}

okto_tensor *tu_tensor(okto_context *ctx, size_t rows, size_t cols, const float *data)
{
    okto_tensor *t = NULL;
    TU_OK(okto_tensor_create_2d(ctx, rows, cols, &t));
    if (data) {
        TU_OK(okto_tensor_write(t, data));
    } else {
        float *z = calloc(rows * cols, sizeof *z);
        TU_OK(okto_tensor_write(t, z));
        free(z);
    }
    return t;
}

float *tu_read(const okto_tensor *t)
{
    float *h = malloc(okto_tensor_rows(t) * okto_tensor_cols(t) * sizeof *h);
    TU_OK(okto_tensor_read(t, h));
    return h;
}
