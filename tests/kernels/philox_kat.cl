/* tests/kernels/philox_kat.cl: exposes cl/common.h's okto_philox to check_dropout, which
 * compares it with the Philox-4x32-10 known-answer vectors and the host reference. One item
 * per (key, counter) row: in[6 i ..] = key.x, key.y, ctr.x .. ctr.w; out[4 i ..] = the result. */
__kernel void philox_kat(__global const uint *in, __global uint *out, uint n)
{
    uint i = get_global_id(0);
    if (i >= n)
        return;
    __global const uint *a = in + 6 * i;
    uint4 r = okto_philox((uint2)(a[0], a[1]), (uint4)(a[2], a[3], a[4], a[5]));
    vstore4(r, i, out);
}
