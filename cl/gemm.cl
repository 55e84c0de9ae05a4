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
