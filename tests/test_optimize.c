/* tests/test_optimize.c: the graph optimizer (lib/engine/optimize.c) against the unrewritten
 * graph. Every case records the same calls into a graph with the optimizer off (the reference)
 * and one with it on, runs the second under every policy, and compares:
 *   - small matmuls (okto_gemm_small -> okto_gemm_batched_4x8, _4x4 or okto_gemm_small_batched
 *     by shape): the same bits (memcmp), as all sum each element in k order with fma;
 *   - CLBlast products (one CLBlastSgemm each -> okto's batched kernel, or one strided-batched
 *     CLBlast call): within 1e-5 relative (|d| <= 1e-5 max(1, |ref|)): another summation
 *     order;
 *   - the AdamW steps (okto_adamw per tensor -> one okto_adamw_multi launch): the same bits,
 *     as both kernels compute each element with the same expression.
 *   - chains of elementwise tasks (one generated kernel, lib/engine/fuse.c): the same bits, as
 *     the same float statements run in the same order.
 * Random DAGs of products over blocks of one storage (some reading earlier products, some
 * accumulating, an okto_scale now and then) check that batches never cross a dependency path.
 * Edge cases: a product that reads a member closes the batch; truncating the graph below a
 * batch's leader puts its members back; recording after an optimized launch depends on the
 * batch; OKTO_FUSE=0 leaves the graph alone; an intermediate of a chain that something else
 * reads ends the chain there (and is written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Tasks another task does (batched into it) and batches in g. */
static void count_batched(const okto_graph *g, int *absorbed, int *batches)
{
    *absorbed = *batches = 0;
    for (int i = 0; i < g->ntasks; i++) {
        *absorbed += g->tasks[i].into != 0;
        *batches += g->tasks[i].nfused != 0;
    }
}

/* ---- random DAGs of products over the blocks of one storage ---------------------------------- */

enum { NBLK = 10, NOPS = 48 };

typedef struct pop {
    int kind; /* 0 matmul, 1 scale */
    int c, a, b, flags;
    float s;
} pop;

static void make_ops(uint64_t seed, pop *ops)
{
    uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < NOPS; i++) {
        pop *o = &ops[i];
        o->kind = tu_rand(&r) % 8 == 0;
        o->c = (int)(tu_rand(&r) % NBLK);
        /* mostly the two input blocks (wide batches), sometimes an earlier product */
        do {
            o->a = tu_rand(&r) % 3 ? 0 : (int)(tu_rand(&r) % NBLK);
            o->b = tu_rand(&r) % 3 ? 1 : (int)(tu_rand(&r) % NBLK);
        } while (o->a == o->c || o->b == o->c);
        o->flags = (tu_rand(&r) % 4 == 0 ? OKTO_ACCUMULATE : 0) |
                   (tu_rand(&r) % 6 == 0 ? OKTO_TRANS_A : 0);
        o->s = 0.5f;
    }
}

static okto_graph *record_ops(okto_tensor *x, size_t s, const pop *ops, int fuse)
{
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    okto__graph_set_fuse(g, fuse);
    for (int i = 0; i < NOPS; i++) {
        const pop *o = &ops[i];
        okto_tensor *c, *a, *b;
        TU_OK(okto_tensor_view(x, (size_t)o->c * s, s, &c));
        TU_OK(okto_tensor_view(x, (size_t)o->a * s, s, &a));
        TU_OK(okto_tensor_view(x, (size_t)o->b * s, s, &b));
        if (o->kind == 0)
            TU_OK(okto_matmul(g, c, a, b, o->flags));
        else
            TU_OK(okto_scale(g, c, o->s));
        okto_tensor_destroy(c);
        okto_tensor_destroy(a);
        okto_tensor_destroy(b);
    }
    return g;
}

static void run_from(okto_graph *g, okto_sched sched, okto_tensor *x, const float *init, float *out)
{
    TU_OK(okto_tensor_write(x, init));
    TU_OK(okto_graph_set_sched(g, sched));
    TU_OK(okto_graph_run(g));
    TU_OK(okto_tensor_read(x, out));
}

static void compare(const float *got, const float *want, size_t n, int exact, const char *what)
{
    if (exact) {
        if (memcmp(got, want, n * sizeof *got) != 0) {
            for (size_t i = 0; i < n; i++)
                if (memcmp(&got[i], &want[i], sizeof *got))
                    fail_msg("%s: element %zu is %.9g, unoptimized %.9g", what, i, (double)got[i],
                             (double)want[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(d <= 1e-5))
            fail_msg("%s: element %zu is %.9g, unoptimized %.9g", what, i, (double)got[i],
                     (double)want[i]);
    }
}

static void random_products(size_t s, int exact)
{
    size_t n = NBLK * s * s;
    float *init = malloc(n * sizeof *init), *want = malloc(n * sizeof *want),
          *got = malloc(n * sizeof *got);
    /* values that stay small through chains of products */
    tu_fill_random(init, n, 7, -1.0f / (float)s, 1.0f / (float)s);
    okto_tensor *x = tu_tensor(ctx, NBLK * s, s, NULL);
    int total_absorbed = 0;
    const okto_sched pols[] = {OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_ROUND_ROBIN, OKTO_SCHED_HEFT,
                               OKTO_SCHED_HEFT};
    for (uint64_t seed = 1; seed <= 12; seed++) {
        pop ops[NOPS];
        make_ops(seed, ops);
        okto_graph *ref = record_ops(x, s, ops, 0), *opt = record_ops(x, s, ops, OKTO__FUSE_ALL);
        run_from(ref, OKTO_SCHED_SEQUENTIAL, x, init, want);
        for (size_t p = 0; p < sizeof pols / sizeof *pols; p++) {
            char what[96];
            snprintf(what, sizeof what, "seed %llu, %s, products %zu-cubed",
                     (unsigned long long)seed, okto_sched_name(pols[p]), s);
            run_from(opt, pols[p], x, init, got);
            compare(got, want, n, exact, what);
        }
        int absorbed, batches;
        count_batched(ref, &absorbed, &batches);
        assert_int_equal(absorbed + batches, 0); /* off means off */
        count_batched(opt, &absorbed, &batches);
        total_absorbed += absorbed;
        okto_graph_destroy(ref);
        okto_graph_destroy(opt);
    }
    assert_true(total_absorbed > 0); /* the DAGs did exercise batching */
    okto_tensor_destroy(x);
    free(init);
    free(want);
    free(got);
}

static void random_small_products(void **state)
{
    (void)state;
    random_products(8, 1);  /* okto_gemm_batched_4x8 */
    random_products(12, 1); /* okto_gemm_batched_4x4 */
    random_products(6, 1);  /* okto_gemm_small_batched */
}

static void random_clblast_products(void **state)
{
    (void)state;
    random_products(40, 0); /* 40-cubed: above the own kernel's bound, CLBlast's direct path */
}

/* ---- edge cases ------------------------------------------------------------------------------ */

/* n independent 8-cubed products c_i = A B into blocks of c, one product reading c_1 */
static void edge_cases(void **state)
{
    (void)state;
    const size_t s = 8, nb = 6;
    float a[64], b[64], *want = malloc(nb * 64 * sizeof *want),
                        *got = malloc(nb * 64 * sizeof *got);
    tu_fill_random(a, 64, 1, -1, 1);
    tu_fill_random(b, 64, 2, -1, 1);
    okto_tensor *A = tu_tensor(ctx, s, s, a), *B = tu_tensor(ctx, s, s, b),
                *C = tu_tensor(ctx, nb * s, s, NULL), *blk[6];
    float zero[6 * 64] = {0};
    for (size_t i = 0; i < nb; i++)
        TU_OK(okto_tensor_view(C, i * s, s, &blk[i]));
    /* 1. c0 = AB, c1 = AB, c2 = c1 B (reads a member: closes the batch), c3 = AB, c4 = AB */
    okto_graph *g[2];
    for (int f = 0; f < 2; f++) {
        TU_OK(okto_graph_create(ctx, &g[f]));
        okto__graph_set_fuse(g[f], f ? OKTO__FUSE_ALL : 0);
        TU_OK(okto_matmul(g[f], blk[0], A, B, 0));
        TU_OK(okto_matmul(g[f], blk[1], A, B, 0));
        TU_OK(okto_matmul(g[f], blk[2], blk[1], B, 0));
        TU_OK(okto_matmul(g[f], blk[3], A, B, 0));
        TU_OK(okto_matmul(g[f], blk[4], A, B, 0));
        TU_OK(okto_tensor_write(C, zero));
        TU_OK(okto_graph_run(g[f]));
        TU_OK(okto_tensor_read(C, f ? got : want));
    }
    compare(got, want, nb * 64, 1, "a product reading a member");
    /* {c0, c1} and {c3, c4}: c2 depends on c1 and so ended the first batch; c2 is alone */
    assert_int_equal(g[1]->tasks[0].into, 2);
    assert_int_equal(g[1]->tasks[1].nfused, 2);
    assert_int_equal(g[1]->tasks[2].into, 0);
    assert_int_equal(g[1]->tasks[2].nfused, 0);
    assert_int_equal(g[1]->tasks[3].into, 5);
    assert_int_equal(g[1]->tasks[4].nfused, 2);
    const uint32_t *d = okto__task_deps(g[1], &g[1]->tasks[2]);
    assert_int_equal(g[1]->tasks[2].ndeps, 1);
    assert_int_equal(d[0], 1);

    /* 2. recording after an optimized launch: c5 = c0 B depends on the batch doing c0 */
    for (int f = 0; f < 2; f++) {
        TU_OK(okto_matmul(g[f], blk[5], blk[0], B, 0));
        TU_OK(okto_tensor_write(C, zero));
        TU_OK(okto_graph_run(g[f]));
        TU_OK(okto_tensor_read(C, f ? got : want));
    }
    compare(got, want, nb * 64, 1, "recorded after an optimized launch");
    d = okto__task_deps(g[1], &g[1]->tasks[5]);
    assert_int_equal(g[1]->tasks[5].ndeps, 1);
    assert_int_equal(d[0], 1);

    /* 3. truncating below a leader: its members do their own work again */
    for (int f = 0; f < 2; f++) {
        okto__graph_truncate(g[f], 4); /* drops c4's task, the second batch's leader, and c5 */
        TU_OK(okto_tensor_write(C, zero));
        TU_OK(okto_graph_run(g[f]));
        TU_OK(okto_tensor_read(C, f ? got : want));
    }
    compare(got, want, nb * 64, 1, "truncated below a leader");
    assert_int_equal(g[1]->tasks[3].into, 0);
    for (int f = 0; f < 2; f++)
        okto_graph_destroy(g[f]);
    for (size_t i = 0; i < nb; i++)
        okto_tensor_destroy(blk[i]);
    okto_tensor_destroy(A);
    okto_tensor_destroy(B);
    okto_tensor_destroy(C);
    free(want);
    free(got);
}

/* ---- per-tensor AdamW steps into one multi-tensor launch --------------------------------------- */

/* 30 tensors of mixed sizes (some above a chunk, some split into parts by okto_adamw) as views
 * of four arenas, each its own weight decay; one tensor in a storage of its own (not batched
 * with the others), a gradient scale; three steps, so the state carries over */
static void adamw_steps(void **state)
{
    (void)state;
    enum { NT = 30 };
    size_t len[NT], total = 0;
    uint64_t r = 99;
    for (int i = 0; i < NT; i++) {
        len[i] = 1 + (size_t)(tu_rand(&r) % (i % 7 == 0 ? 150000 : 3000));
        total += len[i];
    }
    float *init[4], *want[4], *got[4];
    okto_tensor *arena[4], *solo[4];
    for (int k = 0; k < 4; k++) {
        init[k] = malloc(total * sizeof(float));
        want[k] = malloc(total * sizeof(float));
        got[k] = malloc(total * sizeof(float));
        tu_fill_random(init[k], total, 10 + (uint64_t)k, k == 3 ? 0.0f : -1.0f, 1.0f);
        arena[k] = tu_tensor(ctx, total, 1, NULL);
        solo[k] = tu_tensor(ctx, 77, 1, init[k]);
    }
    float sched0[4] = {1e-2f, 0, 0, 0}, one = 0.5f;
    okto_tensor *sched = tu_tensor(ctx, 1, 4, NULL), *gs = tu_tensor(ctx, 1, 1, &one);
    okto_graph *g[2];
    for (int f = 0; f < 2; f++) {
        TU_OK(okto_graph_create(ctx, &g[f]));
        okto__graph_set_fuse(g[f], f ? OKTO__FUSE_ALL : 0);
        TU_OK(okto_sched_advance(g[f], sched));
        TU_OK(okto_adamw_prepare(g[f], sched, 0.9f, 0.999f));
        size_t r0 = 0;
        for (int i = 0; i < NT; i++) {
            okto_tensor *v[4];
            for (int k = 0; k < 4; k++)
                TU_OK(okto_tensor_view(arena[k], r0, len[i], &v[k]));
            TU_OK(okto_adamw(g[f], v[0], v[1], v[2], v[3], sched, i % 2 ? gs : NULL, 0.9f, 0.999f,
                             1e-8f, 0.01f * (float)(i % 4)));
            if (i == NT / 2)
                TU_OK(okto_adamw(g[f], solo[0], solo[1], solo[2], solo[3], sched, NULL, 0.9f,
                                 0.999f, 1e-8f, 0.1f));
            for (int k = 0; k < 4; k++)
                okto_tensor_destroy(v[k]);
            r0 += len[i];
        }
    }
    const okto_sched pols[] = {OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_ROUND_ROBIN,
                               OKTO_SCHED_HEFT};
    for (size_t p = 0; p < sizeof pols / sizeof *pols; p++) {
        /* p 0: the reference (optimizer off), then the optimized graph under each policy */
        okto_graph *run = p == 0 ? g[0] : g[1];
        for (int k = 0; k < 4; k++)
            TU_OK(okto_tensor_write(arena[k], init[k]));
        TU_OK(okto_tensor_write(sched, sched0));
        TU_OK(okto_graph_set_sched(run, pols[p]));
        for (int step = 0; step < 3; step++)
            TU_OK(okto_graph_run(run));
        for (int k = 0; k < 4; k++)
            TU_OK(okto_tensor_read(arena[k], p == 0 ? want[k] : got[k]));
        for (int k = 0; k < 4 && p > 0; k++) {
            char what[64];
            snprintf(what, sizeof what, "adamw, %s, arena %d", okto_sched_name(pols[p]), k);
            compare(got[k], want[k], total, 1, what);
        }
    }
    int absorbed, batches;
    count_batched(g[1], &absorbed, &batches);
    /* the arenas' steps, one batch with the gradient scale and one without; the solo one
     * (another storage) apart */
    assert_int_equal(batches, 2);
    assert_true(absorbed >= NT - 2);
    for (int f = 0; f < 2; f++)
        okto_graph_destroy(g[f]);
    for (int k = 0; k < 4; k++) {
        okto_tensor_destroy(arena[k]);
        okto_tensor_destroy(solo[k]);
        free(init[k]), free(want[k]), free(got[k]);
    }
    okto_tensor_destroy(sched);
    okto_tensor_destroy(gs);
}

/* ---- vertical fusion of elementwise chains ----------------------------------------------------- */

/* Random programs of elementwise ops over four tensors (in place and across, row halves so
 * some ranges differ, an okto_fill, copies), fused against unfused, the same bits */
static okto_graph *record_ew(okto_tensor **x, okto_tensor **half, uint64_t seed, int fuse)
{
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    okto__graph_set_fuse(g, fuse);
    uint64_t r = seed;
    for (int i = 0; i < 60; i++) {
        int kind = (int)(tu_rand(&r) % 9), d = (int)(tu_rand(&r) % 4), o = (int)(tu_rand(&r) % 4);
        okto_tensor *y = x[d], *z = x[o];
        if (tu_rand(&r) % 4 == 0) /* a row half of each */
            y = half[d], z = half[o];
        float a = tu_uniform(&r, -1.5f, 1.5f);
        switch (kind) {
        case 0: TU_OK(okto_scale(g, y, a)); break;
        case 1: TU_OK(okto_map(g, y, y, OKTO_MAP_TANH)); break;
        case 2: TU_OK(okto_map(g, y, y, OKTO_MAP_ABS)); break;
        case 3:
            if (z != y)
                TU_OK(okto_axpy(g, y, a, z));
            break;
        case 4:
            if (z != y)
                TU_OK(okto_zip(g, y, y, z, OKTO_ZIP_MUL));
            break;
        case 5:
            if (z != y)
                TU_OK(okto_copy(g, y, z));
            break;
        case 6: TU_OK(okto_fill(g, y, a)); break;
        case 7:
            if (z != y)
                TU_OK(okto_map(g, y, z, OKTO_MAP_SIGMOID));
            break;
        default:
            if (z != y)
                TU_OK(okto_zip(g, y, z, y, OKTO_ZIP_ADD));
            break;
        }
    }
    return g;
}

static void random_elementwise(void **state)
{
    (void)state;
    const size_t rows = 64, cols = 100, n = rows * cols;
    okto_tensor *x[4], *half[4];
    float *init[4], *want[4], *got[4];
    for (int k = 0; k < 4; k++) {
        init[k] = malloc(n * sizeof(float));
        want[k] = malloc(n * sizeof(float));
        got[k] = malloc(n * sizeof(float));
        tu_fill_random(init[k], n, 40 + (uint64_t)k, -1, 1);
        x[k] = tu_tensor(ctx, rows, cols, NULL);
        TU_OK(okto_tensor_view(x[k], rows / 2, rows / 2, &half[k]));
    }
    const okto_sched pols[] = {OKTO_SCHED_SEQUENTIAL, OKTO_SCHED_ROUND_ROBIN, OKTO_SCHED_HEFT};
    int total = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        okto_graph *ref = record_ew(x, half, seed, 0),
                   *opt = record_ew(x, half, seed, OKTO__FUSE_ALL);
        for (size_t p = 0; p <= sizeof pols / sizeof *pols; p++) {
            okto_graph *run = p == 0 ? ref : opt;
            for (int k = 0; k < 4; k++)
                TU_OK(okto_tensor_write(x[k], init[k]));
            TU_OK(okto_graph_set_sched(run, p == 0 ? OKTO_SCHED_SEQUENTIAL : pols[p - 1]));
            TU_OK(okto_graph_run(run));
            for (int k = 0; k < 4; k++) {
                TU_OK(okto_tensor_read(x[k], p == 0 ? want[k] : got[k]));
                if (p > 0) {
                    char what[80];
                    snprintf(what, sizeof what, "elementwise seed %llu, %s, tensor %d",
                             (unsigned long long)seed, okto_sched_name(pols[p - 1]), k);
                    compare(got[k], want[k], n, 1, what);
                }
            }
        }
        int absorbed, batches;
        count_batched(opt, &absorbed, &batches);
        total += absorbed;
        okto_graph_destroy(ref);
        okto_graph_destroy(opt);
    }
    assert_true(total > 0);
    for (int k = 0; k < 4; k++) {
        okto_tensor_destroy(half[k]);
        okto_tensor_destroy(x[k]);
        free(init[k]), free(want[k]), free(got[k]);
    }
}

/* x = 0.5 x; y = copy(x) reads the intermediate; x = tanh(x); x = 2 x: the chain ends at the
 * copy, so x's intermediate is written for it; then {tanh, scale} fuse */
static void chain_read_outside(void **state)
{
    (void)state;
    float h[256], want_y[256], want_x[256], gy[256], gx[256];
    tu_fill_random(h, 256, 5, -2, 2);
    okto_tensor *x = tu_tensor(ctx, 16, 16, NULL), *y = tu_tensor(ctx, 16, 16, NULL);
    okto_graph *g[2];
    for (int f = 0; f < 2; f++) {
        TU_OK(okto_graph_create(ctx, &g[f]));
        okto__graph_set_fuse(g[f], f ? OKTO__FUSE_ALL : 0);
        TU_OK(okto_scale(g[f], x, 0.5f));
        TU_OK(okto_scale(g[f], x, 3.0f));
        TU_OK(okto_copy(g[f], y, x));
        TU_OK(okto_map(g[f], x, x, OKTO_MAP_TANH));
        TU_OK(okto_scale(g[f], x, 2.0f));
        TU_OK(okto_tensor_write(x, h));
        TU_OK(okto_graph_run(g[f]));
        TU_OK(okto_tensor_read(y, f ? gy : want_y));
        TU_OK(okto_tensor_read(x, f ? gx : want_x));
    }
    compare(gy, want_y, 256, 1, "the intermediate read outside");
    compare(gx, want_x, 256, 1, "the chain's result");
    assert_int_equal(g[1]->tasks[0].into, 2); /* scale, scale fused at task 1 */
    assert_int_equal(g[1]->tasks[1].nfused, 2);
    assert_int_equal(g[1]->tasks[2].nfused, 0); /* the copy alone */
    assert_int_equal(g[1]->tasks[3].into, 5);   /* tanh, scale fused at task 4 */
    assert_int_equal(g[1]->tasks[4].nfused, 2);
    for (int f = 0; f < 2; f++)
        okto_graph_destroy(g[f]);
    okto_tensor_destroy(x);
    okto_tensor_destroy(y);
}

/* A gradient op's expression is formatted at record time (zip.mul.backward: "c * b"); the chain
 * {da = dy * b, da *= 2} must fuse with that expression, not with what the recording call's
 * stack held later (it once generated "v = ();", the build failed and the chain ran unfused) */
static void gradient_chain(void **state)
{
    (void)state;
    float ha[256], hb[256], hdy[256], want[256], got[256];
    tu_fill_random(ha, 256, 7, -2, 2);
    tu_fill_random(hb, 256, 8, -2, 2);
    tu_fill_random(hdy, 256, 9, -2, 2);
    okto_tensor *a = tu_tensor(ctx, 16, 16, ha), *b = tu_tensor(ctx, 16, 16, hb),
                *dy = tu_tensor(ctx, 16, 16, hdy), *da = tu_tensor(ctx, 16, 16, NULL);
    okto_graph *g[2];
    for (int f = 0; f < 2; f++) {
        TU_OK(okto_graph_create(ctx, &g[f]));
        okto__graph_set_fuse(g[f], f ? OKTO__FUSE_ALL : 0);
        TU_OK(okto_zip_backward(g[f], da, NULL, dy, a, b, OKTO_ZIP_MUL, 0));
        TU_OK(okto_scale(g[f], da, 2.0f));
        TU_OK(okto_graph_run(g[f]));
        TU_OK(okto_tensor_read(da, f ? got : want));
    }
    compare(got, want, 256, 1, "the fused gradient chain");
    for (int i = 0; i < 256; i++)
        if (want[i] != 2.0f * hdy[i] * hb[i])
            fail_msg("element %d: %g, want 2 dy b = %g", i, (double)want[i],
                     (double)(2.0f * hdy[i] * hb[i]));
    assert_int_equal(g[1]->tasks[0].into, 2); /* both tasks became one launch */
    assert_int_equal(g[1]->tasks[1].nfused, 2);
    for (int f = 0; f < 2; f++)
        okto_graph_destroy(g[f]);
    okto_tensor *all[] = {a, b, dy, da};
    for (int i = 0; i < 4; i++)
        okto_tensor_destroy(all[i]);
}

/* OKTO_FUSE: 0 turns the pass off for graphs that follow it; a list names rewrites */
static void fuse_switch(void **state)
{
    (void)state;
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    setenv("OKTO_FUSE", "0", 1);
    assert_int_equal(okto__graph_fuse(g), 0);
    setenv("OKTO_FUSE", "optim", 1);
    assert_int_equal(okto__graph_fuse(g), OKTO__FUSE_OPTIM);
    setenv("OKTO_FUSE", "gemm,optim", 1);
    assert_int_equal(okto__graph_fuse(g), OKTO__FUSE_GEMM | OKTO__FUSE_OPTIM);
    setenv("OKTO_FUSE", "ew", 1);
    assert_int_equal(okto__graph_fuse(g), OKTO__FUSE_EW);
    unsetenv("OKTO_FUSE");
    assert_int_equal(okto__graph_fuse(g), OKTO__FUSE_ALL);
    okto__graph_set_fuse(g, OKTO__FUSE_GEMM);
    assert_int_equal(okto__graph_fuse(g), OKTO__FUSE_GEMM);
    okto_graph_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fuse_switch),           cmocka_unit_test(edge_cases),
        cmocka_unit_test(random_small_products), cmocka_unit_test(random_clblast_products),
        cmocka_unit_test(adamw_steps),           cmocka_unit_test(random_elementwise),
        cmocka_unit_test(chain_read_outside),    cmocka_unit_test(gradient_chain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
