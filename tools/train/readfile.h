/* tools/train/readfile.h: reading a whole input file into memory, gzip or not. Internal to
 * okto_trainutil: the config, CSV and corpus readers all take their input in one piece, which
 * keeps their parsers simple and bounds-checked (inputs are small next to the model). */
#ifndef OTU_READFILE_H
#define OTU_READFILE_H

#include <stddef.h>

/* Reads path into a new buffer *buf (*len bytes, plus a NUL after them that is not counted),
 * through zlib, so a gzip file comes back decompressed and any other file as it is. Free *buf
 * with free(). Errors: OTU_EIO ("path: strerror" or zlib's message), OTU_ENOMEM. */
int otu__read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

#endif
