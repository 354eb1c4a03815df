/* Argument parsing shared by the native benchmark binaries. */
#ifndef PULPTRAIN_BENCH_ARGS_H
#define PULPTRAIN_BENCH_ARGS_H

#include <stdio.h>
#include <stdlib.h>

/* value as an integer in [lo, hi]; anything else (no value, trailing
 * characters, out of range) is reported as `prog: flag ...` and exits 2. */
static inline int bench_parse_int(const char *prog, const char *flag, const char *value, int lo, int hi)
{
    char *end = NULL;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || end == value || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s must be an integer in [%d, %d], got %s\n", prog, flag, lo, hi,
                value ? value : "nothing");
        exit(2);
    }
    return (int)v;
}

#endif
