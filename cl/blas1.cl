/* cl/blas1.cl: fill, scale and axpy over a contiguous run of n floats. Every tensor argument
 * is a (buffer, offset in floats) pair; see okto__set_tensor_arg. */

__kernel void okto_fill(__global float *x, int xo, float value, int n)
{
    int i = get_global_id(0);
    if (i < n)
        x[xo + i] = value;
}

__kernel void okto_scale(__global float *x, int xo, float alpha, int n)
{
    int i = get_global_id(0);
    if (i < n)
        x[xo + i] *= alpha;
}

__kernel void okto_axpy(__global float *y, int yo, float alpha, __global const float *x, int xo,
                        int n)
{
    int i = get_global_id(0);
    if (i < n)
        y[yo + i] += alpha * x[xo + i];
}

/* An empty kernel: the coordinator's own cost per task is measured with it (okto-bench). */
__kernel void okto_nop(__global float *x, int xo)
{
}
