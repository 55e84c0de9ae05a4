/* lib/ops/elementwise.c: every op that computes each output element from the same element of
 * its inputs: fill, copy, cast, scale, axpy, the unary maps and the binary zips (NumPy
 * broadcasting, or a scalar operand). Each is a row of an expression over floats a, b and s;
 * the kernels are generated from that expression (one program per op and dtypes, built on first
 * use), so adding an op is a row here and in its public enum, and the same expressions are what
 * fusion will compose.
 *
 * Layouts: any strides. The operands' dimensions are coalesced first (adjacent dimensions that
 * step alike in every operand become one), which leaves one of three kernels:
 *   ew_c, contiguous: every operand dense in the output's order, one work item per element;
 *   ew_2, two dimensions with a row and a column stride per operand (row views, column
 *        slices, transposes, a broadcast row or column);
 *   ew_4, anything else, over a 3-D NDRange (one 32-bit division per element: a 4-D index
 *        decomposition with 64-bit div/mod per element ran 25x slower on PoCL).
 * Work over many rows is split into row parts, one per compute lane; a part reads and writes only
 * its rows (a broadcast operand: what it reads of it), so later ops on those rows wait for that
 * part alone.
 *
 * Aliasing: out may be an input when it is the very same view (each element is read and written
 * by one work item); any other overlap would let one part overwrite what another still reads,
 * and is refused. */
#include "op.h"

#include <stdlib.h>
#include <string.h>

/* ---- the rows ---------------------------------------------------------------------------------- */
/* X(ID, name, expression over float a, flops per element), in okto_map_op's order */
#define MAP_ROWS(X)                                                                                \
    X(RELU, "relu", "a > 0.0f ? a : 0.0f", 1)                                                      \
    X(GELU_TANH, "gelu_tanh",                                                                      \
      "0.5f * a * (1.0f + tanh(0.7978845608028654f * (a + 0.044715f * a * a * a)))", 10)           \
    X(SIGMOID, "sigmoid", "1.0f / (1.0f + exp(-a))", 4)                                            \
    X(TANH, "tanh", "tanh(a)", 4)                                                                  \
    X(EXP, "exp", "exp(a)", 2)                                                                     \
    X(LOG, "log", "log(a)", 2)                                                                     \
    X(NEG, "neg", "-a", 1)                                                                         \
    X(SQRT, "sqrt", "sqrt(a)", 2)                                                                  \
    X(ABS, "abs", "fabs(a)", 1)                                                                    \
    X(SQUARE, "square", "a * a", 1)                                                            \
    X(RSQRT, "rsqrt", "rsqrt(a)", 2)

/* X(ID, name, expression over float a and b, flops per element), in okto_zip_op's order */
#define ZIP_ROWS(X)                                                                                \
    X(ADD, "add", "a + b", 1)                                                                      \
    X(SUB, "sub", "a - b", 1)                                                                      \
    X(MUL, "mul", "a * b", 1)                                                                      \
    X(DIV, "div", "a / b", 1)                                                                      \
    X(MAX, "max", "fmax(a, b)", 1)                                                                 \
    X(MIN, "min", "fmin(a, b)", 1)                                                                 \
    X(RELU_GRAD, "relu_grad", "b > 0.0f ? a : 0.0f", 1)

#define OKTO__ROW_ENUM(id, name, expr, flops) ROW_##id,
enum { MAP_ROWS(OKTO__ROW_ENUM) MAP_ROW_COUNT };
enum { ZIP_ROWS(OKTO__ROW_ENUM) ZIP_ROW_COUNT };
#undef OKTO__ROW_ENUM
_Static_assert((int)MAP_ROW_COUNT == (int)OKTO_MAP_COUNT, "one row per okto_map_op");
_Static_assert((int)ZIP_ROW_COUNT == (int)OKTO_ZIP_COUNT, "one row per okto_zip_op");
#define OKTO__MAP_ORDER(id, name, expr, flops)                                                     \
    _Static_assert((int)ROW_##id == (int)OKTO_MAP_##id,                                            \
                   "map row " #id " out of okto_map_op's order");
#define OKTO__ZIP_ORDER(id, name, expr, flops)                                                     \
    _Static_assert((int)ROW_##id == (int)OKTO_ZIP_##id,                                            \
                   "zip row " #id " out of okto_zip_op's order");
MAP_ROWS(OKTO__MAP_ORDER)
ZIP_ROWS(OKTO__ZIP_ORDER)

typedef struct ew_row {
    const char *expr;
    double flops;
} ew_row;

#define OKTO__ROW_DATA(id, name, expr, flops) {expr, flops},
static const ew_row map_rows[] = {MAP_ROWS(OKTO__ROW_DATA)};
static const ew_row zip_rows[] = {ZIP_ROWS(OKTO__ROW_DATA)};
#undef OKTO__ROW_DATA

#define EW_DESC(id, nm, ex, types)                                                                 \
    const okto__op_desc okto__desc_##id = {.name = nm,                                             \
                                           .family = "elementwise",                                \
                                           .dtypes = types,                                        \
                                           .layouts = "any strides",                               \
                                           .expr = ex,                                             \
                                           .partitioned = 1}
EW_DESC(FILL, "fill", "s", OKTO__DT_ALL);
EW_DESC(COPY, "copy", "a", OKTO__DT_ALL);
EW_DESC(CAST, "cast", "a", OKTO__DT_ALL);
EW_DESC(AXPY, "axpy", "b + s * a", OKTO__DT_FLOATS);
EW_DESC(SCALE, "scale", "a * s", OKTO__DT_FLOATS);
#define OKTO__MAP_DESC(id, name, expr, flops) EW_DESC(MAP_##id, "map." name, expr, OKTO__DT_FLOATS);
#define OKTO__ZIP_DESC(id, name, expr, flops) EW_DESC(ZIP_##id, "zip." name, expr, OKTO__DT_FLOATS);
MAP_ROWS(OKTO__MAP_DESC)
ZIP_ROWS(OKTO__ZIP_DESC)
#undef OKTO__MAP_DESC
#undef OKTO__ZIP_DESC

/* ---- kernels generated from an expression ------------------------------------------------------ */

typedef struct ew_spec {
    const char *expr;
    okto_dtype dt[3]; /* out, a, b */
    int raw;          /* a bit-exact element copy (copy of one dtype) */
    int scalar_b;     /* b is the scalar s (okto_zip_scalar) */
} ew_spec;

static const char *dt_macro(okto_dtype dt)
{
    static const char *const m[] = {"F32", "F16", "BF16", "I32"};
    return m[dt];
}

/* Storage type of a pointer to dt: half only behind vload/vstore; the raw copy moves bits. */
static const char *dt_ptr(okto_dtype dt, int raw)
{
    switch (dt) {
    case OKTO_F32: return "float";
    case OKTO_F16: return raw ? "ushort" : "half";
    case OKTO_BF16: return "ushort";
    default: return "int";
    }
}

static int gen(const ew_spec *sp, char *buf, size_t cap)
{
    /* the element: o at index IO, from a at IA, b at IB */
    char elem[1024];
    if (sp->raw)
        snprintf(elem, sizeof elem, "o[IO] = pa[IA];");
    else
        snprintf(elem, sizeof elem,
                 "float a = OKTO_LD_%s(pa, IA), b = %s%s%s; (void)a; (void)b;\n"
                 "    OKTO_ST_%s(o, IO, (%s));",
                 dt_macro(sp->dt[1]), sp->scalar_b ? "s" : "OKTO_LD_",
                 sp->scalar_b ? "" : dt_macro(sp->dt[2]), sp->scalar_b ? "" : "(pb, IB)",
                 dt_macro(sp->dt[0]), sp->expr);
    const char *to = dt_ptr(sp->dt[0], sp->raw), *ta = dt_ptr(sp->dt[1], sp->raw),
               *tb = dt_ptr(sp->dt[2], sp->raw);
    int n = snprintf(
        buf, cap,
        "/* generated by lib/ops/elementwise.c */\n"
        "__kernel void ew_c(__global %s *o, ulong oo, __global const %s *pa, ulong ao,\n"
        "                   __global const %s *pb, ulong bo, float s, ulong n)\n"
        "{\n"
        "    size_t i = get_global_id(0);\n"
        "    if (i >= n) return;\n"
        "#define IO (oo + i)\n#define IA (ao + i)\n#define IB (bo + i)\n"
        "    %s\n"
        "#undef IO\n#undef IA\n#undef IB\n"
        "}\n"
        "__kernel void ew_2(__global %s *o, ulong oo, long o0, long o1, __global const %s *pa,\n"
        "                   ulong ao, long a0, long a1, __global const %s *pb, ulong bo, long b0,\n"
        "                   long b1, float s, ulong rows, ulong cols)\n"
        "{\n"
        "    long c = get_global_id(0), r = get_global_id(1);\n"
        "    if (c >= (long)cols || r >= (long)rows) return;\n"
        "#define IO (oo + r * o0 + c * o1)\n#define IA (ao + r * a0 + c * a1)\n"
        "#define IB (bo + r * b0 + c * b1)\n"
        "    %s\n"
        "#undef IO\n#undef IA\n#undef IB\n"
        "}\n"
        "__kernel void ew_4(__global %s *o, ulong oo, long4 os, __global const %s *pa, ulong ao,\n"
        "                   long4 as, __global const %s *pb, ulong bo, long4 bs, float s,\n"
        "                   ulong4 sh)\n"
        "{\n"
        "    long x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);\n"
        "    if (x >= (long)sh.w || y >= (long)sh.z || z >= (long)(sh.x * sh.y)) return;\n"
        "    long z0 = (uint)z / (uint)sh.y, z1 = z - z0 * (long)sh.y;\n"
        "#define IO (oo + z0 * os.x + z1 * os.y + y * os.z + x * os.w)\n"
        "#define IA (ao + z0 * as.x + z1 * as.y + y * as.z + x * as.w)\n"
        "#define IB (bo + z0 * bs.x + z1 * bs.y + y * bs.z + x * bs.w)\n"
        "    %s\n"
        "#undef IO\n#undef IA\n#undef IB\n"
        "}\n",
        to, ta, tb, elem, to, ta, tb, elem, to, ta, tb, elem);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- coalescing the operands' dimensions --------------------------------------------------------- */

#define EW_OPS 3 /* out, a, b */

typedef struct ew_iter {
    int rank; /* after coalescing, 1..4 */
    size_t shape[OKTO_MAX_RANK];
    int64_t stride[EW_OPS][OKTO_MAX_RANK];
    size_t offset[EW_OPS]; /* storage element offsets, okto_tensor.offset */
} ew_iter;

/* Strides of t seen in out's shape (aligned at the last dimension): 0 where t broadcasts. */
static void aligned_strides(const okto_tensor *out, const okto_tensor *t, int64_t *st)
{
    for (int i = 0; i < out->rank; i++) {
        int j = i - (out->rank - t->rank);
        st[i] = j >= 0 && t->shape[j] == out->shape[i] ? t->stride[j] : 0;
    }
}

static void coalesce(const okto_tensor *out, const okto_tensor *const in[EW_OPS], ew_iter *it)
{
    int64_t st[EW_OPS][OKTO_MAX_RANK];
    size_t shape[OKTO_MAX_RANK];
    int rank = 0;
    for (int k = 0; k < EW_OPS; k++)
        aligned_strides(out, in[k], st[k]);
    /* drop dimensions of size 1, then merge i into the previous kept one where every operand
     * steps from one to the next by the extent */
    for (int i = 0; i < out->rank; i++) {
        if (out->shape[i] == 1)
            continue;
        int merge = rank > 0;
        for (int k = 0; k < EW_OPS && merge; k++)
            merge = it->stride[k][rank - 1] == st[k][i] * (int64_t)out->shape[i];
        if (merge) {
            shape[rank - 1] *= out->shape[i];
            for (int k = 0; k < EW_OPS; k++)
                it->stride[k][rank - 1] = st[k][i];
        } else {
            shape[rank] = out->shape[i];
            for (int k = 0; k < EW_OPS; k++)
                it->stride[k][rank] = st[k][i];
            rank++;
        }
    }
    if (rank == 0) { /* one element */
        shape[0] = 1;
        for (int k = 0; k < EW_OPS; k++)
            it->stride[k][0] = 1;
        rank = 1;
    }
    it->rank = rank;
    for (int i = 0; i < rank; i++)
        it->shape[i] = shape[i];
    for (int k = 0; k < EW_OPS; k++)
        it->offset[k] = in[k]->offset;
}

/* Operand k's view of rows [r0, r1) of the iteration (for its access). */
static void part_view(const ew_iter *it, const okto_tensor *base, int k, size_t r0, size_t r1,
                      okto_tensor *v)
{
    memset(v, 0, sizeof *v);
    v->st = base->st;
    v->dtype = base->dtype;
    v->rank = it->rank;
    for (int i = 0; i < OKTO_MAX_RANK; i++) {
        v->shape[i] = i < it->rank ? it->shape[i] : 1;
        v->stride[i] = i < it->rank ? it->stride[k][i] : 0;
    }
    v->shape[0] = r1 - r0;
    v->offset = (size_t)((int64_t)it->offset[k] + (int64_t)r0 * it->stride[k][0]);
}

/* ---- recording ----------------------------------------------------------------------------------- */

typedef struct ew_call {
    okto__op op;
    const char *expr;
    double flops;
    okto_tensor *out;
    const okto_tensor *a, *b; /* NULL when the expression does not use them */
    float s;
    int out_mode; /* OKTO__W, or OKTO__RW (scale, axpy) */
    int scalar_b; /* the expression's b is s */
} ew_call;

static okto_status ew_record(okto__rec *r, const ew_call *c)
{
    okto_tensor *out = c->out;
    const okto_tensor *in[EW_OPS] = {out, c->a ? c->a : out, c->b ? c->b : out};
    int raw = c->a && !c->b && strcmp(c->expr, "a") == 0 && c->a->dtype == out->dtype;
    ew_spec sp = {c->expr, {out->dtype, in[1]->dtype, in[2]->dtype}, raw, c->scalar_b};
    ew_iter it;
    coalesce(out, in, &it);
    int dense = it.rank == 1;
    for (int k = 0; k < EW_OPS && dense; k++)
        dense = it.stride[k][0] == 1;
    const char *kname = dense ? "ew_c" : it.rank <= 2 ? "ew_2" : "ew_4";
    okto__kid kid;
    okto_status s = OKTO_OK;
    /* generating and hashing the source costs ~2 us; a recorded call of the same op, dtypes and
     * kernel finds its id in the context's memo */
    uint64_t memo = 1469598103934665603ull;
    for (const char *e = sp.expr; *e; e++)
        memo = (memo ^ (uint8_t)*e) * 1099511628211ull;
    memo ^= ((uint64_t)sp.dt[0] | (uint64_t)sp.dt[1] << 4 | (uint64_t)sp.dt[2] << 8 |
             (uint64_t)raw << 12 | (uint64_t)sp.scalar_b << 13 | (uint64_t)(kname[3]) << 16) *
            0x9e3779b97f4a7c15ull;
    if (!okto__kid_memo_get(r->ctx, memo, &kid)) {
        char src[8192];
        if (gen(&sp, src, sizeof src) < 0)
            return okto__rec_fail(r, OKTO_EINVAL, "internal: the generated kernel is too long");
        okto__progkey key = {NULL, src, NULL};
        if ((s = okto__kernel_id(r->ctx, &key, kname, &kid)) != OKTO_OK)
            return s;
        okto__kid_memo_put(r->ctx, memo, kid);
    }
    size_t n = okto__numel(out), rows = it.shape[0];
    int nparts = okto__rec_parts(r, rows, (double)n);
    size_t inner = n / rows, es[EW_OPS];
    for (int k = 0; k < EW_OPS; k++)
        es[k] = okto_dtype_size(in[k]->dtype);
    const okto__device *dev = okto__rec_device(r);
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t r0 = okto__part_row(rows, p, nparts), r1 = okto__part_row(rows, p + 1, nparts);
        okto__tb t;
        okto__tb_init(&t, r, c->op);
        okto__tb_kid(&t, kid);
        t.dtype = out->dtype;
        okto_tensor v[EW_OPS];
        for (int k = 0; k < EW_OPS; k++)
            part_view(&it, in[k], k, r0, r1, &v[k]);
        if (dense) {
            for (int k = 0; k < EW_OPS; k++)
                okto__tb_arg_tensor(&t, &v[k]);
            okto__tb_arg_float(&t, c->s);
            okto__tb_arg_ulong(&t, r1 - r0);
            okto__tb_range_1d(&t, r1 - r0);
        } else if (it.rank <= 2) {
            /* rows x cols; a single strided dimension is one row of columns */
            int one = it.rank == 1;
            size_t prow = r1 - r0, cols = one ? prow : it.shape[1], nrows = one ? 1 : prow;
            for (int k = 0; k < EW_OPS; k++) {
                okto__tb_arg_tensor(&t, &v[k]);
                okto__tb_arg_long(&t, one ? 0 : it.stride[k][0]);
                okto__tb_arg_long(&t, one ? it.stride[k][0] : it.stride[k][1]);
            }
            okto__tb_arg_float(&t, c->s);
            okto__tb_arg_ulong(&t, nrows);
            okto__tb_arg_ulong(&t, cols);
            size_t want[2] = {cols, nrows}, g[2], l[2];
            okto__grid_nd(dev, 2, want, g, l);
            okto__tb_range(&t, 2, g, l);
        } else {
            /* padded to 4 dimensions at the front: (d0, d1, d2, d3) */
            size_t sh[4] = {1, 1, 1, 1};
            int64_t st[EW_OPS][4] = {{0}};
            int pad = 4 - it.rank;
            for (int i = 0; i < it.rank; i++) {
                sh[pad + i] = i == 0 ? r1 - r0 : it.shape[i];
                for (int k = 0; k < EW_OPS; k++)
                    st[k][pad + i] = it.stride[k][i];
            }
            if (sh[0] * sh[1] > UINT32_MAX)
                return okto__rec_fail(r, OKTO_ENOTSUP,
                                      "%s has over 2^32 outer elements in a "
                                      "layout that needs the 4-D kernel",
                                      OKTO__DESC(out));
            for (int k = 0; k < EW_OPS; k++) {
                okto__tb_arg_tensor(&t, &v[k]);
                cl_long4 l4 = {{st[k][0], st[k][1], st[k][2], st[k][3]}};
                OKTO__TB_ARG(&t, l4);
            }
            okto__tb_arg_float(&t, c->s);
            cl_ulong4 s4 = {{sh[0], sh[1], sh[2], sh[3]}};
            OKTO__TB_ARG(&t, s4);
            size_t want[3] = {sh[3], sh[2], sh[0] * sh[1]}, g[3], l[3];
            okto__grid_nd(dev, 3, want, g, l);
            okto__tb_range(&t, 3, g, l);
        }
        if (c->a)
            okto__tb_access(&t, &v[1], OKTO__R);
        if (c->b)
            okto__tb_access(&t, &v[2], OKTO__R);
        okto__tb_access(&t, &v[0], c->out_mode);
        size_t pn = (r1 - r0) * inner;
        double bytes = (double)pn * (double)(es[0] * (c->out_mode == OKTO__RW ? 2 : 1) +
                                             (c->a ? es[1] : 0) + (c->b ? es[2] : 0));
        okto__tb_cost(&t, (double)pn * c->flops, bytes, (uint64_t)pn * 8 + (uint64_t)it.rank);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    return s;
}

/* out's shape must be the broadcast of a's and b's. */
static okto_status check_broadcast(okto__rec *r, const okto_tensor *out, const okto_tensor *a,
                                   const okto_tensor *b)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    okto_tensor want = {.dtype = a->dtype, .rank = rank};
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        size_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return okto__rec_fail(r, OKTO_EINVAL,
                                  "a is %s, b is %s: shapes do not broadcast "
                                  "(dimension %d: %zu against %zu)",
                                  OKTO__DESC(a), OKTO__DESC(b), i, da, db);
        want.shape[i] = da > db ? da : db;
    }
    if (!okto__same_shape(out, &want))
        return okto__rec_fail(r, OKTO_EINVAL, "a is %s, b is %s: the result is %s but out is %s",
                              OKTO__DESC(a), OKTO__DESC(b), OKTO__DESC(&want), OKTO__DESC(out));
    return OKTO_OK;
}

static okto_status same_shape(okto__rec *r, const okto_tensor *out, const char *on,
                              const okto_tensor *in, const char *in_name)
{
    if (okto__same_shape(out, in))
        return OKTO_OK;
    return okto__rec_fail(r, OKTO_EINVAL, "%s is %s but %s is %s", on, OKTO__DESC(out), in_name,
                          OKTO__DESC(in));
}

static okto_status same_dtype(okto__rec *r, const okto_tensor *x, const char *xn,
                              const okto_tensor *y, const char *yn)
{
    if (x->dtype == y->dtype)
        return OKTO_OK;
    return okto__rec_fail(r, OKTO_EINVAL,
                          "%s is %s but %s is %s: dtypes differ (okto_cast "
                          "converts)",
                          xn, OKTO__DESC(x), yn, OKTO__DESC(y));
}

okto_status okto_fill(okto_graph *g, okto_tensor *x, float value)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_FILL, "okto_fill");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, x, "x", OKTO__DT_ALL);
    if (s == OKTO_OK) {
        ew_call c = {OKTO__OP_FILL, "s", 0, x, NULL, NULL, value, OKTO__W, 0};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

static okto_status copy_like(okto_graph *g, okto_tensor *dst, const okto_tensor *src, okto__op op,
                             const char *fn)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, op, fn);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dst, "dst", OKTO__DT_ALL);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, src, "src", OKTO__DT_ALL);
    if (s == OKTO_OK)
        s = same_shape(&r, dst, "dst", src, "src");
    if (s == OKTO_OK && op == OKTO__OP_COPY)
        s = same_dtype(&r, dst, "dst", src, "src");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dst, "dst", src, "src", op == OKTO__OP_CAST ? 0 : 1);
    if (s == OKTO_OK && !okto__same_view(dst, src)) {
        ew_call c = {op, "a", 0, dst, src, NULL, 0, OKTO__W, 0};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

okto_status okto_copy(okto_graph *g, okto_tensor *dst, const okto_tensor *src)
{
    return copy_like(g, dst, src, OKTO__OP_COPY, "okto_copy");
}

okto_status okto_cast(okto_graph *g, okto_tensor *dst, const okto_tensor *src)
{
    return copy_like(g, dst, src, OKTO__OP_CAST, "okto_cast");
}

okto_status okto__rec_layout(okto__rec *r, const okto_tensor *in, int dense_rows, okto_tensor *out)
{
    okto_tensor m;
    if (dense_rows ? okto__rows_dense(in) && okto__view_2d(in, &m) : okto__contiguous(in)) {
        *out = *in;
        out->heap = 0;
        return OKTO_OK;
    }
    okto_status s = okto__rec_temp(r, in->dtype, in->rank, in->shape, out);
    if (s != OKTO_OK)
        return s;
    ew_call c = {OKTO__OP_COPY, "a", 0, out, in, NULL, 0, OKTO__W, 0};
    return ew_record(r, &c);
}

okto_status okto_contiguous(okto_graph *g, const okto_tensor *src, okto_tensor **out)
{
    if (out)
        *out = NULL;
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_COPY, "okto_contiguous");
    if (s == OKTO_OK && !out)
        s = okto__rec_fail(&r, OKTO_EINVAL, "out must not be NULL");
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, src, "src", OKTO__DT_ALL);
    okto_tensor *t = NULL;
    if (s == OKTO_OK)
        s = okto_tensor_create(r.ctx, src->dtype, src->rank, src->shape, &t);
    if (s == OKTO_OK) {
        ew_call c = {OKTO__OP_COPY, "a", 0, t, src, NULL, 0, OKTO__W, 0};
        s = ew_record(&r, &c);
    }
    s = okto__rec_end(&r, s);
    if (s == OKTO_OK)
        *out = t;
    else
        okto_tensor_destroy(t); /* the graph keeps its storage only if the copy was recorded */
    return s;
}

okto_status okto_scale(okto_graph *g, okto_tensor *x, float alpha)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_SCALE, "okto_scale");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK) {
        ew_call c = {OKTO__OP_SCALE, "a * s", 1, x, x, NULL, alpha, OKTO__RW, 0};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

okto_status okto_axpy(okto_graph *g, okto_tensor *y, float alpha, const okto_tensor *x)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_AXPY, "okto_axpy");
    if (s == OKTO_OK)
        s = okto__rec_output(&r, y, "y", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = same_shape(&r, y, "y", x, "x");
    if (s == OKTO_OK)
        s = same_dtype(&r, y, "y", x, "x");
    /* partially overlapping views of one tensor would race between the parts */
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, y, "y", x, "x", 1);
    if (s == OKTO_OK) {
        ew_call c = {OKTO__OP_AXPY, "b + s * a", 2, y, x, y, alpha, OKTO__RW, 0};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

okto_status okto_map(okto_graph *g, okto_tensor *out, const okto_tensor *in, okto_map_op op)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_MAP_RELU, "okto_map");
    if (s == OKTO_OK && (unsigned)op >= OKTO_MAP_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_map_op", (int)op);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = same_shape(&r, out, "out", in, "in");
    if (s == OKTO_OK)
        s = same_dtype(&r, out, "out", in, "in");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", in, "in", 1);
    if (s == OKTO_OK) {
        ew_call c = {(okto__op)(OKTO__OP_MAP_RELU + op),
                     map_rows[op].expr,
                     map_rows[op].flops,
                     out,
                     in,
                     NULL,
                     0,
                     OKTO__W,
                     0};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

static okto_status zip(okto_graph *g, okto_tensor *out, const okto_tensor *a, const okto_tensor *b,
                       float sv, int scalar, okto_zip_op op, const char *fn)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_ZIP_ADD, fn);
    if (s == OKTO_OK && (unsigned)op >= OKTO_ZIP_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_zip_op", (int)op);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, a, "a", OKTO__DT_FLOATS);
    if (s == OKTO_OK && !scalar)
        s = okto__rec_tensor(&r, b, "b", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = scalar ? same_shape(&r, out, "out", a, "a") : check_broadcast(&r, out, a, b);
    if (s == OKTO_OK)
        s = same_dtype(&r, out, "out", a, "a");
    if (s == OKTO_OK && !scalar)
        s = same_dtype(&r, out, "out", b, "b");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", a, "a", 1);
    if (s == OKTO_OK && !scalar)
        s = okto__rec_no_alias(&r, out, "out", b, "b", 1);
    if (s == OKTO_OK) {
        ew_call c = {(okto__op)(OKTO__OP_ZIP_ADD + op),
                     zip_rows[op].expr,
                     zip_rows[op].flops,
                     out,
                     a,
                     scalar ? NULL : b,
                     sv,
                     OKTO__W,
                     scalar};
        s = ew_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

okto_status okto_zip(okto_graph *g, okto_tensor *out, const okto_tensor *a, const okto_tensor *b,
                     okto_zip_op op)
{
    return zip(g, out, a, b, 0, 0, op, "okto_zip");
}

okto_status okto_zip_scalar(okto_graph *g, okto_tensor *out, const okto_tensor *a, float s,
                            okto_zip_op op)
{
    return zip(g, out, a, NULL, s, 1, op, "okto_zip_scalar");
}
