/* Run-time choice of the INT8 kernel path: AVX-512 VNNI on x86-64 CPUs that
 * have it, plain C everywhere else. The choice never changes results. */
#include <string.h>
#include "q_internal.h"

enum { ISA_AUTO = 0, ISA_GENERIC = 1, ISA_AVX512VNNI = 2 };
static int forced_isa = ISA_AUTO;

static int cpu_has_avx512vnni(void)
{
#ifdef PT_Q_HAVE_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("avx512vnni");
    }
    return cached;
#else
    return 0;
#endif
}

int pt_q_use_avx512vnni(void)
{
    return forced_isa != ISA_GENERIC && cpu_has_avx512vnni();
}

const char *pt_q_isa(void)
{
    return pt_q_use_avx512vnni() ? "avx512-vnni" : "generic";
}

pt_status pt_q_select_isa(const char *name)
{
    if (!name) return PT_ERR_NULL;
    if (strcmp(name, "auto") == 0) forced_isa = ISA_AUTO;
    else if (strcmp(name, "generic") == 0) forced_isa = ISA_GENERIC;
    else if (strcmp(name, "avx512-vnni") == 0) {
        if (!cpu_has_avx512vnni()) return PT_ERR_UNSUPPORTED;
        forced_isa = ISA_AVX512VNNI;
    } else {
        return PT_ERR_PARAM;
    }
    return PT_OK;
}
