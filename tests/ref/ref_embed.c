/* tests/ref/ref_embed.c: embedding gather and its scatter-add gradient, sequentially. */
#include "ref_embed.h"

#include <stdlib.h>

static int takes_part(int id, size_t vocab, int padding_idx)
{
    return id >= 0 && (size_t)id < vocab && id != padding_idx;
}

void ref_embed_fwd(const double *table, const int *ids, size_t ntok, size_t vocab, size_t dim,
                   double *out)
{
    for (size_t t = 0; t < ntok; t++)
        for (size_t d = 0; d < dim; d++)
            out[t * dim + d] =
                ids[t] >= 0 && (size_t)ids[t] < vocab ? table[(size_t)ids[t] * dim + d] : 0.0;
}

void ref_embed_bwd(const double *dout, const int *ids, size_t ntok, size_t vocab, size_t dim,
                   int padding_idx, double *dtable)
{
    for (size_t i = 0; i < vocab * dim; i++)
        dtable[i] = 0;
    for (size_t t = 0; t < ntok; t++)
        if (takes_part(ids[t], vocab, padding_idx))
            for (size_t d = 0; d < dim; d++)
                dtable[(size_t)ids[t] * dim + d] += dout[t * dim + d];
}

void ref_embed_sort(const int *ids, size_t ntok, size_t vocab, int padding_idx, int *start,
                    int *order)
{
    int *cur = calloc(vocab + 1, sizeof *cur);
    for (size_t v = 0; v <= vocab; v++)
        start[v] = 0;
    for (size_t t = 0; t < ntok; t++)
        if (takes_part(ids[t], vocab, padding_idx))
            start[ids[t] + 1]++;
    for (size_t v = 0; v < vocab; v++)
        start[v + 1] += start[v];
    for (size_t v = 0; v < vocab; v++)
        cur[v] = start[v];
    for (size_t t = 0; t < ntok; t++)
        if (takes_part(ids[t], vocab, padding_idx))
            order[cur[ids[t]]++] = (int)t;
    free(cur);
}
