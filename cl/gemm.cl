/* cl/gemm.cl: okto's own GEMM for small shapes, where CLBlast's host cost per call (~43 us on
 * PoCL, more than the math itself below ~64-cubed) dominates, and the split-K aggregation.
 *
 * Row-major throughout. C[i, j] = alpha * sum_k op(A)[i, k] op(B)[k, j] + beta * C[i, j];
 * op(A)[i, k] is A[i * lda + k], or A[k * lda + i] when ta; likewise B. A work item computes
 * elements of C strided over a small fixed grid (lib/ops/matmul.c), dimension 0 along C's
 * columns so neighbouring items read neighbouring B and C. The products are summed in k order,
 * a fixed order whatever the lane. */
__kernel void okto_gemm_small(ulong m, ulong n, ulong k, float alpha,
                              __global const float *a, ulong ao, ulong lda, int ta,
                              __global const float *b, ulong bo, ulong ldb, int tb,
                              float beta, __global float *c, ulong co, ulong ldc)
{
    size_t as_i = ta ? 1 : lda, as_k = ta ? lda : 1; /* strides of op(A) along i and k */
    size_t bs_k = tb ? 1 : ldb, bs_j = tb ? ldb : 1;
    for (size_t i = get_global_id(1); i < m; i += get_global_size(1))
        for (size_t j = get_global_id(0); j < n; j += get_global_size(0)) {
            __global const float *pa = a + ao + i * as_i;
            __global const float *pb = b + bo + j * bs_j;
            float acc = 0.0f;
            for (size_t p = 0; p < k; p++)
                acc = fma(pa[p * as_k], pb[p * bs_k], acc);
            __global float *pc = c + co + i * ldc + j;
            *pc = beta == 0.0f ? alpha * acc : alpha * acc + beta * *pc;
        }
}

/* Batched: the same for nb products. Product t is (t0, t1) = (t / n1, t % n1) and each operand's
 * matrix t starts at its offset + t0 s0 + t1 s1 (a broadcast operand has stride 0 there). The
 * grid is fixed (lib/ops/matmul.c): a work-group of dimensions 0 and 1 covers one product at a
 * time, dimension 2 strides over the products. */
__kernel void okto_gemm_small_batched(ulong m, ulong n, ulong k, float alpha,
                                      __global const float *a, ulong ao, ulong lda, int ta,
                                      long sa0, long sa1, __global const float *b, ulong bo,
                                      ulong ldb, int tb, long sb0, long sb1, float beta,
                                      __global float *c, ulong co, ulong ldc, long sc0, long sc1,
                                      ulong n1, ulong nb)
{
    size_t as_i = ta ? 1 : lda, as_k = ta ? lda : 1;
    size_t bs_k = tb ? 1 : ldb, bs_j = tb ? ldb : 1;
    for (size_t t = get_global_id(2); t < nb; t += get_global_size(2)) {
        const size_t t0 = t / n1, t1 = t - t0 * n1;
        __global const float *pa0 = a + (long)ao + (long)t0 * sa0 + (long)t1 * sa1;
        __global const float *pb0 = b + (long)bo + (long)t0 * sb0 + (long)t1 * sb1;
        __global float *pc0 = c + (long)co + (long)t0 * sc0 + (long)t1 * sc1;
        for (size_t i = get_global_id(1); i < m; i += get_global_size(1))
            for (size_t j = get_global_id(0); j < n; j += get_global_size(0)) {
                __global const float *pa = pa0 + i * as_i, *pb = pb0 + j * bs_j;
                float acc = 0.0f;
                for (size_t p = 0; p < k; p++)
                    acc = fma(pa[p * as_k], pb[p * bs_k], acc);
                __global float *pc = pc0 + i * ldc + j;
                *pc = beta == 0.0f ? alpha * acc : alpha * acc + beta * *pc;
            }
    }
}

/* Split-K: c = alpha * (p[0] + p[1] + ...) + beta * c over n contiguous floats; the parts are
 * summed in part order so every policy gets the same bits. beta == 0 never reads c. */
__kernel void okto_gemm_splitk_sum(__global float *c, ulong co, __global const float *p,
                                   ulong po, int parts, ulong n, float alpha, float beta)
{
    size_t i = get_global_id(0);
    if (i >= n)
        return;
    float s = 0.0f;
    for (int q = 0; q < parts; q++)
        s += p[po + (size_t)q * n + i];
    c[co + i] = beta == 0.0f ? alpha * s : alpha * s + beta * c[co + i];
}

/* Batched, register-blocked (lib/engine/optimize.c's batches of small products): nb products of
 * row-major m x k times k x n (no transposes), m and n multiples of 4. A work item computes a 4 x
 * 4 block of one product in float4 registers, dimension 0 over C's column blocks, 1 over its row
 * blocks, 2 over the products (product t's operands at offset + t * stride). Each element is
 * summed in k order with fma, then alpha * acc (+ beta * c), as okto_gemm_small: the same bits. */
__kernel void okto_gemm_batched_4x4(ulong m, ulong n, ulong k, float alpha,
                                    __global const float *a, ulong ao, ulong lda, long sa,
                                    __global const float *b, ulong bo, ulong ldb, long sb,
                                    float beta, __global float *c, ulong co, ulong ldc, long sc,
                                    ulong nb)
{
    const size_t jb = get_global_id(0), ib = get_global_id(1), t = get_global_id(2);
    if (t >= nb || 4 * jb >= n || 4 * ib >= m)
        return;
    __global const float *pa = a + (long)ao + (long)t * sa + 4 * ib * lda;
    __global const float *pb = b + (long)bo + (long)t * sb + 4 * jb;
    float4 c0 = (float4)(0.0f), c1 = (float4)(0.0f), c2 = (float4)(0.0f), c3 = (float4)(0.0f);
    for (size_t p = 0; p < k; p++) {
        const float4 bv = vload4(0, pb + p * ldb);
        c0 = fma((float4)(pa[p]), bv, c0);
        c1 = fma((float4)(pa[lda + p]), bv, c1);
        c2 = fma((float4)(pa[2 * lda + p]), bv, c2);
        c3 = fma((float4)(pa[3 * lda + p]), bv, c3);
    }
    __global float *pc = c + (long)co + (long)t * sc + 4 * ib * ldc + 4 * jb;
    if (beta == 0.0f) {
        vstore4(alpha * c0, 0, pc);
        vstore4(alpha * c1, 0, pc + ldc);
        vstore4(alpha * c2, 0, pc + 2 * ldc);
        vstore4(alpha * c3, 0, pc + 3 * ldc);
    } else {
        vstore4(alpha * c0 + beta * vload4(0, pc), 0, pc);
        vstore4(alpha * c1 + beta * vload4(0, pc + ldc), 0, pc + ldc);
        vstore4(alpha * c2 + beta * vload4(0, pc + 2 * ldc), 0, pc + 2 * ldc);
        vstore4(alpha * c3 + beta * vload4(0, pc + 3 * ldc), 0, pc + 3 * ldc);
    }
}

/* The same with 4 x 8 blocks in float8 (n a multiple of 8): twice the reuse of each A load. */
__kernel void okto_gemm_batched_4x8(ulong m, ulong n, ulong k, float alpha,
                                    __global const float *a, ulong ao, ulong lda, long sa,
                                    __global const float *b, ulong bo, ulong ldb, long sb,
                                    float beta, __global float *c, ulong co, ulong ldc, long sc,
                                    ulong nb)
{
    const size_t jb = get_global_id(0), ib = get_global_id(1), t = get_global_id(2);
    if (t >= nb || 8 * jb >= n || 4 * ib >= m)
        return;
    __global const float *pa = a + (long)ao + (long)t * sa + 4 * ib * lda;
    __global const float *pb = b + (long)bo + (long)t * sb + 8 * jb;
    float8 c0 = (float8)(0.0f), c1 = (float8)(0.0f), c2 = (float8)(0.0f), c3 = (float8)(0.0f);
    for (size_t p = 0; p < k; p++) {
        const float8 bv = vload8(0, pb + p * ldb);
        c0 = fma((float8)(pa[p]), bv, c0);
        c1 = fma((float8)(pa[lda + p]), bv, c1);
        c2 = fma((float8)(pa[2 * lda + p]), bv, c2);
        c3 = fma((float8)(pa[3 * lda + p]), bv, c3);
    }
    __global float *pc = c + (long)co + (long)t * sc + 4 * ib * ldc + 8 * jb;
    if (beta == 0.0f) {
        vstore8(alpha * c0, 0, pc);
        vstore8(alpha * c1, 0, pc + ldc);
        vstore8(alpha * c2, 0, pc + 2 * ldc);
        vstore8(alpha * c3, 0, pc + 3 * ldc);
    } else {
        vstore8(alpha * c0 + beta * vload8(0, pc), 0, pc);
        vstore8(alpha * c1 + beta * vload8(0, pc + ldc), 0, pc + ldc);
        vstore8(alpha * c2 + beta * vload8(0, pc + 2 * ldc), 0, pc + 2 * ldc);
        vstore8(alpha * c3 + beta * vload8(0, pc + 3 * ldc), 0, pc + 3 * ldc);
    }
}
