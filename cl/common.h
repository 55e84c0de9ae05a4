/* cl/common.h: what every okto program shares, prepended to each cl/ file when it is built.
 *
 * Storage types. A tensor's elements are stored as its dtype and computed in float:
 *   f32  float;
 *   f16  half, read and written with vload_half / vstore_half_rte (OpenCL 1.2 core: they need
 *        no cl_khr_fp16, so every device, PoCL included, takes them);
 *   bf16 ushort, the top 16 bits of a float (stored with round-to-nearest-even);
 *   i32  int.
 * A program that is built for one dtype gets -DOKTO_DT=<OKTO_DT_*> from the host (lib/device.c)
 * and uses OKTO_T, OKTO_LD(p, i) and OKTO_ST(p, i, v); -DOKTO_DT2 gives OKTO_T2, OKTO_LD2 and
 * OKTO_ST2 for a second dtype, and the typed macros (OKTO_LD_F16 ...) are always there.
 *
 * Indices and offsets are 64-bit: tensors may hold more than 2^31 elements on devices that can
 * allocate them. Every tensor argument is (buffer, ulong offset in elements).
 *
 * Constants that C and OpenCL C share come from the host as -D options (the op files in lib/ops pass them
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
#ifndef OKTO_DT2
#define OKTO_DT2 OKTO_DT
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

/* A second dtype for kernels whose output differs from their input (-DOKTO_DT2). */
#if OKTO_DT2 == OKTO_DT_F32
#define OKTO_T2 float
#define OKTO_LD2 OKTO_LD_F32
#define OKTO_ST2 OKTO_ST_F32
#elif OKTO_DT2 == OKTO_DT_F16
#define OKTO_T2 half
#define OKTO_LD2 OKTO_LD_F16
#define OKTO_ST2 OKTO_ST_F16
#elif OKTO_DT2 == OKTO_DT_BF16
#define OKTO_T2 ushort
#define OKTO_LD2 OKTO_LD_BF16
#define OKTO_ST2 OKTO_ST_BF16
#elif OKTO_DT2 == OKTO_DT_I32
#define OKTO_T2 int
#define OKTO_LD2 OKTO_LD_I32
#define OKTO_ST2 OKTO_ST_I32
#endif

/* Four consecutive elements from p + 4 q, as a float4 (any alignment), and their store. */
inline float4 okto_bf16x4(ushort4 h) { return as_float4(convert_uint4(h) << 16); }
#if OKTO_DT == OKTO_DT_F32
#define OKTO_LD4(q, p) vload4((q), (p))
#elif OKTO_DT == OKTO_DT_F16
#define OKTO_LD4(q, p) vload_half4((q), (p))
#elif OKTO_DT == OKTO_DT_BF16
#define OKTO_LD4(q, p) okto_bf16x4(vload4((q), (p)))
#elif OKTO_DT == OKTO_DT_I32
#define OKTO_LD4(q, p) convert_float4(vload4((q), (p)))
#endif
#if OKTO_DT2 == OKTO_DT_F32
#define OKTO_ST4_2(v, q, p) vstore4((v), (q), (p))
#elif OKTO_DT2 == OKTO_DT_F16
#define OKTO_ST4_2(v, q, p) vstore_half4_rte((v), (q), (p))
#elif OKTO_DT2 == OKTO_DT_I32
#define OKTO_ST4_2(v, q, p) vstore4(convert_int4(v), (q), (p))
#else
#define OKTO_ST4_2(v, q, p)                                                                        \
    do {                                                                                           \
        float4 v_ = (v);                                                                           \
        OKTO_ST2((p), 4 * (q), v_.x);                                                              \
        OKTO_ST2((p), 4 * (q) + 1, v_.y);                                                          \
        OKTO_ST2((p), 4 * (q) + 2, v_.z);                                                          \
        OKTO_ST2((p), 4 * (q) + 3, v_.w);                                                          \
    } while (0)
#endif

#ifndef OKTO_WG
#define OKTO_WG 64
#endif

/* Launch shapes. One work item per element, a bounds check, no loop over elements: a
 * grid-stride loop ran 4x to 100x slower on PoCL than one item per element (1M floats: 36 ms
 * against 0.36 ms), and a 4-D index decomposition with 64-bit div/mod per element 25x slower
 * than a 2-D NDRange without it. The host pads grids (on CPUs one grid width per kernel and
 * local size: lib/device.c, "launch geometry"), so every kernel checks its bounds. Loops inside
 * a work item are fine where each item walks contiguous memory, and in work-group-per-row
 * kernels whose items stride over a row by the local size while the group loops over rows. */

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

/* Activations and their derivatives, for the generated elementwise kernels (lib/ops/
 * elementwise.c names them in its rows' expressions). GELU in its exact form is
 * x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); its tanh approximation is the one GPT-2 and BERT use. */
inline float okto_sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }
inline float okto_gelu_tanh(float x)
{
    return 0.5f * x * (1.0f + tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}
inline float okto_gelu_tanh_grad(float x)
{
    float t = tanh(0.7978845608028654f * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + t) +
           0.5f * x * (1.0f - t * t) * 0.7978845608028654f * (1.0f + 0.134145f * x * x);
}
inline float okto_gelu_erf(float x) { return 0.5f * x * (1.0f + erf(x * 0.7071067811865476f)); }
inline float okto_gelu_erf_grad(float x)
{
    return 0.5f * (1.0f + erf(x * 0.7071067811865476f)) +
           x * 0.3989422804014327f * exp(-0.5f * x * x);
}
inline float okto_silu(float x) { return x / (1.0f + exp(-x)); }
inline float okto_silu_grad(float x)
{
    float s = okto_sigmoid(x);
    return s * (1.0f + x * (1.0f - s));
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
