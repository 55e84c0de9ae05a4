/* tools/train/status.c: the status table's names and messages, and the message helpers the
 * other files use to write "file:line: problem" into the caller's buffer. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *otu_status_name(int status)
{
    switch (status) {
#define OTU_STATUS_NAME_(name, value, msg)                                                         \
    case (value): return "OTU_" #name;
        OTU_STATUS_MAP(OTU_STATUS_NAME_)
#undef OTU_STATUS_NAME_
    default: return "OTU_UNKNOWN";
    }
}

const char *otu_status_str(int status)
{
    switch (status) {
#define OTU_STATUS_STR_(name, value, msg)                                                          \
    case (value): return "OTU_" #name ": " msg;
        OTU_STATUS_MAP(OTU_STATUS_STR_)
#undef OTU_STATUS_STR_
    default: return "OTU_UNKNOWN: unknown status";
    }
}

int otu__err(int status, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *otu__quote(const char *s, size_t len, size_t max, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return buf;
        /* Worst case per source byte is 4 output bytes (\xHH); keep room for `..."` and NUL. */
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < cap)                                                                           \
            buf[o++] = (c);                                                                        \
    } while (0)
    PUT('"');
    size_t i;
    for (i = 0; i < len && i < max && o + 9 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            PUT('\\');
            PUT((char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            static const char hex[] = "0123456789abcdef";
            PUT('\\');
            PUT('x');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            PUT((char)c);
        }
    }
    if (i < len) {
        PUT('.');
        PUT('.');
        PUT('.');
    }
    PUT('"');
#undef PUT
    buf[o] = '\0';
    return buf;
}
