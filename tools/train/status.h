/* tools/train/status.h: the one error channel of okto's training utilities (okto_trainutil).
 *
 * These utilities (config files, safetensors, data sets, progress) are host-only C11 and use
 * nothing of okto's library, so the trainer's front end can change without touching lib/ and
 * the other way round. Every call that can fail returns an otu_status: 0 on success, a
 * negative code on failure, and writes one line into the caller's message buffer `err` of
 * `errlen` bytes (NULL/0 is allowed when the caller does not want it), naming the file and
 * line (or byte offset) and the offending token, e.g.
 *
 *     run.cfg:12: key "lr": expected a number, got "fast"
 *
 * Messages are cut to fit the buffer (always NUL-terminated); offending tokens are quoted and
 * cut after 40 bytes, so 256 bytes hold the whole message for paths of ordinary length. A few
 * calls return counts or found/absent (>= 0) on success; their headers say so. All functions are reentrant: no globals, no hidden state. */
#ifndef OTU_STATUS_H
#define OTU_STATUS_H

#include <stddef.h>

/* One table: the enum, the names and the messages are generated from it, so they cannot
 * drift apart (libuv's UV_ERRNO_MAP). */
#define OTU_STATUS_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(EPARSE, -4, "malformed input")                                                               \
    X(ERANGE, -5, "value out of range")                                                            \
    X(ENOTFOUND, -6, "not found")                                                                  \
    X(EMISMATCH, -7, "dtype or shape mismatch")                                                    \
    X(ENONFINITE, -8, "loss is not finite")                                                        \
    X(ESTALL, -9, "loss did not move")

typedef enum otu_status {
#define OTU_STATUS_ENUM_(name, value, msg) OTU_##name = (value),
    OTU_STATUS_MAP(OTU_STATUS_ENUM_)
#undef OTU_STATUS_ENUM_
} otu_status;

/* "OTU_EPARSE"; a static string, "OTU_UNKNOWN" for a code not in the table. */
const char *otu_status_name(int status);
/* "OTU_EPARSE: malformed input"; static, never NULL. */
const char *otu_status_str(int status);

/* ---- for the other files of okto_trainutil only ------------------------------------------ */
/* snprintf into err (when err && errlen) and return `status`, so a failure is one line:
 * `return otu__err(OTU_EPARSE, err, errlen, "%s:%d: ...", path, line);` */
int otu__err(int status, char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Writes s[0..len) as a double-quoted token into buf (always NUL-terminated): '"' and '\\'
 * escaped, control and non-ASCII bytes as \xHH, and cut with "..." after `max` source bytes,
 * so a message can show the offending token without a 10 kB line or a terminal escape in it.
 * Returns buf. */
const char *otu__quote(const char *s, size_t len, size_t max, char *buf, size_t cap);
enum { OTU__QUOTE_MAX = 40, OTU__QUOTE_CAP = 4 * 40 + 8 };

#endif
