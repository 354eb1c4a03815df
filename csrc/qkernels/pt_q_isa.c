/* Run-time choice of the INT8 kernel path: AVX-512 VNNI, else AVX-VNNI (the
 * pointwise conv) on x86-64 CPUs that have them, plain C everywhere else.
 * The choice never changes results. */
#include <string.h>
#include "q_internal.h"

static const char *const path_names[] = {"generic", "avx-vnni", "avx512-vnni"};
static int forced_path = -1;    /* -1: the best this CPU runs */

static int cpu_supports(int path)
{
    if (path == PT_Q_PATH_GENERIC) return 1;
#ifdef PT_Q_HAVE_X86
    __builtin_cpu_init();
    if (path == PT_Q_PATH_AVXVNNI)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

static int best_path(void)
{
    static int cached = -1;
    if (cached < 0) {
        cached = PT_Q_PATH_GENERIC;
        for (int p = PT_Q_PATH_AVX512VNNI; p > PT_Q_PATH_GENERIC && cached == PT_Q_PATH_GENERIC; --p)
            if (cpu_supports(p)) cached = p;
    }
    return cached;
}

int pt_q_path(void)
{
    return forced_path >= 0 ? forced_path : best_path();
}

const char *pt_q_isa(void)
{
    return path_names[pt_q_path()];
}

pt_status pt_q_select_isa(const char *name)
{
    if (!name) return PT_ERR_NULL;
    if (strcmp(name, "auto") == 0) {
        forced_path = -1;
        return PT_OK;
    }
    for (int p = 0; p < (int)(sizeof(path_names) / sizeof(path_names[0])); ++p) {
        if (strcmp(name, path_names[p]) != 0) continue;
        if (!cpu_supports(p)) return PT_ERR_UNSUPPORTED;
        forced_path = p;
        return PT_OK;
    }
    return PT_ERR_PARAM;
}
