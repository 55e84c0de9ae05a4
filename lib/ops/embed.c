/* lib/ops/embed.c: okto_embedding (a row gather) and okto_embedding_backward (the scatter-add
 * of the gradient, deterministic). Kernels in cl/embed.cl.
 *
 * The forward is one item per element, split by tokens across the compute lanes, each part with
 * its own check flag for ids out of range ({set, first bad token}, reported by the run with the
 * part's first token added). The backward is the kernels' stable counting sort (one work-group:
 * start / cursor / order scratch in graph-owned int32 temporaries) and then a segmented sum, one
 * item per dtable element, split by table rows across the lanes: every dtable element is one
 * item's sum in increasing token order, so the bits never depend on timing. */
#include "rowkit.h"

static okto_status embed_grad(okto__grad *gr, const okto__ad_node *n);

const okto__op_desc okto__desc_EMBEDDING = {.backward = embed_grad,
                                            .name = "embedding",
                                            .family = "embed",
                                            .dtypes = OKTO__DT_FLOATS,
                                            .layouts = "any strides (copied); ids i32",
                                            .partitioned = 1};
const okto__op_desc okto__desc_EMBEDDING_BACKWARD = {
    .name = "embedding.backward",
    .family = "embed",
    .dtypes = OKTO__DT_FLOATS,
    .layouts = "any strides (copied); ids i32; sorted, not atomic",
    .partitioned = 1};

static const char bad_id[] = "token %d has an id outside [0, %d)";

/* table (or dtable) [vocab, dim], ids (ntok), rows (out or dout: ntok rows of dim). */
static okto_status check_args(okto__rec *r, const okto_tensor *table, const char *tname,
                              const okto_tensor *rowsv, const char *rname, const okto_tensor *ids,
                              size_t *vocab, size_t *dim, size_t *ntok)
{
    okto_status s = okto__rec_tensor(r, ids, "ids", OKTO__DT_BIT(OKTO_I32));
    if (s != OKTO_OK)
        return s;
    if (table->rank != 2)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s; it must be [vocab, dim]", tname,
                              OKTO__DESC(table));
    *vocab = table->shape[0], *dim = table->shape[1], *ntok = okto__numel(ids);
    if (*vocab > 2147483647u || *ntok > 2147483647u)
        return okto__rec_fail(r, OKTO_EINVAL, "%s is %s and ids %s: sizes must stay below 2^31",
                              tname, OKTO__DESC(table), OKTO__DESC(ids));
    if (rowsv->dtype != table->dtype || rowsv->shape[rowsv->rank - 1] != *dim ||
        okto__numel(rowsv) != *ntok * *dim)
        return okto__rec_fail(r, OKTO_EINVAL,
                              "%s is %s and ids %s (%zu tokens) but %s is %s (expected %zu rows "
                              "of %s[%zu])",
                              tname, OKTO__DESC(table), OKTO__DESC(ids), *ntok, rname,
                              OKTO__DESC(rowsv), *ntok, okto_dtype_name(table->dtype), *dim);
    return OKTO_OK;
}

okto_status okto_embedding(okto_graph *g, okto_tensor *out, const okto_tensor *table,
                           const okto_tensor *ids)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_EMBEDDING, "okto_embedding");
    size_t vocab = 0, dim = 0, ntok = 0;
    if (s == OKTO_OK)
        s = okto__rec_output(&r, out, "out", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, table, "table", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_args(&r, table, "table", out, "out", ids, &vocab, &dim, &ntok);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", table, "table", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, out, "out", ids, "ids", 0);
    okto_tensor tab, id1;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, table, &tab);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, ids, &id1);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, out, 1, 0, &o);
    int nparts = s == OKTO_OK ? okto__rec_parts(&r, ntok, (double)ntok * (double)dim) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t t0 = okto__part_row(ntok, p, nparts), t1 = okto__part_row(ntok, p + 1, nparts);
        okto_tensor ii, oi, fi;
        if ((s = okto__rk_flag(&r, bad_id, (int)vocab, 0, (int)t0, &fi)) != OKTO_OK)
            break;
        okto__view_flat(&id1, t0, t1, &ii);
        okto__view_slice(&o.m, 0, t0, t1 - t0, &oi);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_EMBEDDING);
        okto__tb_kernel(&t, "embed", table->dtype, NULL, "okto_embed_fwd");
        okto__tb_arg_tensor(&t, &tab);
        okto__tb_arg_tensor(&t, &ii);
        okto__tb_arg_tensor(&t, &oi);
        okto__tb_arg_ulong(&t, t1 - t0);
        okto__tb_arg_ulong(&t, vocab);
        okto__tb_arg_ulong(&t, dim);
        okto__tb_arg_tensor(&t, &fi);
        okto__rk_range_2d(&t, dim, t1 - t0);
        okto__tb_access(&t, &tab, OKTO__R);
        okto__tb_access(&t, &ii, OKTO__R);
        okto__tb_access(&t, &oi, OKTO__W);
        okto__tb_access(&t, &fi, OKTO__RW);
        double n = (double)(t1 - t0) * (double)dim;
        okto__tb_cost(&t, n, 2 * n * (double)okto_dtype_size(table->dtype),
                      ((uint64_t)(t1 - t0) << 32) ^ (uint64_t)dim);
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    if (s == OKTO_OK)
        s = okto__ad_record(&r, &(okto__ad_call){.op = OKTO__OP_EMBEDDING, .nin = 1, .nout = 1,
                                                 .naux = 1, .t = {table, out, ids},
                                                 .saved = 4u, .overwrite = 1});
    return okto__rec_end(&r, s);
}

static okto_status embed_grad(okto__grad *gr, const okto__ad_node *n)
{
    okto_tensor *dt = okto__grad_in(gr, 0);
    if (!dt)
        return OKTO_OK;
    return okto_embedding_backward(okto__grad_graph(gr), dt, okto__grad_out(gr, 0), &n->t[2], -1,
                                   OKTO_ACCUMULATE);
}

okto_status okto_embedding_backward(okto_graph *g, okto_tensor *dtable, const okto_tensor *dout,
                                    const okto_tensor *ids, int padding_idx, unsigned flags)
{
    okto__rec r;
    okto_status s = okto__rec_begin(&r, g, OKTO__OP_EMBEDDING_BACKWARD, "okto_embedding_backward");
    int acc = (flags & OKTO_ACCUMULATE) != 0;
    size_t vocab = 0, dim = 0, ntok = 0;
    if (s == OKTO_OK)
        s = okto__rk_flags(&r, flags);
    if (s == OKTO_OK)
        s = okto__rec_output(&r, dtable, "dtable", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = okto__rec_tensor(&r, dout, "dout", OKTO__DT_FLOATS);
    if (s == OKTO_OK)
        s = check_args(&r, dtable, "dtable", dout, "dout", ids, &vocab, &dim, &ntok);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dtable, "dtable", dout, "dout", 0);
    if (s == OKTO_OK)
        s = okto__rec_no_alias(&r, dtable, "dtable", ids, "ids", 0);
    okto_tensor dy, id1, start, cursor, order, flag;
    okto__rk_out o = {0};
    if (s == OKTO_OK)
        s = okto__rk_in2d(&r, dout, &dy);
    if (s == OKTO_OK)
        s = okto__rk_in1d(&r, ids, &id1);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_I32, 1, (size_t[]){vocab + 1}, &start);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_I32, 1, (size_t[]){vocab}, &cursor);
    if (s == OKTO_OK)
        s = okto__rec_temp(&r, OKTO_I32, 1, (size_t[]){ntok}, &order);
    if (s == OKTO_OK)
        s = okto__rk_flag(&r, bad_id, (int)vocab, 0, 0, &flag);
    if (s == OKTO_OK)
        s = okto__rk_out_begin(&r, dtable, 1, acc, &o);
    if (s == OKTO_OK) { /* the stable counting sort: one work-group */
        size_t l;
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_EMBEDDING_BACKWARD);
        okto__tb_kernel(&t, "embed", dout->dtype, NULL, "okto_embed_bwd_sort");
        if ((s = t.status) == OKTO_OK && (s = okto__rk_local(&r, t.kid, ntok, &l)) == OKTO_OK) {
            okto__tb_arg_tensor(&t, &id1);
            okto__tb_arg_ulong(&t, ntok);
            okto__tb_arg_ulong(&t, vocab);
            okto__tb_arg_int(&t, padding_idx);
            okto__tb_arg_tensor(&t, &start);
            okto__tb_arg_tensor(&t, &cursor);
            okto__tb_arg_tensor(&t, &order);
            okto__tb_arg_tensor(&t, &flag);
            okto__rk_range_one(&t, l);
            okto__tb_access(&t, &id1, OKTO__R);
            okto__tb_access(&t, &start, OKTO__W);
            okto__tb_access(&t, &cursor, OKTO__W);
            okto__tb_access(&t, &order, OKTO__W);
            okto__tb_access(&t, &flag, OKTO__RW);
            okto__tb_cost(&t, 4.0 * (double)(ntok + vocab), 12.0 * (double)(ntok + vocab),
                          ((uint64_t)ntok << 32) ^ (uint64_t)vocab);
            s = okto__tb_commit(&t);
        }
    }
    int nparts =
        s == OKTO_OK ? okto__rec_parts(&r, vocab, (double)(vocab + ntok) * (double)dim) : 0;
    for (int p = 0; p < nparts && s == OKTO_OK; p++) {
        size_t v0 = okto__part_row(vocab, p, nparts), v1 = okto__part_row(vocab, p + 1, nparts);
        okto_tensor si, oi;
        okto__view_flat(&start, v0, v1 + 1, &si);
        okto__view_slice(&o.m, 0, v0, v1 - v0, &oi);
        okto__tb t;
        okto__tb_init(&t, &r, OKTO__OP_EMBEDDING_BACKWARD);
        okto__tb_kernel(&t, "embed", dout->dtype, NULL, "okto_embed_bwd_sum");
        okto__tb_arg_tensor(&t, &dy);
        okto__tb_arg_tensor(&t, &si);
        okto__tb_arg_tensor(&t, &order);
        okto__tb_arg_tensor(&t, &oi);
        okto__tb_arg_ulong(&t, v1 - v0);
        okto__tb_arg_ulong(&t, dim);
        okto__tb_arg_int(&t, acc);
        okto__rk_range_2d(&t, dim, v1 - v0);
        okto__tb_access(&t, &dy, OKTO__R);
        okto__tb_access(&t, &si, OKTO__R);
        okto__tb_access(&t, &order, OKTO__R);
        okto__tb_access(&t, &oi, acc ? OKTO__RW : OKTO__W);
        double n = (double)(v1 - v0) * (double)dim;
        okto__tb_cost(&t, n + (double)ntok * (double)dim / nparts,
                      (2 * n + (double)ntok * (double)dim / nparts) *
                          (double)okto_dtype_size(dout->dtype),
                      ((uint64_t)(v1 - v0) << 32) ^ (uint64_t)dim ^ ((uint64_t)ntok << 48));
        okto__tb_part(&t, p, nparts);
        s = okto__tb_commit(&t);
    }
    s = okto__rk_out_end(&r, &o, s);
    return okto__rec_end(&r, s);
}
