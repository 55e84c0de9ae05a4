/* tools/train/utf8.h: strict UTF-8 decoding and encoding, shared by the JSON parser (safetensors
 * headers must be valid UTF-8) and the text corpus (characters are code points). Internal to
 * okto_trainutil. */
#ifndef OTU_UTF8_H
#define OTU_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s[0..n): returns its length (1-4) and sets *cp, or 0 when the
 * bytes there are not well-formed UTF-8 (a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate, beyond U+10FFFF). n must be >= 1. */
size_t otu__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* Encodes cp (<= U+10FFFF, not a surrogate) into out[0..4); returns its length, 0 if cp is not
 * a scalar value. */
size_t otu__utf8_encode(uint32_t cp, char out[4]);
/* The offset of the first ill-formed byte in s[0..n), or n when all of it is valid. */
size_t otu__utf8_check(const char *s, size_t n);

#endif
