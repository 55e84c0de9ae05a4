/* tests/ref/ref_dropout.c: Philox-4x32-10 and dropout on the host. */
#include "ref_dropout.h"

void ref_philox(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1,
                 n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

int ref_dropout_keep(uint32_t seed0, uint32_t seed1, uint32_t stream, uint64_t i, float p)
{
    if (!(p > 0.0f))
        return 1;
    uint64_t q = i / 4;
    uint32_t key[2] = {seed0, seed1}, ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), stream, 0}, r[4];
    ref_philox(key, ctr, r);
    float u = (float)(r[i % 4] >> 8) * (1.0f / 16777216.0f);
    return u >= p;
}

void ref_dropout(const double *x, double *y, size_t n, float p, uint32_t seed0, uint32_t seed1,
                 uint32_t stream)
{
    double scale = p > 0.0f ? (p < 1.0f ? 1.0 / (1.0 - (double)p) : 0.0) : 1.0;
    for (size_t i = 0; i < n; i++)
        y[i] = ref_dropout_keep(seed0, seed1, stream, i, p) ? x[i] * scale : 0.0;
}
