/* tools/train/rng.h: the seeded random stream every shuffle, split and batch uses, so a seed
 * gives the same run on every machine, compiler and libc (rand() and random() differ).
 *
 * splitmix64 (Steele, Lea and Flood; the seeder of xoshiro): 64 bits of state, all integer
 * arithmetic, passes BigCrush; good enough for shuffling and sampling, not for cryptography.
 * An otu_rng is a plain value: copy it to fork a stream, one per thread. */
#ifndef OTU_RNG_H
#define OTU_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct otu_rng {
    uint64_t s;
} otu_rng;

void otu_rng_seed(otu_rng *r, uint64_t seed);
uint64_t otu_rng_next(otu_rng *r);
/* [0, 1) from the top 53 bits: exact, the same double everywhere. */
double otu_rng_uniform(otu_rng *r);
/* Uniform in [0, n) without modulo bias (rejection); n = 0 returns 0. */
uint64_t otu_rng_below(otu_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void otu_shuffle(otu_rng *r, size_t *idx, size_t n);

#endif
