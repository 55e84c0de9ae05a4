/* tools/train/rng.c: splitmix64 and what is built on it. */
#include "rng.h"

void otu_rng_seed(otu_rng *r, uint64_t seed) { r->s = seed; }

uint64_t otu_rng_next(otu_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double otu_rng_uniform(otu_rng *r) { return (double)(otu_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t otu_rng_below(otu_rng *r, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Values below 2^64 mod n would make the low residues likelier; redraw them. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = otu_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

void otu_shuffle(otu_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)otu_rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
