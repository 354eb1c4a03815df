/* pt_status.h - the status code every pulptrain C function returns.
 *
 * Kernels never abort, print or allocate: a bad argument is reported as a
 * status and nothing is written. The Python binding turns a non-OK status into
 * an exception carrying pt_status_str(). */
#ifndef PULPTRAIN_PT_STATUS_H
#define PULPTRAIN_PT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_status {
    PT_OK = 0,
    PT_ERR_NULL = 1,          /* a required pointer is NULL */
    PT_ERR_SHAPE = 2,         /* a dimension is zero, negative or inconsistent */
    PT_ERR_PARAM = 3,         /* stride, padding, bits, ... out of range */
    PT_ERR_SCRATCH = 4,       /* scratch buffer missing or smaller than *_scratch_bytes() */
    PT_ERR_THREADS = 5,       /* thread count out of range or the pool failed */
    PT_ERR_RANGE = 6,         /* an index or label out of range */
    PT_ERR_NONFINITE = 7,     /* NaN or Inf where the caller asked for finite values */
    PT_ERR_FORMAT = 8,        /* bad magic, version or layout in serialized data */
    PT_ERR_CHECKSUM = 9,      /* serialized data fails its checksum */
    PT_ERR_TRUNCATED = 10,    /* serialized data shorter than its header says */
    PT_ERR_OVERFLOW = 11,     /* a size computation would overflow */
    PT_ERR_BUDGET = 12,       /* nothing fits in the given memory budget */
    PT_ERR_UNSUPPORTED = 13   /* a valid request this build cannot serve */
} pt_status;

/* A static, human-readable description of a status (never NULL). */
const char *pt_status_str(pt_status status);

#ifdef __cplusplus
}
#endif
#endif
