/* tools/train/config.h: a run's settings, from a config file and the command line.
 *
 * File format (one setting per line):
 *
 *     # a whole-line comment
 *     model   = mlp            # a trailing comment
 *     layers  = 64,256,10
 *     out     = "runs/a b.st"  # quotes keep spaces and '#'; escapes \" \\ \n \t
 *     learning-rate = 0.05     # '-' and '_' are the same in keys
 *
 * - Whitespace around keys and values is trimmed; blank lines are skipped; "\r\n" is accepted.
 * - An unquoted value ends at the first '#'; it may contain '=' and inner spaces. An unquoted
 *   empty value (`key =`) is an error; `key = ""` is the empty string.
 * - Keys are letters, digits, '_', '-' and '.', starting with a letter or '_'; '-' is stored as
 *   '_' (normalised), so the file's `learning_rate` and the flag `--learning-rate` are one key.
 * - A key set twice in the same file: the later line wins and the entry's `dup_line` says
 *   which earlier line it replaced (otu_config_warn_duplicates prints it). A later file or a
 *   command-line flag overriding a key is not a duplicate: that is what they are for.
 *
 * The store keeps every entry with where it came from, so every error names "file:line", and
 * tracks which keys the program read (each getter marks its key used): after reading all it
 * knows, the program reports the rest as unknown (`run.cfg:7: unknown key "lr_decay"`).
 *
 * Ownership: otu_config_create makes a store that otu_config_destroy frees; every string the
 * store returns (keys, values, origins) is owned by it and stays valid until the entry's value
 * is replaced (a later set of that key) or the store is destroyed. Not thread-safe: one store
 * belongs to one thread at a time (getters write the `used` marks). */
#ifndef OTU_CONFIG_H
#define OTU_CONFIG_H

#include "status.h"

#include <stddef.h>
#include <stdio.h>

typedef struct otu_config otu_config;

typedef struct otu_config_entry {
    const char *key;    /* normalised: '-' stored as '_' */
    const char *value;  /* unquoted, escapes resolved */
    const char *origin; /* the file's path as given, or "command line" */
    int line;           /* 1-based line in origin; for a flag, its index in argv */
    int from_args;      /* 1 when the last setting came from otu_config_args */
    int dup_line;       /* > 0: the same file set this key earlier at that line (replaced) */
    int used;           /* a getter or otu_config_mark_used read it */
} otu_config_entry;

/* OTU_OK or OTU_ENOMEM. */
int otu_config_create(otu_config **out);
/* NULL is a no-op. */
void otu_config_destroy(otu_config *c);

/* Parses the file at path into the store (later settings win over earlier ones, also over a
 * file loaded before). Errors: OTU_EIO (cannot open or read: "path: strerror"), OTU_EPARSE
 * ("path:line: problem near token"), OTU_ENOMEM. On error, settings of lines before the bad
 * one stay in the store. */
int otu_config_load(otu_config *c, const char *path, char *err, size_t errlen);
/* The same for text[0..len) in memory; `origin` names it in messages and entries (copied). */
int otu_config_parse(otu_config *c, const char *origin, const char *text, size_t len, char *err,
                     size_t errlen);

/* Merges command-line flags argv[1..argc) into the store, overriding the file:
 * `--key value`, `--key=value`, and a bare `--key` (last, or followed by another `--...`
 * argument) which means `--key=true`. Keys are normalised as in the file. Arguments that are
 * not flags (including "-" and everything after "--") are positional: they are moved, in order,
 * to argv[1..*npositional] (argv[0] stays), so the caller finds e.g. the config file's path
 * there. A single-dash argument other than "-" or a negative number is an error (OTU_EPARSE,
 * "command line: argv[2] "-x": flags take two dashes, as in --key value"), as is an invalid
 * key. Entries made here have origin "command line", line = the flag's argv index. */
int otu_config_args(otu_config *c, int argc, char **argv, int *npositional, char *err,
                    size_t errlen);

/* Sets key = value directly (both copied; key normalised), as from origin:line. */
int otu_config_set(otu_config *c, const char *key, const char *value, const char *origin, int line,
                   char *err, size_t errlen);

/* ---- lookup and iteration ---------------------------------------------------------------- */
/* Entries in the order their keys first appeared. i < otu_config_count. */
size_t otu_config_count(const otu_config *c);
const otu_config_entry *otu_config_at(const otu_config *c, size_t i);
/* The entry of key (normalised before lookup), or NULL. Does not mark it used. */
const otu_config_entry *otu_config_find(const otu_config *c, const char *key);
/* Marks key used (for keys a program accepts but reads in its own way); 0 if absent. */
int otu_config_mark_used(otu_config *c, const char *key);
/* "run.cfg:12" or "command line --lr" (argv form) into buf; returns buf. */
const char *otu_config_where(const otu_config_entry *e, char *buf, size_t len);

/* Prints `origin:line: unknown key "foo"` for each entry never read; returns their count. */
size_t otu_config_report_unused(const otu_config *c, FILE *out);
/* Prints `origin:line: duplicate key "lr" replaces line 3` for each entry with dup_line;
 * returns their count. */
size_t otu_config_warn_duplicates(const otu_config *c, FILE *out);

/* ---- typed getters -----------------------------------------------------------------------
 * Each returns 1 when the key is set and its value is valid (*out written, the key marked
 * used), 0 when the key is absent (*out untouched: set it to the default first), or a negative
 * status when the value is invalid (*out untouched, the key marked used so it is not also
 * reported unknown), with "origin:line: key "k": problem, got "token"" in err. */

/* The value itself, owned by the store. */
int otu_config_string(otu_config *c, const char *key, const char **out, char *err, size_t errlen);
/* A decimal integer (optional sign) in [min, max]: OTU_EPARSE if it is not one ("1e3",
 * "12abc"), OTU_ERANGE outside the range or long. */
int otu_config_long(otu_config *c, const char *key, long min, long max, long *out, char *err,
                    size_t errlen);
/* A finite number (strtod syntax, "nan"/"inf" rejected) in [min, max]. */
int otu_config_double(otu_config *c, const char *key, double min, double max, double *out,
                      char *err, size_t errlen);
/* true/false, yes/no, 1/0 (case-insensitive) -> 1/0. */
int otu_config_bool(otu_config *c, const char *key, int *out, char *err, size_t errlen);
/* A comma-separated list of integers in [min, max] ("2,256,10", spaces around items allowed),
 * at most cap of them, into out[0..*n). An empty item or more than cap items is OTU_EPARSE /
 * OTU_ERANGE naming the item. */
int otu_config_ints(otu_config *c, const char *key, long min, long max, int *out, size_t cap,
                    size_t *n, char *err, size_t errlen);

#endif
