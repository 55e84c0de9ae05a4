/* tests/ref/ref_dropout.h: reference for cl/dropout.cl: Philox-4x32-10 on the host (as
 * okto_philox in cl/common.h) and dropout over n contiguous doubles. p is the drop
 * probability (a float, as the kernel takes it). */
#ifndef OKTO_REF_DROPOUT_H
#define OKTO_REF_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

/* Philox-4x32-10 (Salmon et al. 2011, Random123's philox4x32_R(10, ...)). */
void ref_philox(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);
/* 1 when element i is kept: word i % 4 of philox((seed0, seed1), (i / 4, (i / 4) >> 32,
 * stream, 0)), its top 24 bits as a float in [0, 1), >= p. p <= 0 keeps everything. */
int ref_dropout_keep(uint32_t seed0, uint32_t seed1, uint32_t stream, uint64_t i, float p);
/* y = keep ? x / (1 - p) : 0 (p >= 1: 0; p <= 0: x). The backward is the same map of dy. */
void ref_dropout(const double *x, double *y, size_t n, float p, uint32_t seed0, uint32_t seed1,
                 uint32_t stream);

#endif
