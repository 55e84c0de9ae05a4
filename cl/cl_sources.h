/* cl/cl_sources.h: the embedded cl/ sources (cl/embed.py writes the table at build time). */
#ifndef OKTO_CL_SOURCES_H
#define OKTO_CL_SOURCES_H

typedef struct okto__cl_file {
    const char *name;            /* file stem: "reduce", "common" */
    const char *const *lines;
    unsigned nlines;
} okto__cl_file;

extern const okto__cl_file okto__cl_files[];
extern const unsigned okto__cl_nfiles;

#endif
