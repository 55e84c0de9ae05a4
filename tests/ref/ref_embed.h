/* tests/ref/ref_embed.h: double-precision reference for cl/embed.cl. table and dtable are
 * [vocab, dim], out and dout [ntok, dim] row-major, ids [ntok]. */
#ifndef OKTO_REF_EMBED_H
#define OKTO_REF_EMBED_H

#include <stddef.h>

/* out[t] = table[ids[t]], a zero row for an id outside [0, vocab). */
void ref_embed_fwd(const double *table, const int *ids, size_t ntok, size_t vocab, size_t dim,
                   double *out);
/* dtable[v] = sum over t with ids[t] == v (in increasing t) of dout[t]; tokens whose id is
 * padding_idx or outside the table add nothing. Overwrites dtable. */
void ref_embed_bwd(const double *dout, const int *ids, size_t ntok, size_t vocab, size_t dim,
                   int padding_idx, double *dtable);
/* The stable counting sort okto_embed_bwd_sort computes: start [vocab + 1], order [start[vocab]]. */
void ref_embed_sort(const int *ids, size_t ntok, size_t vocab, int padding_idx, int *start,
                    int *order);

#endif
