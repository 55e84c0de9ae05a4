/* tests/test_tensor.c: the tensor model. Creation (ranks 1-4, every dtype) and its refusals;
 * views (slice, reshape, permute, transpose, expand) and the elements they address, checked
 * through blocking transfers of strided views; the host conversions against the device's;
 * tensors over a caller's cl_mem; regions: the boxes of storage views cover (exact for slices,
 * permutations and broadcasts, never smaller for reshapes that wrap), which is what orders
 * tasks, tested on storages past 2^31 elements without allocating them. */
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

static void expect_einval(okto_status s, const char *s1, const char *s2)
{
    const char *msg = okto_last_error(NULL);
    if (s != OKTO_EINVAL)
        fail_msg("got %s, want OKTO_EINVAL (%s)", okto_status_str(s), msg);
    if (s1 && !strstr(msg, s1))
        fail_msg("message \"%s\" lacks \"%s\"", msg, s1);
    if (s2 && !strstr(msg, s2))
        fail_msg("message \"%s\" lacks \"%s\"", msg, s2);
}

static void create_and_query(void **state)
{
    (void)state;
    for (int dt = 0; dt < OKTO_DTYPE_COUNT; dt++)
        for (int rank = 1; rank <= OKTO_MAX_RANK; rank++) {
            size_t shape[4] = {2, 3, 5, 7};
            okto_tensor *t;
            TU_OK(okto_tensor_create(ctx, (okto_dtype)dt, rank, shape, &t));
            assert_int_equal(okto_tensor_rank(t), rank);
            assert_int_equal(okto_tensor_dtype(t), dt);
            size_t n = 1;
            for (int i = 0; i < rank; i++) {
                assert_int_equal(okto_tensor_dim(t, i), shape[i]);
                n *= shape[i];
            }
            int64_t stride = 1;
            for (int i = rank - 1; i >= 0; i--) {
                assert_int_equal(okto_tensor_stride(t, i), stride);
                stride *= (int64_t)shape[i];
            }
            assert_int_equal(okto_tensor_numel(t), n);
            assert_int_equal(okto_tensor_nbytes(t), n * okto_dtype_size((okto_dtype)dt));
            assert_int_equal(okto_tensor_cols(t), shape[rank - 1]);
            assert_int_equal(okto_tensor_rows(t), n / shape[rank - 1]);
            assert_true(okto_tensor_is_contiguous(t));
            assert_int_equal(okto_tensor_dim(t, rank), 0);
            char buf[64];
            okto_tensor_describe(t, buf, sizeof buf);
            assert_non_null(strstr(buf, okto_dtype_name((okto_dtype)dt)));
            TU_OK(okto_tensor_destroy(t));
        }
    assert_string_equal(okto_dtype_name(OKTO_BF16), "bf16");
    assert_int_equal(okto_dtype_size(OKTO_F16), 2);
    assert_string_equal(okto_dtype_name((okto_dtype)9), "unknown");
}

static void create_refused(void **state)
{
    (void)state;
    okto_tensor *t = (okto_tensor *)1;
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 0, (size_t[]){1}, &t), "rank 0", NULL);
    assert_null(t);
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 5, (size_t[]){1, 1, 1, 1, 1}, &t), "rank 5",
                  NULL);
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){3, 0}, &t), "f32[3,0]",
                  "zero dimension");
    expect_einval(okto_tensor_create(ctx, (okto_dtype)7, 1, (size_t[]){3}, &t), "dtype 7",
                  NULL);
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 3,
                                     (size_t[]){(size_t)1 << 40, (size_t)1 << 30, (size_t)1 << 30},
                                     &t),
                  "overflows", NULL);
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 2, (size_t[]){1, (size_t)1 << 33}, &t),
                  "dimension 1 is over 2^32", NULL);
    expect_einval(okto_tensor_create(ctx, OKTO_F32, 1, NULL, &t), "shape", NULL);
    expect_einval(okto_tensor_create(NULL, OKTO_F32, 1, (size_t[]){3}, &t), "ctx", NULL);
    /* larger than one allocation may be: ENOMEM with the sizes */
    assert_int_equal(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){(size_t)1 << 40}, &t),
                     OKTO_ENOMEM);
    assert_non_null(strstr(okto_last_error(NULL), "CL_DEVICE_MAX_MEM_ALLOC_SIZE"));
    assert_null(t);
}

/* Writes 0..n-1 into a contiguous tensor of shape, returns it. */
static okto_tensor *iota(int rank, const size_t *shape)
{
    okto_tensor *t;
    TU_OK(okto_tensor_create(ctx, OKTO_F32, rank, shape, &t));
    size_t n = okto_tensor_numel(t);
    float *h = malloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)i;
    TU_OK(okto_tensor_write(t, h));
    free(h);
    return t;
}

static float *read_view(const okto_tensor *v)
{
    float *h = malloc(okto_tensor_numel(v) * sizeof *h);
    TU_OK(okto_tensor_read(v, h));
    return h;
}

static void views_address_the_right_elements(void **state)
{
    (void)state;
    okto_tensor *t = iota(3, (size_t[]){2, 3, 4}), *v; /* element (a, b, c) = 12a + 4b + c */
    /* slice along dimension 2: columns 1..2 */
    TU_OK(okto_tensor_slice(t, 2, 1, 2, &v));
    assert_false(okto_tensor_is_contiguous(v));
    float *h = read_view(v);
    for (int a = 0, k = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 1; c < 3; c++, k++)
                assert_true(h[k] == (float)(12 * a + 4 * b + c));
    free(h);
    okto_tensor_destroy(v);
    /* permute (2, 0, 1): out(i, j, k) = t(j, k, i) */
    TU_OK(okto_tensor_permute(t, (int[]){2, 0, 1}, &v));
    assert_int_equal(okto_tensor_dim(v, 0), 4);
    h = read_view(v);
    for (int i = 0, k = 0; i < 4; i++)
        for (int j = 0; j < 2; j++)
            for (int l = 0; l < 3; l++, k++)
                assert_true(h[k] == (float)(12 * j + 4 * l + i));
    free(h);
    okto_tensor_destroy(v);
    /* reshape of contiguous data, then a transpose */
    okto_tensor *r, *tr;
    TU_OK(okto_tensor_reshape(t, 2, (size_t[]){6, 4}, &r));
    TU_OK(okto_tensor_transpose(r, 0, 1, &tr));
    h = read_view(tr);
    for (int i = 0, k = 0; i < 4; i++)
        for (int j = 0; j < 6; j++, k++)
            assert_true(h[k] == (float)(4 * j + i));
    free(h);
    /* a reshape of a strided view is refused: it needs okto_contiguous */
    expect_einval(okto_tensor_reshape(tr, 1, (size_t[]){24}, &v), "not contiguous",
                  "okto_contiguous");
    okto_tensor_destroy(tr);
    okto_tensor_destroy(r);
    /* expand: a row broadcast to 3 rows reads the same row three times */
    okto_tensor *row;
    TU_OK(okto_tensor_slice(t, 0, 1, 1, &row)); /* [1, 3, 4], elements 12.. */
    TU_OK(okto_tensor_expand(row, 3, (size_t[]){2, 3, 4}, &v));
    assert_int_equal(okto_tensor_stride(v, 0), 0);
    h = read_view(v);
    for (int k = 0; k < 24; k++)
        assert_true(h[k] == (float)(12 + k % 12));
    free(h);
    /* a broadcast view cannot be written (its elements alias) */
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    tu_expect_refused(ctx, g, okto_fill(g, v, 1.0f), OKTO_EINVAL, "broadcast view",
                      "stride 0", 0);
    okto_graph_destroy(g);
    okto_tensor_destroy(v);
    /* writing through a strided view changes exactly its elements */
    TU_OK(okto_tensor_slice(t, 1, 2, 1, &v)); /* [2, 1, 4]: (a, 2, c) */
    TU_OK(okto_tensor_write(v, (float[8]){-1, -2, -3, -4, -5, -6, -7, -8}));
    h = read_view(t);
    for (int a = 0, k = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++) {
                float want = b == 2 ? (float)-(1 + k++) : (float)(12 * a + 4 * b + c);
                assert_true(h[12 * a + 4 * b + c] == want);
            }
    free(h);
    okto_tensor_destroy(v);
    okto_tensor_destroy(row);
    okto_tensor_destroy(t);
}

static void views_refused(void **state)
{
    (void)state;
    okto_tensor *t = iota(2, (size_t[]){3, 4}), *v = (okto_tensor *)1;
    expect_einval(okto_tensor_slice(t, 2, 0, 1, &v), "dim 2", "f32[3,4]");
    assert_null(v);
    expect_einval(okto_tensor_slice(t, 1, 3, 2, &v), "[3, 5)", "f32[3,4]");
    expect_einval(okto_tensor_slice(t, 0, 0, 0, &v), "outside", NULL);
    expect_einval(okto_tensor_view(t, 2, 2, &v), "okto_tensor_view", "[2, 4)");
    expect_einval(okto_tensor_reshape(t, 2, (size_t[]){5, 2}, &v), "12 elements", "10");
    expect_einval(okto_tensor_permute(t, (int[]){0, 0}, &v), "not a permutation", NULL);
    expect_einval(okto_tensor_transpose(t, 0, 2, &v), "dimensions 0 and 2", NULL);
    expect_einval(okto_tensor_expand(t, 2, (size_t[]){3, 5}, &v), "does not broadcast",
                  "f32[3,5]");
    expect_einval(okto_tensor_expand(t, 1, (size_t[]){12}, &v), "lower rank", NULL);
    expect_einval(okto_tensor_slice(NULL, 0, 0, 1, &v), "t must not be NULL", NULL);
    okto_tensor_destroy(t);
}

static void host_conversions_match_the_device(void **state)
{
    (void)state;
    enum { N = 4096 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint64_t s = 5;
    for (int i = 0; i < N; i++) {
        /* every binade of half and bfloat16, subnormals, overflow to inf, both signs */
        float m = tu_uniform(&s, 1.0f, 2.0f);
        int e = (int)(tu_rand(&s) % 60) - 30;
        x[i] = ldexpf(m, e) * (i % 2 ? -1.0f : 1.0f);
    }
    x[0] = 0, x[1] = -0.0f, x[2] = 65504.0f, x[3] = 65520.0f, x[4] = 1e-8f, x[5] = INFINITY;
    x[6] = NAN, x[7] = 5.96e-8f;
    for (int dt = OKTO_F16; dt <= OKTO_BF16; dt++) {
        okto_tensor *a, *b;
        TU_OK(okto_tensor_create(ctx, OKTO_F32, 1, (size_t[]){N}, &a));
        TU_OK(okto_tensor_create(ctx, (okto_dtype)dt, 1, (size_t[]){N}, &b));
        TU_OK(okto_tensor_write(a, x));
        okto_graph *g;
        TU_OK(okto_graph_create(ctx, &g));
        TU_OK(okto_cast(g, b, a)); /* on the device: vstore_half_rte, or the bf16 rounding */
        TU_OK(okto_graph_run(g));
        uint16_t *h = malloc(N * sizeof *h);
        TU_OK(okto_tensor_read(b, h));
        for (int i = 0; i < N; i++) {
            uint16_t want = dt == OKTO_F16 ? okto_f32_to_f16(x[i]) : okto_f32_to_bf16(x[i]);
            int nan = isnan(x[i]);
            uint16_t em = dt == OKTO_F16 ? 0x7c00 : 0x7f80;
            if (nan ? ((h[i] & em) != em || !(h[i] & (em ^ 0xffff) & 0x7fff))
                    : h[i] != want)
                fail_msg("%s: %.9g became 0x%04x on the device, 0x%04x on the host",
                         okto_dtype_name((okto_dtype)dt), (double)x[i], h[i], want);
            float back = dt == OKTO_F16 ? okto_f16_to_f32(h[i]) : okto_bf16_to_f32(h[i]);
            if (!nan && !isinf(back))
                assert_true(fabsf(back - x[i]) <= fabsf(x[i]) * (dt == OKTO_F16 ? 4.9e-4f : 3.9e-3f) +
                                                       6e-8f);
        }
        /* and read_f32 converts the same way */
        TU_OK(okto_tensor_read_f32(b, y));
        for (int i = 0; i < N; i++)
            if (!isnan(x[i]))
                assert_true(y[i] == (dt == OKTO_F16 ? okto_f16_to_f32(h[i]) : okto_bf16_to_f32(h[i])));
        free(h);
        okto_graph_destroy(g);
        okto_tensor_destroy(a), okto_tensor_destroy(b);
    }
    free(x), free(y);
}

static void over_a_callers_buffer(void **state)
{
    (void)state;
    cl_int err;
    cl_mem mem = clCreateBuffer(okto_context_cl(ctx), CL_MEM_READ_WRITE, 64 * sizeof(float),
                                NULL, &err);
    assert_int_equal(err, CL_SUCCESS);
    okto_tensor *t;
    /* elements 10.. of the buffer as a [6, 8] f32 tensor */
    TU_OK(okto_tensor_from_cl(ctx, mem, 10, OKTO_F32, 2, (size_t[]){6, 8}, 0, &t));
    assert_int_equal(okto_tensor_offset(t), 10);
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, t, 3.0f));
    TU_OK(okto_graph_run(g));
    float h[64];
    assert_int_equal(clEnqueueReadBuffer(okto__ctx_xfer_queue(ctx), mem, CL_TRUE, 0, sizeof h, h, 0,
                                         NULL, NULL),
                     CL_SUCCESS);
    for (int i = 10; i < 58; i++)
        assert_true(h[i] == 3.0f);
    okto_graph_destroy(g);
    TU_OK(okto_tensor_destroy(t));
    /* not owned: the buffer outlives the tensor; its reference count is the caller's one */
    cl_uint refs = 0;
    clGetMemObjectInfo(mem, CL_MEM_REFERENCE_COUNT, sizeof refs, &refs, NULL);
    assert_int_equal(refs, 1);
    /* too small a buffer, another context's buffer: refused */
    expect_einval(okto_tensor_from_cl(ctx, mem, 60, OKTO_F32, 1, (size_t[]){8}, 0, &t),
                  "the buffer has 256", NULL);
    /* owned: okto releases the caller's reference with the storage */
    TU_OK(okto_tensor_from_cl(ctx, mem, 0, OKTO_F32, 1, (size_t[]){64}, 1, &t));
    TU_OK(okto_tensor_destroy(t));
}

/* Regions as boxes: exact for slices and permutations, covering for wrapped reshapes; the
 * arithmetic in 64 bits, on a storage past 2^31 elements that is never allocated. */
static void regions(void **state)
{
    (void)state;
    okto__storage st = {.shape = {(size_t)1 << 33, 4, 3, 1}, .numel = (size_t)3 << 35};
    okto_tensor t = {.st = &st, .dtype = OKTO_F32, .rank = 3,
                     .shape = {(size_t)1 << 33, 4, 3, 1}, .stride = {12, 3, 1, 0}};
    okto__region r;
    okto__region_of(&t, &r);
    assert_true(r.lo0 == 0 && r.hi0 == (uint64_t)1 << 33);
    assert_true(r.lo[0] == 0 && r.hi[0] == 4 && r.lo[1] == 0 && r.hi[1] == 3);
    /* rows [2^32 + 5, 2^32 + 7), column block 1..2 of dimension 1 */
    okto_tensor v;
    okto__view_slice(&t, 0, ((size_t)1 << 32) + 5, 2, &v);
    okto__view_slice(&v, 1, 1, 2, &v);
    okto__region_of(&v, &r);
    assert_true(r.lo0 == ((uint64_t)1 << 32) + 5 && r.hi0 == ((uint64_t)1 << 32) + 7);
    assert_true(r.lo[0] == 1 && r.hi[0] == 3 && r.lo[1] == 0 && r.hi[1] == 3);
    /* a neighbouring column block does not overlap it; a row range across both does */
    okto_tensor w, u;
    okto__view_slice(&t, 0, ((size_t)1 << 32) + 5, 2, &w);
    okto__view_slice(&w, 1, 3, 1, &w);
    okto__region r2, r3;
    okto__region_of(&w, &r2);
    assert_false(okto__region_overlap(&r, &r2));
    okto__view_slice(&t, 0, ((size_t)1 << 32) + 6, 1, &u);
    okto__region_of(&u, &r3);
    assert_true(okto__region_overlap(&r, &r3) && okto__region_overlap(&r2, &r3));
    /* a permuted view covers the same box as the original */
    okto_tensor p = v;
    p.shape[0] = v.shape[1], p.shape[1] = v.shape[0];
    p.stride[0] = v.stride[1], p.stride[1] = v.stride[0];
    okto__region rp;
    okto__region_of(&p, &rp);
    assert_memory_equal(&rp, &r, sizeof r);
    /* a reshape that wraps (rows of 5 over rows of 12 elements): a covering box, never less */
    okto_tensor wrap = {.st = &st, .dtype = OKTO_F32, .rank = 2, .shape = {3, 5},
                        .stride = {5, 1}, .offset = 7};
    okto__region_of(&wrap, &r);
    /* elements 7..21: rows 0..1 of the storage, covered whole */
    assert_true(r.lo0 == 0 && r.hi0 == 2 && r.lo[0] == 0 && r.hi[0] == 4 && r.hi[1] == 3);
    /* a broadcast (stride 0) covers only what it reads */
    okto_tensor bc = {.st = &st, .dtype = OKTO_F32, .rank = 2, .shape = {1000, 3},
                      .stride = {0, 1}, .offset = 12 * 9};
    okto__region_of(&bc, &r);
    assert_true(r.lo0 == 9 && r.hi0 == 10 && r.lo[0] == 0 && r.hi[0] == 1);
}

/* Tasks on disjoint column blocks of one tensor do not depend on each other; on overlapping
 * ones they do (through the dependency analysis, from real recordings). */
static void column_blocks_are_independent(void **state)
{
    (void)state;
    okto_tensor *t;
    TU_OK(okto_tensor_create_2d(ctx, 64, 12, &t));
    okto_tensor *a, *b, *c;
    TU_OK(okto_tensor_slice(t, 1, 0, 4, &a));
    TU_OK(okto_tensor_slice(t, 1, 4, 4, &b));
    TU_OK(okto_tensor_slice(t, 1, 2, 4, &c)); /* overlaps both */
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, a, 1.0f)); /* 0 */
    TU_OK(okto_fill(g, b, 2.0f)); /* 1: independent of 0 */
    TU_OK(okto_fill(g, c, 3.0f)); /* 2: after both */
    TU_OK(okto__deps_analyze(g));
    assert_int_equal(g->tasks[1].ndeps, 0);
    assert_int_equal(g->tasks[2].ndeps, 2);
    TU_OK(okto_graph_run(g));
    float *h = tu_read(t);
    for (int r = 0; r < 64; r++)
        for (int col = 0; col < 8; col++) { /* 8..11 were never written: undefined, maybe NaN */
            float want = col < 2 ? 1.0f : col < 6 ? 3.0f : 2.0f;
            assert_true(h[r * 12 + col] == want);
        }
    free(h);
    okto_graph_destroy(g);
    okto_tensor_destroy(a), okto_tensor_destroy(b), okto_tensor_destroy(c);
    okto_tensor_destroy(t);
}

/* Where the device can allocate it, a tensor past 2^31 elements: its far end is addressed
 * right (64-bit offsets through the kernels). Skipped, saying so, where it cannot (PoCL here
 * allows 1 GiB per allocation). */
static void past_two_to_the_31(void **state)
{
    (void)state;
    size_t n = ((size_t)1 << 31) + 1024;
    okto_tensor *t;
    okto_status s = okto_tensor_create(ctx, OKTO_F16, 1, (size_t[]){n}, &t);
    if (s == OKTO_ENOMEM) {
        print_message("skipped: the device allocates at most %zu bytes at once (%s)\n",
                      okto__ctx_device(ctx)->max_alloc, "CL_DEVICE_MAX_MEM_ALLOC_SIZE");
        return;
    }
    TU_OK(s);
    okto_tensor *tail, *head;
    TU_OK(okto_tensor_slice(t, 0, n - 100, 100, &tail));
    TU_OK(okto_tensor_slice(t, 0, 0, 100, &head));
    okto_graph *g;
    TU_OK(okto_graph_create(ctx, &g));
    TU_OK(okto_fill(g, head, 1.0f));
    TU_OK(okto_fill(g, tail, 2.0f));
    TU_OK(okto_graph_run(g));
    float h[100];
    TU_OK(okto_tensor_read_f32(tail, h));
    for (int i = 0; i < 100; i++)
        assert_true(h[i] == 2.0f);
    TU_OK(okto_tensor_read_f32(head, h));
    for (int i = 0; i < 100; i++)
        assert_true(h[i] == 1.0f);
    okto_graph_destroy(g);
    okto_tensor_destroy(tail), okto_tensor_destroy(head), okto_tensor_destroy(t);
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_and_query),
        cmocka_unit_test(create_refused),
        cmocka_unit_test(views_address_the_right_elements),
        cmocka_unit_test(views_refused),
        cmocka_unit_test(host_conversions_match_the_device),
        cmocka_unit_test(over_a_callers_buffer),
        cmocka_unit_test(regions),
        cmocka_unit_test(column_blocks_are_independent),
        cmocka_unit_test(past_two_to_the_31),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
