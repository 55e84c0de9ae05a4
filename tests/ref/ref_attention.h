/* tests/ref/ref_attention.h: scaled dot-product attention in double, the reference for
 * cl/attention.cl.
 *
 * Contiguous tensors: q [B, H, Tq, D], k and v [B, H, Tk, D], o and dout [B, H, Tq, D],
 * lse [B, H, Tq]. o = softmax(scale * q k^T + mask) v by rows, lse = log sum_j exp(scale q.k_j)
 * over the visible keys. causal: key j is visible to query i iff j <= i + (Tk - Tq) (the ends
 * aligned; for Tq == Tk this is j <= i, PyTorch's is_causal). A query that sees no key (causal
 * with Tq > Tk) gets o = 0, lse = -inf and no gradient. */
#ifndef OKTO_REF_ATTENTION_H
#define OKTO_REF_ATTENTION_H

void ref_attention_forward(const double *q, const double *k, const double *v, double *o,
                           double *lse, int B, int H, int Tq, int Tk, int D, double scale,
                           int causal);

/* dq, dk, dv (shaped as q, k, v) are overwritten with the gradients of sum(dout * o). */
void ref_attention_backward(const double *q, const double *k, const double *v, const double *dout,
                            double *dq, double *dk, double *dv, int B, int H, int Tq, int Tk, int D,
                            double scale, int causal);

#endif
