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
/* X(ID, name, expression over float a, its gradient over a = x and b = dy, flops per element),
 * in okto_map_op's order; the activations' helpers are cl/common.h's */
#define MAP_ROWS(X)                                                                                \
    X(RELU, "relu", "a > 0.0f ? a : 0.0f", "a > 0.0f ? b : 0.0f", 1)                               \
    X(GELU_TANH, "gelu_tanh", "okto_gelu_tanh(a)", "b * okto_gelu_tanh_grad(a)", 10)               \
    X(SIGMOID, "sigmoid", "okto_sigmoid(a)", "b * okto_sigmoid(a) * (1.0f - okto_sigmoid(a))", 4)  \
    X(TANH, "tanh", "tanh(a)", "b * (1.0f - tanh(a) * tanh(a))", 4)                                \
    X(EXP, "exp", "exp(a)", "b * exp(a)", 2)                                                       \
    X(LOG, "log", "log(a)", "b / a", 2)                                                            \
    X(NEG, "neg", "-a", "-b", 1)                                                                   \
    X(SQRT, "sqrt", "sqrt(a)", "0.5f * b / sqrt(a)", 2)                                            \
    X(ABS, "abs", "fabs(a)", "a > 0.0f ? b : a < 0.0f ? -b : 0.0f", 1)                             \
    X(SQUARE, "square", "a * a", "2.0f * a * b", 1)                                                \
    X(RSQRT, "rsqrt", "rsqrt(a)", "-0.5f * b * rsqrt(a) / a", 2)                                   \
    X(GELU_ERF, "gelu_erf", "okto_gelu_erf(a)", "b * okto_gelu_erf_grad(a)", 12)                   \
    X(SILU, "silu", "okto_silu(a)", "b * okto_silu_grad(a)", 5)

/* X(ID, name, expression over float a and b, da and db over a, b and c = dy, flops), in
 * okto_zip_op's order */
#define ZIP_ROWS(X)                                                                                \
    X(ADD, "add", "a + b", "c", "c", 1)                                                            \
    X(SUB, "sub", "a - b", "c", "-c", 1)                                                           \
    X(MUL, "mul", "a * b", "c * b", "c * a", 1)                                                    \
    X(DIV, "div", "a / b", "c / b", "-c * a / (b * b)", 1)                                         \
    X(MAX, "max", "fmax(a, b)", "a >= b ? c : 0.0f", "a < b ? c : 0.0f", 1)                        \
    X(MIN, "min", "fmin(a, b)", "a <= b ? c : 0.0f", "a > b ? c : 0.0f", 1)                        \
    X(RELU_GRAD, "relu_grad", "b > 0.0f ? a : 0.0f", "b > 0.0f ? c : 0.0f", "0.0f", 1)

#define OKTO__MROW_ENUM(id, name, expr, grad, flops) ROW_##id,
#define OKTO__ZROW_ENUM(id, name, expr, da, db, flops) ROW_##id,
enum { MAP_ROWS(OKTO__MROW_ENUM) MAP_ROW_COUNT };
enum { ZIP_ROWS(OKTO__ZROW_ENUM) ZIP_ROW_COUNT };
#undef OKTO__MROW_ENUM
#undef OKTO__ZROW_ENUM
_Static_assert((int)MAP_ROW_COUNT == (int)OKTO_MAP_COUNT, "one row per okto_map_op");
_Static_assert((int)ZIP_ROW_COUNT == (int)OKTO_ZIP_COUNT, "one row per okto_zip_op");
#define OKTO__MAP_ORDER(id, name, expr, grad, flops)                                               \
    _Static_assert((int)ROW_##id == (int)OKTO_MAP_##id, "map row " #id " out of order");
#define OKTO__ZIP_ORDER(id, name, expr, da, db, flops)                                             \
    _Static_assert((int)ROW_##id == (int)OKTO_ZIP_##id, "zip row " #id " out of order");
MAP_ROWS(OKTO__MAP_ORDER)
ZIP_ROWS(OKTO__ZIP_ORDER)

typedef struct ew_row {
    const char *expr, *grad[2];
    double flops;
} ew_row;

#define OKTO__MROW_DATA(id, name, expr, grad, flops) {expr, {grad, NULL}, flops},
#define OKTO__ZROW_DATA(id, name, expr, da, db, flops) {expr, {da, db}, flops},
static const ew_row map_rows[] = {MAP_ROWS(OKTO__MROW_DATA)};
static const ew_row zip_rows[] = {ZIP_ROWS(OKTO__ZROW_DATA)};
#undef OKTO__MROW_DATA
#undef OKTO__ZROW_DATA

/* gradient rules (bottom of the file) */
static okto_status copy_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status scale_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status axpy_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status map_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status zip_grad(okto__grad *gr, const okto__ad_node *n);
static okto_status sum_to_grad(okto__grad *gr, const okto__ad_node *n);

#define EW_DESC(id, nm, ex, types, rule)                                                           \
    const okto__op_desc okto__desc_##id = {.name = nm,                                             \
                                           .family = "elementwise",                                \
                                           .dtypes = types,                                        \
                                           .layouts = "any strides",                               \
                                           .expr = ex,                                             \
                                           .partitioned = 1,                                       \
                                           .backward = rule}
EW_DESC(FILL, "fill", "s", OKTO__DT_ALL, NULL);
/* copy's own row: its layouts text says how a transpose is done (there is no transpose op) */
const okto__op_desc okto__desc_COPY = {
    .name = "copy",
    .family = "elementwise",
    .dtypes = OKTO__DT_ALL,
    .layouts = "any strides; a transpose is okto_contiguous (or okto_copy) of a transposed view",
    .expr = "a",
    .partitioned = 1,
    .backward = copy_grad};
EW_DESC(CAST, "cast", "a", OKTO__DT_ALL, copy_grad);
EW_DESC(AXPY, "axpy", "b + s * a", OKTO__DT_FLOATS, axpy_grad);
EW_DESC(SCALE, "scale", "a * s", OKTO__DT_FLOATS, scale_grad);
EW_DESC(SUM_TO, "sum_to", NULL, OKTO__DT_FLOATS, sum_to_grad);
#define OKTO__MAP_DESC(id, name, expr, grad, flops)                                                \
    EW_DESC(MAP_##id, "map." name, expr, OKTO__DT_FLOATS, map_grad);                               \
    EW_DESC(MAPGRAD_##id, "map." name ".backward", grad, OKTO__DT_FLOATS, NULL);
#define OKTO__ZIP_DESC(id, name, expr, da, db, flops)                                              \
    EW_DESC(ZIP_##id, "zip." name, expr, OKTO__DT_FLOATS, zip_grad);                               \
    EW_DESC(ZIPGRAD_##id, "zip." name ".backward", da, OKTO__DT_FLOATS, NULL);
MAP_ROWS(OKTO__MAP_DESC)
ZIP_ROWS(OKTO__ZIP_DESC)
#undef OKTO__MAP_DESC
#undef OKTO__ZIP_DESC

/* ---- kernels generated from an expression ------------------------------------------------------ */

typedef struct ew_spec {
    const char *expr;
    okto_dtype dt[5]; /* out, a, b, c, d */
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

#define EW_OPS 5 /* out, a, b, c, d */
static const char *const ew_ptr[EW_OPS] = {"o", "pa", "pb", "pc", "pd"};
static const char *const ew_name[EW_OPS] = {"o", "a", "b", "c", "d"};

/* The three kernels of a program differ in how an operand's element index is formed: ew_c
 * one contiguous run, ew_2 a row and a column stride, ew_4 four strides over a 3-D grid. */
static int gen(const ew_spec *sp, char *buf, size_t cap)
{
    char elem[1024];
    if (sp->raw) {
        snprintf(elem, sizeof elem, "o[IO] = pa[IA];");
    } else {
        char decl[768];
        size_t n = 0;
        for (int k = 1; k < EW_OPS; k++) {
            char v[96];
            if (k == 2 && sp->scalar_b)
                snprintf(v, sizeof v, "s");
            else
                snprintf(v, sizeof v, "OKTO_LD_%s(%s, I%c)", dt_macro(sp->dt[k]), ew_ptr[k],
                         "OABCD"[k]);
            n += (size_t)snprintf(decl + n, sizeof decl - n, "%s%s = %s",
                                  k > 1 ? ",\n          " : "float ", ew_name[k], v);
        }
        snprintf(elem, sizeof elem,
                 "%s;\n    (void)a; (void)b; (void)c; (void)d;\n    OKTO_ST_%s(o, IO, (%s));", decl,
                 dt_macro(sp->dt[0]), sp->expr);
    }
    static const char *const kname[3] = {"ew_c", "ew_2", "ew_4"};
    static const char *const tail[3] = {"float s, ulong n", "float s, ulong rows, ulong cols",
                                        "float s, ulong4 sh"};
    static const char *const strides[3] = {"", ", long %s0, long %s1", ", long4 %ss"};
    static const char *const prologue[3] = {
        "    size_t i = get_global_id(0);\n    if (i >= n) return;\n",
        "    long k = get_global_id(0), r = get_global_id(1);\n"
        "    if (k >= (long)cols || r >= (long)rows) return;\n",
        "    long x = get_global_id(0), y = get_global_id(1), z = get_global_id(2);\n"
        "    if (x >= (long)sh.w || y >= (long)sh.z || z >= (long)(sh.x * sh.y)) return;\n"
        "    long z0 = (uint)z / (uint)sh.y, z1 = z - z0 * (long)sh.y;\n"};
    static const char *const index[3] = {"%soff + i", "%soff + r * %s0 + k * %s1",
                                         "%soff + z0 * %ss.x + z1 * %ss.y + y * %ss.z + x * %ss.w"};
    size_t n = (size_t)snprintf(buf, cap, "/* generated by lib/ops/elementwise.c */\n");
    for (int v = 0; v < 3 && n < cap; v++) {
        n += (size_t)snprintf(buf + n, cap - n, "__kernel void %s(", kname[v]);
        for (int k = 0; k < EW_OPS && n < cap; k++) {
            char st[64];
            snprintf(st, sizeof st, strides[v], ew_name[k], ew_name[k]);
            n += (size_t)snprintf(buf + n, cap - n, "__global %s%s *%s, ulong %soff%s, ",
                                  k ? "const " : "", dt_ptr(sp->dt[k], sp->raw), ew_ptr[k],
                                  ew_name[k], st);
        }
        n += (size_t)snprintf(buf + n, cap - n, "%s)\n{\n%s", tail[v], prologue[v]);
        for (int k = 0; k < EW_OPS && n < cap; k++) {
            char ix[160];
            const char *e = ew_name[k];
            snprintf(ix, sizeof ix, index[v], e, e, e, e, e);
            n += (size_t)snprintf(buf + n, cap - n, "#define I%c (%s)\n", "OABCD"[k], ix);
        }
        n += (size_t)snprintf(buf + n, cap - n,
                              "    %s\n#undef IO\n#undef IA\n#undef IB\n"
                              "#undef IC\n#undef ID\n}\n",
                              elem);
    }
    return n < cap ? 0 : -1;
}

/* ---- coalescing the operands' dimensions --------------------------------------------------------- */

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
    const okto_tensor *a, *b, *c, *d; /* NULL when the expression does not use them */
    float s;
    int out_mode; /* OKTO__W, or OKTO__RW (scale, axpy, gradients accumulated) */
    int scalar_b; /* the expression's b is s */
} ew_call;

static okto_status ew_record(okto__rec *r, const ew_call *c)
{
    okto_tensor *out = c->out;
    const okto_tensor *in[EW_OPS] = {out, c->a ? c->a : out, c->b ? c->b : out, c->c ? c->c : out,
                                     c->d ? c->d : out};
    int raw =
        c->a && !c->b && !c->c && !c->d && strcmp(c->expr, "a") == 0 && c->a->dtype == out->dtype;
    ew_spec sp = {c->expr,
                  {out->dtype, in[1]->dtype, in[2]->dtype, in[3]->dtype, in[4]->dtype},
                  raw,
                  c->scalar_b};
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
             (uint64_t)sp.dt[3] << 20 | (uint64_t)sp.dt[4] << 24 | (uint64_t)raw << 12 |
             (uint64_t)sp.scalar_b << 13 | (uint64_t)(kname[3]) << 16) *
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
        /* vertical fusion (lib/engine/fuse.c) composes ew_c tasks over floats */
        int f32 = 1;
        for (int k = 0; k < EW_OPS; k++)
            f32 &= sp.dt[k] == OKTO_F32;
        /* rows without a one-line expression (those whose kernel body is written out) are
         * not fusable: an empty one generated "v = ();" (PoCL's build failed and the chain
         * ran unfused, but every run paid the failed build) */
        if (dense && f32 && !sp.scalar_b && c->expr && c->expr[0])
            t.fuse_expr = c->expr;
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
        if (c->c)
            okto__tb_access(&t, &v[3], OKTO__R);
        if (c->d)
            okto__tb_access(&t, &v[4], OKTO__R);
        okto__tb_access(&t, &v[0], c->out_mode);
        size_t pn = (r1 - r0) * inner;
        double bytes =
            (double)pn * (double)(es[0] * (c->out_mode == OKTO__RW ? 2 : 1) + (c->a ? es[1] : 0) +
                                  (c->b ? es[2] : 0) + (c->c ? es[3] : 0) + (c->d ? es[4] : 0));
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
        ew_call c = {.op = OKTO__OP_FILL,
                     .expr = "s",
                     .flops = 0,
                     .out = x,
                     .s = value,
                     .out_mode = OKTO__W,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_FILL, .nout = 1, .t = {x},
                                                 .overwrite = 1});
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
        ew_call c = {.op = op,
                     .expr = "a",
                     .flops = 0,
                     .out = dst,
                     .a = src,
                     .s = 0,
                     .out_mode = OKTO__W,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
        if (s == OKTO_OK)
            s = okto__ad_record(&r, &(okto__ad_call){.op = op, .nin = 1, .nout = 1,
                                                     .t = {src, dst}, .overwrite = 1});
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
    ew_call c = {.op = OKTO__OP_COPY,
                 .expr = "a",
                 .flops = 0,
                 .out = out,
                 .a = in,
                 .s = 0,
                 .out_mode = OKTO__W,
                 .scalar_b = 0};
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
        ew_call c = {.op = OKTO__OP_COPY,
                     .expr = "a",
                     .flops = 0,
                     .out = t,
                     .a = src,
                     .s = 0,
                     .out_mode = OKTO__W,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_COPY, .nin = 1, .nout = 1,
                                                 .t = {src, t}, .overwrite = 1});
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
        ew_call c = {.op = OKTO__OP_SCALE,
                     .expr = "a * s",
                     .flops = 1,
                     .out = x,
                     .a = x,
                     .s = alpha,
                     .out_mode = OKTO__RW,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_SCALE, .nin = 1, .nout = 1,
                                                 .t = {x, x}, .f = {alpha}});
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
        ew_call c = {.op = OKTO__OP_AXPY,
                     .expr = "b + s * a",
                     .flops = 2,
                     .out = y,
                     .a = x,
                     .b = y,
                     .s = alpha,
                     .out_mode = OKTO__RW,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_AXPY, .nin = 2, .nout = 1,
                                                 .t = {x, y, y}, .identity = 2u,
                                                 .f = {alpha}});
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
        ew_call c = {.op = (okto__op)(OKTO__OP_MAP_RELU + op),
                     .expr = map_rows[op].expr,
                     .flops = map_rows[op].flops,
                     .out = out,
                     .a = in,
                     .s = 0,
                     .out_mode = OKTO__W,
                     .scalar_b = 0};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = (okto__op)(OKTO__OP_MAP_RELU + op),
                                                 .nin = 1, .nout = 1, .t = {in, out},
                                                 .saved = 1u << 0, .overwrite = 1});
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
        ew_call c = {.op = (okto__op)(OKTO__OP_ZIP_ADD + op),
                     .expr = zip_rows[op].expr,
                     .flops = zip_rows[op].flops,
                     .out = out,
                     .a = a,
                     .b = scalar ? NULL : b,
                     .s = sv,
                     .out_mode = OKTO__W,
                     .scalar_b = scalar};
        s = ew_record(&r, &c);
    }
    if (s == OKTO_OK) {
        /* add and sub need no values; the rest read both operands */
        int linear = op == OKTO_ZIP_ADD || op == OKTO_ZIP_SUB ||
                     (scalar && (op == OKTO_ZIP_MUL || op == OKTO_ZIP_DIV));
        okto__ad_call c = {.op = (okto__op)(OKTO__OP_ZIP_ADD + op),
                           .nin = 2,
                           .nout = 1,
                           .t = {a, b, out},
                           .saved = linear ? 0 : scalar ? 1u : 3u,
                           .identity = op == OKTO_ZIP_ADD   ? 3u
                                       : op == OKTO_ZIP_SUB ? 1u
                                                            : 0u,
                           .overwrite = 1,
                           .f = {sv},
                           .i = {scalar}};
        if (scalar) /* one input: a */
            c.nin = 1, c.t[1] = out, c.t[2] = NULL;
        s = okto__ad_record(&r, &c);
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

/* ---- gradients -------------------------------------------------------------------------------- */

static okto_status check_flags(okto__rec *r, unsigned flags)
{
    if (flags & ~(unsigned)OKTO_ACCUMULATE)
        return okto__rec_fail(r, OKTO_EINVAL, "unknown flags 0x%x (OKTO_ACCUMULATE is the one)",
                              flags & ~(unsigned)OKTO_ACCUMULATE);
    return OKTO_OK;
}

/* out = expr, or out = d + expr with acc (d being out itself, read where it is written). */
static okto_status grad_record(okto__rec *r, okto__op op, const char *expr, double flops,
                               okto_tensor *out, const okto_tensor *a, const okto_tensor *b,
                               const okto_tensor *c, int acc)
{
    char e[384];
    snprintf(e, sizeof e, acc ? "d + (%s)" : "%s", expr);
    ew_call call = {.op = op,
                    .expr = e,
                    .flops = flops + acc,
                    .out = out,
                    .a = a,
                    .b = b,
                    .c = c,
                    .d = acc ? out : NULL,
                    .out_mode = acc ? OKTO__RW : OKTO__W};
    return ew_record(r, &call);
}

okto_status okto_map_backward(okto_graph *g, okto_tensor *dx, const okto_tensor *dy,
                              const okto_tensor *x, okto_map_op op, unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_MAPGRAD_RELU, "okto_map_backward");
    if (s == OKTO_OK && (unsigned)op >= OKTO_MAP_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_map_op", (int)op);
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dx, "dx", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, x, "x", OKTO__DT_FLOATS);
    if (s == OKTO_OK && (!okto__same_shape(dx, dy) || !okto__same_shape(dx, x)))
        s = okto__rec_fail(&r, OKTO_EINVAL, "dx is %s, dy is %s, x is %s: shapes differ",
                           OKTO__DESC(dx), OKTO__DESC(dy), OKTO__DESC(x));
    if (s == OKTO_OK && (dx->dtype != dy->dtype || dx->dtype != x->dtype))
        s = okto__rec_fail(&r, OKTO_EINVAL, "dx is %s, dy is %s, x is %s: dtypes differ",
                           OKTO__DESC(dx), OKTO__DESC(dy), OKTO__DESC(x));
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", dy, "dy", 1);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dx, "dx", x, "x", 1);
    if (s == OKTO_OK)
        s = grad_record(&r, (okto__op)(OKTO__OP_MAPGRAD_RELU + op), map_rows[op].grad[0],
                        map_rows[op].flops + 1, dx, x, dy, NULL, (flags & OKTO_ACCUMULATE) != 0);
    return okto__rec_end(&r, s);
}

/* out (shape broadcastable to in's) = in summed over the broadcast dimensions; with acc, +=. */
static okto_status sum_to(okto__rec *r, okto_tensor *out, const okto_tensor *in, int acc)
{
    okto_tensor cur = *in;
    okto_status s = OKTO_OK;
    int reduced = 0;
    for (int i = 0; i < in->rank && s == OKTO_OK; i++) {
        int j = i - (in->rank - out->rank);
        if (in->shape[i] == 1 || (j >= 0 && out->shape[j] != 1))
            continue;
        okto_tensor next;
        size_t shape[OKTO_MAX_RANK];
        memcpy(shape, cur.shape, sizeof shape);
        shape[i] = 1;
        if ((s = okto__rec_temp(r, in->dtype, in->rank, shape, &next)) == OKTO_OK)
            s = okto_reduce(r->g, &next, &cur, OKTO_REDUCE_SUM, i);
        cur = next;
        reduced = 1;
    }
    if (s != OKTO_OK)
        return s;
    /* cur has out's elements in out's order (a contiguous temporary, or in itself): seen in
     * out's shape, it is added or copied over */
    okto_tensor v = cur;
    if (reduced) {
        v.rank = out->rank;
        int64_t st = 1;
        for (int i = OKTO_MAX_RANK - 1; i >= 0; i--) {
            v.shape[i] = i < out->rank ? out->shape[i] : 1;
            v.stride[i] = i < out->rank ? st : 0;
            if (i < out->rank)
                st *= (int64_t)out->shape[i];
        }
    }
    if (acc) {
        ew_call call = {.op = OKTO__OP_AXPY,
                        .expr = "b + a",
                        .flops = 1,
                        .out = out,
                        .a = &v,
                        .b = out,
                        .out_mode = OKTO__RW};
        return ew_record(r, &call);
    }
    ew_call call = {.op = OKTO__OP_COPY, .expr = "a", .out = out, .a = &v, .out_mode = OKTO__W};
    return ew_record(r, &call);
}

/* out's shape broadcasts to in's (aligned at the end, each dimension equal or 1). */
static okto_status check_sum_to(okto__rec *r, const okto_tensor *out, const char *on,
                                const okto_tensor *in, const char *in_name)
{
    int ok = out->rank <= in->rank;
    for (int i = 0; ok && i < out->rank; i++) {
        size_t o = out->shape[i], n = in->shape[i + in->rank - out->rank];
        ok = o == n || o == 1;
    }
    if (!ok)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s, %s is %s: %s does not broadcast to %s", on,
                              OKTO__DESC(out), in_name, OKTO__DESC(in), on, in_name);
    return OKTO_OK;
}

okto_status okto_sum_to(okto_graph *g, okto_tensor *out, const okto_tensor *in, unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_SUM_TO, "okto_sum_to");
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, in, "in", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = same_dtype(&r, out, "out", in, "in");
    if (s == OKTO_OK)
        s = check_sum_to(&r, out, "out", in, "in");
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", in, "in", 0);
    if (s == OKTO_OK)
        s = sum_to(&r, out, in, (flags & OKTO_ACCUMULATE) != 0);
    if (s == OKTO_OK) {
        /* accumulating, out is an input too */
        int acc = (flags & OKTO_ACCUMULATE) != 0;
        okto__ad_call c = {.op = OKTO__OP_SUM_TO, .nin = 2, .nout = 1, .t = {in, out, out},
                           .identity = 2u};
        if (!acc)
            c.nin = 1, c.t[2] = NULL, c.overwrite = 1;
        s = okto__ad_record(&r, &c);
    }
    return okto__rec_end(&r, s);
}

okto_status okto_zip_backward(okto_graph *g, okto_tensor *da, okto_tensor *db,
                              const okto_tensor *dy, const okto_tensor *a, const okto_tensor *b,
                              okto_zip_op op, unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_ZIPGRAD_ADD, "okto_zip_backward");
    if (s == OKTO_OK && (unsigned)op >= OKTO_ZIP_COUNT)
        s = okto__rec_fail(&r, OKTO_EINVAL, "op %d is not an okto_zip_op", (int)op);
    if (s == OKTO_OK)
        s = check_flags(&r, flags);
    if (s == OKTO_OK && !da && !db)
        s = okto__rec_fail(&r, OKTO_EINVAL, "da and db are both NULL");
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dy, "dy", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, a, "a", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, b, "b", OKTO__DT_FLOATS);
    if (s == OKTO_OK && da)
        s = okto__rec_output(&r, da, "da", OKTO__DT_FLOATS);
    if (s == OKTO_OK && db)
        s = okto__rec_output(&r, db, "db", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_broadcast(&r, dy, a, b); /* dy has the result's shape */
    if (s == OKTO_OK && da && !okto__same_shape(da, a))
        s = okto__rec_fail(&r, OKTO_EINVAL, "a is %s but da is %s", OKTO__DESC(a), OKTO__DESC(da));
    if (s == OKTO_OK && db && !okto__same_shape(db, b))
        s = okto__rec_fail(&r, OKTO_EINVAL, "b is %s but db is %s", OKTO__DESC(b), OKTO__DESC(db));
    const okto_tensor *ins[3] = {dy, a, b};
    okto_tensor *outs[2] = {da, db};
    for (int i = 0; i < 3 && s == OKTO_OK; i++)
        for (int o = 0; o < 2 && s == OKTO_OK; o++)
            if (outs[o] && ins[i]->dtype != outs[o]->dtype)
                s = okto__rec_fail(&r, OKTO_EINVAL, "dtypes differ: %s and %s", OKTO__DESC(ins[i]),
                                   OKTO__DESC(outs[o]));
    for (int o = 0; o < 2 && s == OKTO_OK; o++)
        for (int i = 0; i < 3 && s == OKTO_OK; i++)
            if (outs[o])
                s = okto__rec_no_alias(&r, outs[o], o ? "db" : "da", ins[i],
                                       i == 0   ? "dy"
                                       : i == 1 ? "a"
                                                : "b",
                                       0);
    if (s == OKTO_OK && da && db)
        s = okto__rec_no_alias(&r, da, "da", db, "db", 0);
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    for (int o = 0; o < 2 && s == OKTO_OK; o++) {
        okto_tensor *d = outs[o];
        if (!d)
            continue;
        const char *expr = zip_rows[op].grad[o];
        okto__op gop = (okto__op)(OKTO__OP_ZIPGRAD_ADD + op);
        if (okto__same_shape(d, dy)) {
            s = grad_record(&r, gop, expr, zip_rows[op].flops + 1, d, a, b, dy, acc);
        } else {
            /* broadcast: the gradient at dy's shape, then summed down to d's */
            okto_tensor full;
            s = okto__rec_temp(&r, dy->dtype, dy->rank, dy->shape, &full);
            if (s == OKTO_OK)
                s = grad_record(&r, gop, expr, zip_rows[op].flops + 1, &full, a, b, dy, 0);
            if (s == OKTO_OK)
                s = sum_to(&r, d, &full, acc);
        }
    }
    return okto__rec_end(&r, s);
}

/* ---- gradient rules (lib/autograd) ------------------------------------------------------------ */
/* Each adds the gradient of its inputs (okto__grad_in, NULL when not wanted) from the gradient of
 * its output; in-place calls are the backward pass's business (it hands the rule buffers that
 * do not alias). */

/* dst = src (cast: converted): dsrc += ddst, in src's dtype */
static okto_status copy_grad(okto__grad *gr, const okto__ad_node *n)
{
    (void)n;
    okto_tensor *dx = okto__grad_in(gr, 0);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    okto_graph *g = okto__grad_graph(gr);
    if (!dx)
        return OKTO_OK;
    if (dx->dtype == dy->dtype)
        return okto_axpy(g, dx, 1.0f, dy);
    okto_tensor t;
    okto_status s = okto__grad_temp(gr, dx->dtype, dy->rank, dy->shape, &t);
    if (s == OKTO_OK)
        s = okto_cast(g, &t, dy);
    if (s == OKTO_OK)
        s = okto_axpy(g, dx, 1.0f, &t);
    return s;
}

/* x *= alpha */
static okto_status scale_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    return dx ? okto_axpy(okto__grad_graph(gr), dx, n->f[0], okto__grad_out(gr, 0)) : OKTO_OK;
}

/* y += alpha x (inputs x, y; output y) */
static okto_status axpy_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    okto_tensor *dx = okto__grad_in(gr, 0), *dy0 = okto__grad_in(gr, 1);
    okto_status s = dx ? okto_axpy(g, dx, n->f[0], dy) : OKTO_OK;
    if (s == OKTO_OK && dy0)
        s = okto_axpy(g, dy0, 1.0f, dy);
    return s;
}

static okto_status map_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dx = okto__grad_in(gr, 0);
    if (!dx)
        return OKTO_OK;
    return okto_map_backward(okto__grad_graph(gr), dx, okto__grad_out(gr, 0), &n->t[0],
                             (okto_map_op)(n->op - OKTO__OP_MAP_RELU), OKTO_ACCUMULATE);
}

static okto_status zip_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    okto_zip_op op = (okto_zip_op)(n->op - OKTO__OP_ZIP_ADD);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    okto_tensor *da = okto__grad_in(gr, 0), *db = n->i[0] ? NULL : okto__grad_in(gr, 1);
    const okto_tensor *a = &n->t[0];
    if (n->i[0]) { /* a (op) s */
        float sv = n->f[0];
        if (!da)
            return OKTO_OK;
        switch (op) {
        case OKTO_ZIP_ADD:
        case OKTO_ZIP_SUB: return okto_axpy(g, da, 1.0f, dy);
        case OKTO_ZIP_MUL: return okto_axpy(g, da, sv, dy);
        case OKTO_ZIP_DIV: return okto_axpy(g, da, 1.0f / sv, dy);
        default: break;
        }
        /* the rest through okto_zip_backward, s as a broadcast one-element tensor */
        okto_tensor one, b;
        okto_status s = okto__grad_temp(gr, a->dtype, 1, (size_t[]){1}, &one);
        if (s == OKTO_OK)
            s = okto_fill(g, &one, sv);
        okto__view_bcast(&one, a->rank, a->shape, &b);
        return s == OKTO_OK ? okto_zip_backward(g, da, NULL, dy, a, &b, op, OKTO_ACCUMULATE) : s;
    }
    const okto_tensor *b = &n->t[1];
    if (da && db && da->st == db->st && okto__views_overlap(da, db)) {
        /* x op x: the two contributions one after the other */
        okto_status s = okto_zip_backward(g, da, NULL, dy, a, b, op, OKTO_ACCUMULATE);
        return s == OKTO_OK ? okto_zip_backward(g, NULL, db, dy, a, b, op, OKTO_ACCUMULATE) : s;
    }
    if (!da && !db)
        return OKTO_OK;
    return okto_zip_backward(g, da, db, dy, a, b, op, OKTO_ACCUMULATE);
}

/* out = in summed down to out's shape (inputs in, and out when accumulating) */
static okto_status sum_to_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_graph *g = okto__grad_graph(gr);
    const okto_tensor *dy = okto__grad_out(gr, 0);
    okto_tensor *dx = okto__grad_in(gr, 0), *dy0 = n->nin > 1 ? okto__grad_in(gr, 1) : NULL;
    okto_status s = OKTO_OK;
    if (dx) {
        okto_tensor b;
        okto__view_bcast(dy, n->t[0].rank, n->t[0].shape, &b);
        s = okto_axpy(g, dx, 1.0f, &b);
    }
    if (s == OKTO_OK && dy0)
        s = okto_axpy(g, dy0, 1.0f, dy);
    return s;
}
