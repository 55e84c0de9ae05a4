/* cl/common.h: what every okto program shares, prepended to each cl/ file when it is built.
 *
 * Storage types. A tensor's elements are stored as its dtype and computed in float:
 *   f32  float;
 *   f16  half, read and written with vload_half / vstore_half_rte (OpenCL 1.2 core: they need
 *        no cl_khr_fp16, so every device, PoCL included, takes them);
 *   bf16 ushort, the top 16 bits of a float (stored with round-to-nearest-even);
 *   i32  int.
 * A program that is built for one dtype gets -DOKTO_DT=<OKTO_DT_*> from the host (lib/device.c)
 * and uses OKTO_T, OKTO_LD(p, i) and OKTO_ST(p, i, v); a kernel with operands of several dtypes
 * uses the typed macros (OKTO_LD_F16 ...) directly.
 *
 * Indices and offsets are 64-bit: tensors may hold more than 2^31 elements on devices that can
 * allocate them. Every tensor argument is (buffer, ulong offset in elements).
 *
 * Constants that C and OpenCL C share come from the host as -D options (lib/ops/*.c pass them
 * next to the dtype), never copied by hand: OKTO_WG (the work-group size of 1-D kernels on GPUs)
 * is one. */
#ifndef OKTO_CL_COMMON_H
#define OKTO_CL_COMMON_H

#define OKTO_DT_F32 0
#define OKTO_DT_F16 1
#define OKTO_DT_BF16 2
#define OKTO_DT_I32 3

inline float okto_bf16_to_f32(ushort h) { return as_float((uint)h << 16); }

inline ushort okto_f32_to_bf16(float f)
{
    uint u = as_uint(f);
    if (isnan(f))
        return (ushort)((u >> 16) | 0x40u); /* stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);        /* round to nearest, ties to even */
    return (ushort)(u >> 16);
}

#define OKTO_LD_F32(p, i) ((p)[i])
#define OKTO_ST_F32(p, i, v) ((p)[i] = (v))
#define OKTO_LD_F16(p, i) vload_half((i), (p))
#define OKTO_ST_F16(p, i, v) vstore_half_rte((v), (i), (p))
#define OKTO_LD_BF16(p, i) okto_bf16_to_f32((p)[i])
#define OKTO_ST_BF16(p, i, v) ((p)[i] = okto_f32_to_bf16(v))
#define OKTO_LD_I32(p, i) ((float)(p)[i])
#define OKTO_ST_I32(p, i, v) ((p)[i] = (int)(v))

#ifndef OKTO_DT
#define OKTO_DT OKTO_DT_F32
#endif

#if OKTO_DT == OKTO_DT_F32
#define OKTO_T float
#define OKTO_LD OKTO_LD_F32
#define OKTO_ST OKTO_ST_F32
#elif OKTO_DT == OKTO_DT_F16
#define OKTO_T half
#define OKTO_LD OKTO_LD_F16
#define OKTO_ST OKTO_ST_F16
#elif OKTO_DT == OKTO_DT_BF16
#define OKTO_T ushort
#define OKTO_LD OKTO_LD_BF16
#define OKTO_ST OKTO_ST_BF16
#elif OKTO_DT == OKTO_DT_I32
#define OKTO_T int
#define OKTO_LD OKTO_LD_I32
#define OKTO_ST OKTO_ST_I32
#endif

#ifndef OKTO_WG
#define OKTO_WG 64
#endif

/* Grid-stride loop over n items. okto launches every kernel with one fixed grid per (kernel,
 * local size) on CPUs (PoCL 3.1 aborts when one kernel and local size run at two grid widths at
 * once: lib/device.c, "launch geometry"), so a kernel must not assume one item per work item. */
#define OKTO_FOR(i, n) for (size_t i = get_global_id(0); i < (size_t)(n); i += get_global_size(0))

/* Tree reductions over a work-group's local array v[0 .. l), l any size up to the array's;
 * every item of the group must call them (barriers). */
inline int okto_pow2ceil(int n)
{
    int p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

inline float okto_tree_sum(__local float *v, int lid, int l)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = okto_pow2ceil(l) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < l)
            v[lid] += v[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = v[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* v is reused next: everyone has read v[0] */
    return r;
}

inline float okto_tree_max(__local float *v, int lid, int l)
{
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = okto_pow2ceil(l) >> 1; s > 0; s >>= 1) {
        if (lid < s && lid + s < l)
            v[lid] = fmax(v[lid], v[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = v[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Counter-based random numbers (Philox-4x32-10, Salmon et al. 2011): the same (seed, counter)
 * gives the same bits on every device and in every order, which is what makes dropout's mask
 * reproducible from a seed and identical in the forward and the backward pass. */
inline uint4 okto_philox(uint2 key, uint4 ctr)
{
    for (int r = 0; r < 10; r++) {
        uint lo0 = 0xD2511F53u * ctr.x, hi0 = mul_hi(0xD2511F53u, ctr.x);
        uint lo1 = 0xCD9E8D57u * ctr.z, hi1 = mul_hi(0xCD9E8D57u, ctr.z);
        ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
        key += (uint2)(0x9E3779B9u, 0xBB67AE85u);
    }
    return ctr;
}

/* A float in [0, 1) from 24 random bits. */
inline float okto_u01(uint r) { return (float)(r >> 8) * (1.0f / 16777216.0f); }

#endif
