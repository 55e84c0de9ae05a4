/* lib/region.c: the region of storage a view addresses, as a box in the storage's own
 * coordinates (lib/core.h).
 *
 * A view's element offsets are offset + sum_i k_i stride_i (0 <= k_i < shape_i). Written in the
 * storage's mixed radix (its shape P, strides S of the contiguous storage), the offset is a
 * coordinate c and each view stride a vector of digits q_i. If adding up the largest steps never
 * carries out of a dimension (c_j + sum_i q_ij (shape_i - 1) < P_j for every inner j), every
 * element's coordinate along j lies in [c_j, that sum]: the box of those ranges covers the view.
 * That is exact for row ranges, column slices, permutations and broadcasts of the storage — the
 * views that let micro-batches, heads or column blocks be ordered independently. Otherwise (a
 * reshape whose dimension wraps around the storage's rows) the box is the covering one of the
 * view's flat element range, which covers more, never less. */
#include "core.h"

static void strides_of(const okto__storage *st, uint64_t S[OKTO_MAX_RANK])
{
    S[OKTO_MAX_RANK - 1] = 1;
    for (int j = OKTO_MAX_RANK - 2; j >= 0; j--)
        S[j] = S[j + 1] * st->shape[j + 1];
}

/* The box covering the flat element range [a, b] (inclusive) of the storage. */
static void flat_box(const okto__storage *st, const uint64_t S[OKTO_MAX_RANK], uint64_t a,
                     uint64_t b, okto__region *r)
{
    uint64_t lo[OKTO_MAX_RANK], hi[OKTO_MAX_RANK];
    int j = 0, split = 0;
    for (; j < OKTO_MAX_RANK; j++) {
        uint64_t ca = a / S[j], cb = b / S[j];
        if (!split) {
            lo[j] = ca;
            hi[j] = cb + 1;
            if (ca != cb)
                split = 1; /* every finer dimension is covered in full */
            a -= ca * S[j];
            b -= cb * S[j];
        } else {
            lo[j] = 0;
            hi[j] = st->shape[j];
        }
    }
    r->lo0 = lo[0], r->hi0 = hi[0];
    for (j = 1; j < OKTO_MAX_RANK; j++)
        r->lo[j - 1] = (uint32_t)lo[j], r->hi[j - 1] = (uint32_t)hi[j];
}

int okto__region_of(const okto_tensor *t, okto__region *r)
{
    const okto__storage *st = t->st;
    uint64_t S[OKTO_MAX_RANK], c[OKTO_MAX_RANK], hi[OKTO_MAX_RANK];
    strides_of(st, S);
    uint64_t rest = t->offset, span = 0;
    for (int j = 0; j < OKTO_MAX_RANK; j++) {
        c[j] = rest / S[j];
        rest -= c[j] * S[j];
        hi[j] = c[j];
    }
    int exact = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] <= 1 || t->stride[i] == 0)
            continue;
        uint64_t s = (uint64_t)t->stride[i], n = t->shape[i] - 1;
        span += s * n;
        for (int j = 0; j < OKTO_MAX_RANK; j++) {
            uint64_t q = s / S[j];
            s -= q * S[j];
            hi[j] += q * n;
        }
    }
    for (int j = 1; j < OKTO_MAX_RANK; j++)
        if (hi[j] >= st->shape[j])
            exact = 0;
    if (!exact) {
        flat_box(st, S, t->offset, t->offset + span, r);
        return 0;
    }
    r->lo0 = c[0], r->hi0 = hi[0] + 1;
    for (int j = 1; j < OKTO_MAX_RANK; j++)
        r->lo[j - 1] = (uint32_t)c[j], r->hi[j - 1] = (uint32_t)(hi[j] + 1);
    return 1;
}

int okto__region_overlap(const okto__region *a, const okto__region *b)
{
    if (a->lo0 >= b->hi0 || b->lo0 >= a->hi0)
        return 0;
    for (int j = 0; j < 3; j++)
        if (a->lo[j] >= b->hi[j] || b->lo[j] >= a->hi[j])
            return 0;
    return 1;
}

int okto__region_covers(const okto__region *a, const okto__region *b)
{
    if (a->lo0 > b->lo0 || a->hi0 < b->hi0)
        return 0;
    for (int j = 0; j < 3; j++)
        if (a->lo[j] > b->lo[j] || a->hi[j] < b->hi[j])
            return 0;
    return 1;
}

int okto__views_overlap(const okto_tensor *a, const okto_tensor *b)
{
    if (!a || !b || a->st != b->st)
        return 0;
    if (okto__contiguous(a) && okto__contiguous(b)) {
        size_t ae = a->offset + okto__numel(a), be = b->offset + okto__numel(b);
        return a->offset < be && b->offset < ae;
    }
    okto__region ra, rb;
    okto__region_of(a, &ra);
    okto__region_of(b, &rb);
    return okto__region_overlap(&ra, &rb);
}
