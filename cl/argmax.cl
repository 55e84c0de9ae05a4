/* cl/argmax.cl: argmax over the last dimension of a [rows, cols] row-major block (OKTO_T,
 * contiguous from its offset) into int32 out[rows]: the index of the row's largest element, the
 * FIRST such index on ties.
 *
 * NaN: a NaN is larger than every number (as numpy.argmax and torch.argmax), so a row holding a
 * NaN gives the index of its first NaN. -inf and +inf order as usual; a row of all -inf gives 0.
 * In the i32 program values are compared as floats (exact below 2^24 in magnitude).
 *
 * Launch: row kernel, 1-D, a work-group per row, looping over rows by group
 * (r = group, group + ngroups, ...), the row striped over the L items; global = L * ngroups,
 * local = L, any L from 1 to OKTO_ARGMAX_MAXL (256), any ngroups. Each item keeps its best
 * (value, index), then a tree in local memory keeps the better of each pair; "better" is a
 * total order (value, then smaller index), so the answer does not depend on L. Needs
 * cols >= 1 and cols < 2^31. */

#define OKTO_ARGMAX_MAXL 256

/* (va, ia) comes before (vb, ib): larger value, NaN largest, then the smaller index. */
inline int okto_argmax_better(float va, int ia, float vb, int ib)
{
    int na = isnan(va), nb = isnan(vb);
    if (na || nb)
        return na && nb ? ia < ib : na;
    return va != vb ? va > vb : ia < ib;
}

__kernel void okto_argmax_rows(__global const OKTO_T *x, ulong x_off, __global int *out,
                               ulong out_off, ulong rows, ulong cols)
{
    __local float bv[OKTO_ARGMAX_MAXL];
    __local int bi[OKTO_ARGMAX_MAXL];
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    for (ulong r = get_group_id(0); r < rows; r += get_num_groups(0)) {
        ulong xr = x_off + r * cols;
        float v = -INFINITY;
        int i = INT_MAX; /* no element yet: loses to any (-inf, index) */
        for (ulong c = lid; c < cols; c += l) {
            float y = OKTO_LD(x, xr + c);
            if (okto_argmax_better(y, (int)c, v, i)) {
                v = y;
                i = (int)c;
            }
        }
        bv[lid] = v;
        bi[lid] = i;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int s = okto_pow2ceil(l) >> 1; s > 0; s >>= 1) {
            if (lid < s && lid + s < l &&
                okto_argmax_better(bv[lid + s], bi[lid + s], bv[lid], bi[lid])) {
                bv[lid] = bv[lid + s];
                bi[lid] = bi[lid + s];
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid == 0)
            out[out_off + r] = bi[0];
        barrier(CLK_LOCAL_MEM_FENCE); /* bv, bi are reused by the next row */
    }
}
