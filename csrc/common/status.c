#include "pulptrain/pt_status.h"

const char *pt_status_str(pt_status status)
{
    switch (status) {
    case PT_OK: return "ok";
    case PT_ERR_NULL: return "a required pointer is NULL";
    case PT_ERR_SHAPE: return "a dimension is zero, negative or inconsistent";
    case PT_ERR_PARAM: return "a parameter is out of range";
    case PT_ERR_SCRATCH: return "scratch buffer missing or too small";
    case PT_ERR_THREADS: return "thread count out of range or thread pool failure";
    case PT_ERR_RANGE: return "an index or label is out of range";
    case PT_ERR_NONFINITE: return "NaN or Inf in the input";
    case PT_ERR_FORMAT: return "bad magic, version or layout";
    case PT_ERR_CHECKSUM: return "checksum mismatch";
    case PT_ERR_TRUNCATED: return "data is truncated";
    case PT_ERR_OVERFLOW: return "size computation overflows";
    case PT_ERR_BUDGET: return "does not fit in the memory budget";
    case PT_ERR_UNSUPPORTED: return "not supported by this build";
    }
    return "unknown status";
}
