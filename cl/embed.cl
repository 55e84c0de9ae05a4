/* cl/embed.cl: embedding lookup. table [vocab, dim] (OKTO_T, row-major), ids int32 [ntok],
 * out / dout [ntok, dim] (OKTO_T), dtable [vocab, dim] (OKTO_T).
 *
 * Forward: out[t, :] = table[ids[t], :]; an id outside [0, vocab) writes a zero row and sets the
 * int32 flag: flag[0] = 1 (atomic_or), flag[1] = min(flag[1], t) (atomic_min: the first bad
 * token, deterministically). The host sets flag = {0, INT_MAX} once; the flag is sticky.
 *
 * Backward: dtable[v, :] (+)= sum over the tokens t with ids[t] == v, in increasing t, of
 * dout[t, :]. Deterministic: no float atomics, and each output element is one work item's sum
 * in one fixed order, whatever the launch. Two kernels, as a counting sort then a gather:
 *   okto_embed_bwd_sort  one work-group: start[v] = number of tokens with an id below v (an
 *                        exclusive scan of the histogram of ids; start[vocab] = the number of
 *                        tokens sorted), then order[start[v] ..] = the tokens with id v in
 *                        increasing t: a stable counting sort, so the order does not depend on
 *                        timing. The scatter walks the tokens in tiles of L; an item's rank
 *                        among its tile's equal ids comes from comparing with the tile in
 *                        local memory, and the last of them advances cursor[v], so no atomic
 *                        decides an order. (The histogram uses atomic_inc on int: integer
 *                        counts are the same whatever the order.)
 *   okto_embed_bwd_sum   2-D, an item per element of dtable: sums dout[order[j], d] over its
 *                        id's segment j in [start[v], start[v + 1]), compensated, and writes
 *                        (or adds) it; ids with no tokens write 0 (nothing when accumulating).
 * Why this and not one item per column walking all tokens: that has only dim items of
 * parallelism, each doing ntok read-modify-writes scattered over the table, and needs dtable
 * zeroed first. Here the sum is fully parallel (vocab * dim items, dout read once in all, every
 * dtable element written once), and the serial part is the single-group sort: O(ntok + vocab)
 * global traffic and O(ntok) local-memory compares per item (64k tokens: 64k compares per
 * item, well under a millisecond on a GPU's one compute unit; a CPU runs it with L = 1, a
 * plain sequential counting sort). The cost of a frequent id is its segment length per item
 * of its row (a padding token is the usual one: pass it as padding_idx, which is skipped).
 *
 * padding_idx: tokens with that id add nothing to dtable (its row gets 0, or keeps its value
 * when accumulating), as torch.nn.Embedding(padding_idx=); -1 (or any id outside the table)
 * for none. Out-of-range ids are skipped by the backward (and flagged again).
 *
 * Scratch (int32, the host's): start [vocab + 1], cursor [vocab], order [ntok]. Needs
 * ntok < 2^31 (positions are int). */

#define OKTO_EMB_MAXL 256

inline void okto_emb_kadd(float *s, float *k, float v)
{
    float y = v - *k, t = *s + y;
    *k = isfinite(t) ? (t - *s) - y : 0.0f;
    *s = t;
}

inline void okto_emb_flag(__global int *flag, ulong flag_off, ulong t)
{
    atomic_or(flag + flag_off, 1);
    atomic_min(flag + flag_off + 1, (int)min(t, (ulong)INT_MAX));
}

/* out[t, d] = table[ids[t], d]. 2-D, one item per element: dimension 0 the column d
 * (global0 >= dim), dimension 1 the token t (global1 >= ntok); any local size. */
__kernel void okto_embed_fwd(__global const OKTO_T *table, ulong table_off, __global const int *ids,
                             ulong ids_off, __global OKTO_T *out, ulong out_off, ulong ntok,
                             ulong vocab, ulong dim, __global int *flag, ulong flag_off)
{
    ulong d = get_global_id(0), t = get_global_id(1);
    if (d >= dim || t >= ntok)
        return;
    int id = ids[ids_off + t];
    float v = 0.0f;
    if (id >= 0 && (ulong)id < vocab)
        v = OKTO_LD(table, table_off + (ulong)id * dim + d);
    else if (d == 0)
        okto_emb_flag(flag, flag_off, t);
    OKTO_ST(out, out_off + t * dim + d, v);
}

/* The stable counting sort of the tokens by id (see above). One work-group: global = local = L,
 * any L from 1 to 256; groups past the first return at once. */
__kernel void okto_embed_bwd_sort(__global const int *ids, ulong ids_off, ulong ntok, ulong vocab,
                                  int padding_idx, __global int *start, ulong start_off,
                                  __global int *cursor, ulong cursor_off, __global int *order,
                                  ulong order_off, __global int *flag, ulong flag_off)
{
    __local int tile[OKTO_EMB_MAXL];
    __local uint part[OKTO_EMB_MAXL];
    if (get_group_id(0) != 0)
        return;
    int lid = (int)get_local_id(0), l = (int)get_local_size(0);
    __global int *st = start + start_off, *cur = cursor + cursor_off;

    /* histogram of the ids that take part, in start[0 .. vocab) */
    for (ulong v = lid; v <= vocab; v += l)
        st[v] = 0;
    barrier(CLK_GLOBAL_MEM_FENCE);
    for (ulong t = lid; t < ntok; t += l) {
        int id = ids[ids_off + t];
        if (id < 0 || (ulong)id >= vocab)
            okto_emb_flag(flag, flag_off, t);
        else if (id != padding_idx)
            atomic_inc(st + id);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);

    /* exclusive scan: item i owns ids [i * chunk, (i + 1) * chunk) */
    ulong chunk = (vocab + l - 1) / l, v0 = min(lid * chunk, vocab), v1 = min(v0 + chunk, vocab);
    uint sum = 0;
    for (ulong v = v0; v < v1; v++)
        sum += (uint)st[v];
    part[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        uint run = 0;
        for (int i = 0; i < l; i++) {
            uint c = part[i];
            part[i] = run;
            run += c;
        }
        st[vocab] = (int)run;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint base = part[lid];
    for (ulong v = v0; v < v1; v++) {
        uint c = (uint)st[v];
        st[v] = (int)base;
        cur[v] = (int)base;
        base += c;
    }
    barrier(CLK_GLOBAL_MEM_FENCE);

    /* stable scatter, a tile of L tokens at a time, in token order */
    for (ulong t0 = 0; t0 < ntok; t0 += l) {
        ulong t = t0 + lid;
        int id = t < ntok ? ids[ids_off + t] : -1;
        if (id < 0 || (ulong)id >= vocab || id == padding_idx)
            id = -1;
        tile[lid] = id;
        barrier(CLK_LOCAL_MEM_FENCE);
        int rank = 0, last = 1, n = (int)min((ulong)l, ntok - t0);
        if (id >= 0)
            for (int j = 0; j < n; j++)
                if (tile[j] == id) {
                    rank += j < lid;
                    last &= j <= lid;
                }
        if (id >= 0)
            order[order_off + cur[id] + rank] = (int)t;
        barrier(CLK_GLOBAL_MEM_FENCE); /* every item has read cur[] before it moves */
        if (id >= 0 && last)
            cur[id] += rank + 1;
        barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE); /* cur[] and tile[] reused */
    }
}

/* dtable[v, d] (+)= sum over j in [start[v], start[v + 1]) of dout[order[j], d], in j order.
 * 2-D, one item per element: dimension 0 the column d (global0 >= dim), dimension 1 the id v
 * (global1 >= vocab); any local size. */
__kernel void okto_embed_bwd_sum(__global const OKTO_T *dout, ulong dout_off,
                                 __global const int *start, ulong start_off,
                                 __global const int *order, ulong order_off,
                                 __global OKTO_T *dtable, ulong dtable_off, ulong vocab, ulong dim,
                                 int accumulate)
{
    ulong d = get_global_id(0), v = get_global_id(1);
    if (d >= dim || v >= vocab)
        return;
    int j0 = start[start_off + v], j1 = start[start_off + v + 1];
    if (accumulate && j0 == j1)
        return;
    float s = 0.0f, k = 0.0f;
    for (int j = j0; j < j1; j++)
        okto_emb_kadd(&s, &k, OKTO_LD(dout, dout_off + (ulong)order[order_off + j] * dim + d));
    float g = s - k;
    if (accumulate)
        g += OKTO_LD(dtable, dtable_off + v * dim + d);
    OKTO_ST(dtable, dtable_off + v * dim + d, g);
}
