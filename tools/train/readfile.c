/* tools/train/readfile.c: whole-file reads through zlib's gzread, which passes files that are
 * not gzip through unchanged (gzdirect), so every reader takes .gz for free. */
#include "readfile.h"

#include "status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int otu__read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL;
    *len = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return otu__err(OTU_EIO, err, errlen, "%s: %s", path,
                        errno ? strerror(errno) : "cannot open (out of memory)");
    size_t n = 0, cap = 1 << 16;
    char *b = malloc(cap + 1);
    if (!b) {
        gzclose(gz);
        return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - n < (1 << 16)) {
            if (cap > ((size_t)-1) / 4) {
                free(b);
                gzclose(gz);
                return otu__err(OTU_ENOMEM, err, errlen, "%s: too large", path);
            }
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) {
                free(b);
                gzclose(gz);
                return otu__err(OTU_ENOMEM, err, errlen, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        /* gzread takes an unsigned count; 64 KiB at a time stays far below its limit. */
        int r = gzread(gz, b + n, 1 << 16);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            int s = otu__err(OTU_EIO, err, errlen, "%s: %s", path,
                             zerr == Z_ERRNO ? strerror(errno) : msg);
            free(b);
            gzclose(gz);
            return s;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    /* A truncated gzip stream reads as a short file plus an error at close. */
    int zc = gzclose(gz);
    if (zc != Z_OK) {
        free(b);
        return otu__err(OTU_EIO, err, errlen, "%s: %s", path,
                        zc == Z_BUF_ERROR ? "truncated gzip data" : "read error at close");
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return OTU_OK;
}
