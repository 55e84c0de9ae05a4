/* tests/ref/ref_pool.h: 2-D pooling in double, the reference for cl/pool.cl.
 *
 * x, dx [NC, H, W]; y, dy [NC, OH, OW] (N C planes), contiguous. Max pool: window KH x KW,
 * stride, padding (-inf), dilation; argmax = ih W + iw of the first max in (kh, kw) order (a
 * NaN wins, a later NaN over an earlier one: PyTorch's rule). Average pool (no dilation):
 * PyTorch's divisors: the window clipped to the padded input when count_include_pad, else the
 * number of input pixels in it. Global average pooling: the mean of each plane. The backward
 * functions overwrite dx with the gradient of sum(dy * y). */
#ifndef OKTO_REF_POOL_H
#define OKTO_REF_POOL_H

typedef struct ref_pool_geom {
    int NC, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW;
} ref_pool_geom;

void ref_maxpool2d_forward(const ref_pool_geom *g, const double *x, double *y, int *argmax);
void ref_maxpool2d_backward(const ref_pool_geom *g, const double *dy, const int *argmax,
                            double *dx);
void ref_avgpool2d_forward(const ref_pool_geom *g, const double *x, double *y,
                           int count_include_pad);
void ref_avgpool2d_backward(const ref_pool_geom *g, const double *dy, double *dx,
                            int count_include_pad);
void ref_gap_forward(int NC, int HW, const double *x, double *y);
void ref_gap_backward(int NC, int HW, const double *dy, double *dx);

#endif
