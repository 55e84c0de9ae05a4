/* okto/autograd.h: reverse-mode gradients on a graph.
 *
 * Mark the parameters, record the forward pass and the loss with the ops of ops.h, then ask for
 * the gradients: okto_backward records the gradient tasks into the same graph, after the
 * forward ones, so one graph is the whole step and every replay recomputes them. An optimizer
 * step recorded after it completes the training step.
 *
 *     okto_tensor_set_requires_grad(w, 1);          before the ops that read w are recorded
 *     okto_matmul(g, h, x, w, 0); ...; okto_cross_entropy(g, loss, ...);
 *     okto_backward(g, loss, 1, &w, &dw, 0);        dw = d sum(loss) / dw
 *
 * What needs a gradient is known while recording: an op call goes on the graph's tape when it
 * reads a marked storage or a value made from one, so graphs without marked storages carry no
 * tape. Gradients of intermediate values live in buffers the graph owns (one per storage the
 * backward pass reaches, zeroed before use), so a tensor that several ops read gets the sum of
 * their contributions, and views of one storage share its gradient buffer. */
#ifndef OKTO_AUTOGRAD_H
#define OKTO_AUTOGRAD_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks (on != 0) or unmarks the storage t views as a parameter: one that gradients may be asked
 * for. The mark belongs to the storage (every view of it shares it) and counts for ops recorded
 * after it is set. i32 tensors cannot be marked. */
OKTO_API okto_status okto_tensor_set_requires_grad(okto_tensor *t, int on);
OKTO_API int okto_tensor_requires_grad(const okto_tensor *t);

/* Records the gradients of sum(loss) with respect to params[0..n) into grads[i] (each the shape
 * and dtype of params[i]; overwritten, or added to with OKTO_ACCUMULATE, which is how gradients
 * of several micro-batches accumulate). Each params[i] must be marked; a parameter the loss
 * does not depend on gets a zero gradient. Fails (OKTO_EINVAL, the graph keeps the error) when
 * the loss depends on a parameter through an op without a gradient (a user kernel), when a value
 * the gradient needs was overwritten after the op that read it (record that op out of place),
 * or when grads[i] overlaps data the forward pass uses. May be called again on the same graph
 * for another loss (each call's gradient buffers are its own). */
OKTO_API okto_status okto_backward(okto_graph *g, const okto_tensor *loss, int n,
                                   const okto_tensor *const *params, okto_tensor *const *grads,
                                   unsigned flags);

#ifdef __cplusplus
}
#endif
#endif
