/* tests/ref/ref_conv.h: conv2d (groups = 1) in double, the reference for cl/conv.cl.
 *
 * x [N, C, H, W], w [Cout, C, KH, KW], b [Cout], y and dy [N, Cout, OH, OW], all contiguous;
 * stride (sh, sw), zero padding (ph, pw), dilation (dh, dw):
 *   y[n, o, oh, ow] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] x[n, c, oh sh - ph + kh dh,
 *                                                              ow sw - pw + kw dw]
 * (taps outside x read 0). The column matrix of im2col: row r = (c KH + kh) KW + kw, column
 * (n, p = oh OW + ow), element cols[r * ld + n * nstride + p]. */
#ifndef OKTO_REF_CONV_H
#define OKTO_REF_CONV_H

#include <stddef.h>

typedef struct ref_conv_geom {
    int N, C, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW;
} ref_conv_geom;

/* (in + 2 pad - dil (k - 1) - 1) / stride + 1, floored; < 1 when the kernel is larger than the
 * padded input (a geometry the host refuses) */
int ref_conv_out(int in, int k, int stride, int pad, int dil);

void ref_conv2d_forward(const ref_conv_geom *g, const double *x, const double *w, const double *b,
                        double *y);
/* gradients of sum(dy * y), overwritten: dx like x, dw like w, db like b */
void ref_conv2d_backward(const ref_conv_geom *g, const double *x, const double *w, const double *dy,
                         double *dx, double *dw, double *db);

/* cols (K = C KH KW rows, N OH OW columns, layout above) from x, overwritten */
void ref_im2col(const ref_conv_geom *g, const double *x, double *cols, size_t ld, size_t nstride);
/* dx, overwritten, = the adjoint of im2col applied to cols */
void ref_col2im(const ref_conv_geom *g, const double *cols, double *dx, size_t ld, size_t nstride);

#endif
