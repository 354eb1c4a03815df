/* Native benchmark of the latent-replay training step (no Python).
 *
 * Builds MobileNetV1's adaptive stage above a chosen LR layer (128x128 input,
 * BatchNorm folded, so every convolution has a bias and a ReLU6), and times at
 * batch 128 each primitive of a training step (forward, grad-input,
 * grad-weight of every layer, the loss, SGD with momentum and weight decay)
 * and the whole step, on a chosen number of threads. ReLU6 runs fused into
 * each convolution's forward, as pulptrain.nn runs it. Prints one JSON object:
 * milliseconds (median and best of the repeats), GFLOP/s and the fraction of
 * the FP32 peak measured in the same run with an FMA loop (bench/fma_peak.c).
 *
 *   make bench                      (conv5_4/dw, every core)
 *   build/bench/train_step [--lr-layer conv5_4/dw] [--threads N] [--batch 128]
 *                          [--classes 50] [--repeats 7] [--scaling]
 *
 * --scaling also times whole steps on 1 thread and on N, alternating (one of
 * each per round, same buffers), and reports the median of the per-round
 * ratios: on a shared machine whose speed drifts over seconds, runs of the
 * two configurations made one after the other compare different machines.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pulptrain/pulptrain.h"
#include "bench_args.h"

double fma_peak_gflops(int isa, int threads, double seconds, int cpu_time);

enum { DW, PW };

/* MobileNetV1 at 128x128 from the first depthwise layer on (Caffe names). */
typedef struct layer_spec {
    const char *name;
    int kind, in_hw, in_c, out_c, stride;
} layer_spec;

static const layer_spec NET[] = {
    {"conv2_1/dw", DW, 64, 32, 32, 1},      {"conv2_1/sep", PW, 64, 32, 64, 1},
    {"conv2_2/dw", DW, 64, 64, 64, 2},      {"conv2_2/sep", PW, 32, 64, 128, 1},
    {"conv3_1/dw", DW, 32, 128, 128, 1},    {"conv3_1/sep", PW, 32, 128, 128, 1},
    {"conv3_2/dw", DW, 32, 128, 128, 2},    {"conv3_2/sep", PW, 16, 128, 256, 1},
    {"conv4_1/dw", DW, 16, 256, 256, 1},    {"conv4_1/sep", PW, 16, 256, 256, 1},
    {"conv4_2/dw", DW, 16, 256, 256, 2},    {"conv4_2/sep", PW, 8, 256, 512, 1},
    {"conv5_1/dw", DW, 8, 512, 512, 1},     {"conv5_1/sep", PW, 8, 512, 512, 1},
    {"conv5_2/dw", DW, 8, 512, 512, 1},     {"conv5_2/sep", PW, 8, 512, 512, 1},
    {"conv5_3/dw", DW, 8, 512, 512, 1},     {"conv5_3/sep", PW, 8, 512, 512, 1},
    {"conv5_4/dw", DW, 8, 512, 512, 1},     {"conv5_4/sep", PW, 8, 512, 512, 1},
    {"conv5_5/dw", DW, 8, 512, 512, 1},     {"conv5_5/sep", PW, 8, 512, 512, 1},
    {"conv5_6/dw", DW, 8, 512, 512, 2},     {"conv5_6/sep", PW, 4, 512, 1024, 1},
    {"conv6/dw", DW, 4, 1024, 1024, 1},     {"conv6/sep", PW, 4, 1024, 1024, 1},
};
enum { NET_LAYERS = sizeof(NET) / sizeof(NET[0]), MAX_LAYERS = NET_LAYERS + 1 };

typedef struct layer {
    const char *name;
    int kind;                 /* DW, PW, or -1 for the classifier */
    pt_conv_params conv;
    pt_linear_params fc;
    size_t in_count, out_count, w_count, b_count;
    float *w, *b, *gw, *gb, *vw, *vb;
    float *x;                 /* input (the previous layer's ReLU6 output) */
    float *z;                 /* the classifier's logits */
    float *a;                 /* ReLU6 output */
    double flop_fwd, flop_bwd_input, flop_bwd_weight;
} layer;

typedef struct timing {
    const char *name;
    double *samples;
    double flop;
} timing;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_f(size_t count, unsigned seed, float scale)
{
    float *p = malloc((count ? count : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "train_step: out of memory (%zu floats)\n", count);
        exit(1);
    }
    unsigned s = seed * 2654435761u + 1u;
    for (size_t i = 0; i < count; ++i) {
        s = s * 1664525u + 1013904223u;
        p[i] = scale * ((float)(s >> 8) / 16777216.0f - 0.25f);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define CHECK(call)                                                                  \
    do {                                                                             \
        pt_status st_ = (call);                                                      \
        if (st_ != PT_OK) {                                                          \
            fprintf(stderr, "train_step: %s failed: %s\n", #call, pt_status_str(st_)); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

typedef struct net {
    layer l[MAX_LAYERS];
    int count;
    int batch, classes;
    float *pooled, *logits, *grad_logits, *grad_pooled, *grad_a, *grad_z;
    int32_t *labels;
    pt_ctx ctx;
} net;

static void build(net *n, int first, int batch, int classes, int threads)
{
    memset(n, 0, sizeof(*n));
    n->batch = batch;
    n->classes = classes;
    size_t scratch = 0, biggest = 0;
    for (int i = first; i < NET_LAYERS; ++i) {
        const layer_spec *s = &NET[i];
        layer *L = &n->l[n->count++];
        L->name = s->name;
        L->kind = s->kind;
        pt_conv_params *c = &L->conv;
        c->in = (pt_dims){batch, s->in_hw, s->in_hw, s->in_c};
        c->out_c = s->out_c;
        int out_hw = s->in_hw / s->stride;
        if (s->kind == DW) {
            /* "same" padding as TF: stride 2 pads only bottom/right */
            c->kh = c->kw = 3;
            c->stride_h = c->stride_w = s->stride;
            c->pad_top = c->pad_left = s->stride == 1 ? 1 : 0;
            c->pad_bottom = c->pad_right = 1;
            L->w_count = 9 * (size_t)s->in_c;
            double macs = (double)batch * out_hw * out_hw * s->in_c * 9;
            L->flop_fwd = L->flop_bwd_input = L->flop_bwd_weight = 2 * macs;
        } else {
            c->kh = c->kw = 1;
            c->stride_h = c->stride_w = 1;
            L->w_count = (size_t)s->out_c * s->in_c;
            double macs = (double)batch * out_hw * out_hw * s->in_c * s->out_c;
            L->flop_fwd = L->flop_bwd_input = L->flop_bwd_weight = 2 * macs;
            size_t b1 = pt_pointwise_f32_fwd_scratch_bytes(c, threads);
            size_t b2 = pt_pointwise_f32_bwd_input_scratch_bytes(c, threads);
            size_t b3 = pt_pointwise_f32_bwd_weight_scratch_bytes(c, threads);
            if (b1 > scratch) scratch = b1;
            if (b2 > scratch) scratch = b2;
            if (b3 > scratch) scratch = b3;
        }
        L->b_count = (size_t)s->out_c;
        L->in_count = pt_dims_count(c->in);
        L->out_count = (size_t)batch * out_hw * out_hw * s->out_c;
        if (L->in_count > biggest) biggest = L->in_count;
        if (L->out_count > biggest) biggest = L->out_count;
    }
    /* the classifier on the globally pooled features */
    int feat = NET[NET_LAYERS - 1].out_c;
    layer *fc = &n->l[n->count++];
    fc->name = "fc7";
    fc->kind = -1;
    fc->fc = (pt_linear_params){batch, feat, classes};
    fc->w_count = (size_t)classes * feat;
    fc->b_count = (size_t)classes;
    fc->in_count = (size_t)batch * feat;
    fc->out_count = (size_t)batch * classes;
    fc->flop_fwd = fc->flop_bwd_input = fc->flop_bwd_weight = 2.0 * batch * feat * classes;
    size_t f1 = pt_linear_f32_fwd_scratch_bytes(&fc->fc, threads);
    size_t f2 = pt_linear_f32_bwd_input_scratch_bytes(&fc->fc, threads);
    size_t f3 = pt_linear_f32_bwd_weight_scratch_bytes(&fc->fc, threads);
    if (f1 > scratch) scratch = f1;
    if (f2 > scratch) scratch = f2;
    if (f3 > scratch) scratch = f3;

    float *prev = alloc_f(n->l[0].in_count, 1, 8.0f);  /* the latents, in [0, 6) */
    for (int i = 0; i < n->count; ++i) {
        layer *L = &n->l[i];
        L->w = alloc_f(L->w_count, 10 + i, 0.2f);
        L->b = alloc_f(L->b_count, 100 + i, 0.1f);
        L->gw = alloc_f(L->w_count, 0, 0.0f);
        L->gb = alloc_f(L->b_count, 0, 0.0f);
        L->vw = alloc_f(L->w_count, 0, 0.0f);
        L->vb = alloc_f(L->b_count, 0, 0.0f);
        if (L->kind < 0) {
            L->x = n->pooled = alloc_f(L->in_count, 0, 0.0f);
            L->z = n->logits = alloc_f(L->out_count, 0, 0.0f);
            continue;
        }
        L->x = prev;
        L->a = alloc_f(L->out_count, 0, 0.0f);
        prev = L->a;
    }
    n->grad_logits = alloc_f(n->l[n->count - 1].out_count, 0, 0.0f);
    n->grad_pooled = alloc_f(n->l[n->count - 1].in_count, 0, 0.0f);
    n->grad_a = alloc_f(biggest, 0, 0.0f);
    n->grad_z = alloc_f(biggest, 0, 0.0f);
    n->labels = malloc((size_t)batch * sizeof(int32_t));
    for (int i = 0; i < batch; ++i) n->labels[i] = (int32_t)((i * 7) % classes);
    n->ctx = (pt_ctx){threads, scratch ? malloc(scratch) : NULL, scratch};
}

/* Timers: per layer fwd / bwd_input / bwd_weight, then loss, pool, sgd. */
enum { T_FWD, T_BWD_INPUT, T_BWD_WEIGHT, T_PER_LAYER };

static double stamp(double *slot, double t0)
{
    double t = now_s();
    if (slot) *slot += t - t0;
    return t;
}

/* One training step; per-primitive times are added into t (may be NULL). */
static float step(net *n, double *t, double *t_pool, double *t_loss, double *t_sgd)
{
    const pt_ctx *ctx = &n->ctx;
    const pt_sgd_params sgd = {1e-4f, 0.9f, 5e-4f};
    float loss = 0.0f;
    double t0 = now_s();
    for (int i = 0; i < n->count - 1; ++i) {
        layer *L = &n->l[i];
        double *tl = t ? t + T_PER_LAYER * i : NULL;
        /* ReLU6 fused into the output pass, as pulptrain.nn runs it */
        if (L->kind == DW)
            CHECK(pt_depthwise_f32_fwd_act(ctx, &L->conv, PT_ACT_RELU6, L->x, L->w, L->b, L->a));
        else
            CHECK(pt_pointwise_f32_fwd_act(ctx, &L->conv, PT_ACT_RELU6, L->x, L->w, L->b, L->a));
        t0 = stamp(tl ? tl + T_FWD : NULL, t0);
    }
    layer *last = &n->l[n->count - 2], *fc = &n->l[n->count - 1];
    pt_dims pooled_in = {n->batch, last->conv.in.h / last->conv.stride_h,
                         last->conv.in.w / last->conv.stride_w, last->conv.out_c};
    CHECK(pt_global_avgpool_f32_fwd(ctx, pooled_in, last->a, n->pooled));
    t0 = stamp(t_pool, t0);
    double *tf = t ? t + T_PER_LAYER * (n->count - 1) : NULL;
    CHECK(pt_linear_f32_fwd(ctx, &fc->fc, n->pooled, fc->w, fc->b, n->logits));
    t0 = stamp(tf ? tf + T_FWD : NULL, t0);
    CHECK(pt_softmax_xent_f32_fwd(ctx, n->batch, n->classes, n->logits, n->labels, &loss));
    CHECK(pt_softmax_xent_f32_bwd(ctx, n->batch, n->classes, n->logits, n->labels, n->grad_logits));
    t0 = stamp(t_loss, t0);
    CHECK(pt_linear_f32_bwd_weight(ctx, &fc->fc, n->pooled, n->grad_logits, fc->gw, fc->gb));
    t0 = stamp(tf ? tf + T_BWD_WEIGHT : NULL, t0);
    CHECK(pt_linear_f32_bwd_input(ctx, &fc->fc, fc->w, n->grad_logits, n->grad_pooled));
    t0 = stamp(tf ? tf + T_BWD_INPUT : NULL, t0);
    /* every ReLU6 backward is fused into the grad-input of the layer above
     * it (its input is that ReLU6's output), the last conv's into the global
     * pool's, as pulptrain.nn.Sequential runs it */
    CHECK(pt_global_avgpool_f32_bwd_input_act(ctx, pooled_in, PT_ACT_RELU6, n->grad_pooled, last->a, n->grad_z));
    t0 = stamp(t_pool, t0);
    for (int i = n->count - 2; i >= 0; --i) {
        layer *L = &n->l[i];
        double *tl = t ? t + T_PER_LAYER * i : NULL;
        if (L->kind == DW)
            CHECK(pt_depthwise_f32_bwd_weight(ctx, &L->conv, L->x, n->grad_z, L->gw, L->gb));
        else
            CHECK(pt_pointwise_f32_bwd_weight(ctx, &L->conv, L->x, n->grad_z, L->gw, L->gb));
        t0 = stamp(tl ? tl + T_BWD_WEIGHT : NULL, t0);
        if (i == 0) break;  /* nothing below the adaptive stage trains */
        if (L->kind == DW)
            CHECK(pt_depthwise_f32_bwd_input_act(ctx, &L->conv, PT_ACT_RELU6, L->w, n->grad_z, L->x, n->grad_a));
        else
            CHECK(pt_pointwise_f32_bwd_input_act(ctx, &L->conv, PT_ACT_RELU6, L->w, n->grad_z, L->x, n->grad_a));
        t0 = stamp(tl ? tl + T_BWD_INPUT : NULL, t0);
        float *swap = n->grad_z;   /* grad_a now holds the gradient at layer i-1's pre-activation */
        n->grad_z = n->grad_a;
        n->grad_a = swap;
    }
    for (int i = 0; i < n->count; ++i) {
        layer *L = &n->l[i];
        CHECK(pt_sgd_f32_step(ctx, &sgd, L->w_count, L->w, L->gw, L->vw));
        CHECK(pt_sgd_f32_step(ctx, &sgd, L->b_count, L->b, L->gb, L->vb));
    }
    stamp(t_sgd, t0);
    return loss;
}

static double median(double *v, int count)
{
    qsort(v, (size_t)count, sizeof(double), cmp_double);
    return count % 2 ? v[count / 2] : 0.5 * (v[count / 2 - 1] + v[count / 2]);
}

static double best(const double *v, int count)
{
    double b = v[0];
    for (int i = 1; i < count; ++i)
        if (v[i] < b) b = v[i];
    return b;
}

static void usage(void)
{
    fprintf(stderr, "usage: train_step [--lr-layer NAME] [--threads N] [--batch N] [--classes N] "
                    "[--repeats N] [--scaling]\nLR layers:");
    fprintf(stderr, " conv1");
    for (int i = 0; i < NET_LAYERS; ++i) fprintf(stderr, " %s", NET[i].name);
    fprintf(stderr, "\n");
}

static int parse_int(const char *flag, const char *value, int lo, int hi)
{
    return bench_parse_int("train_step", flag, value, lo, hi);
}

int main(int argc, char **argv)
{
    const char *lr_layer = "conv5_4/dw";
    int threads = pt_parallel_max_cores(), batch = 128, classes = 50, repeats = 7, scaling = 0;
    for (int i = 1; i < argc; ++i) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--lr-layer") && v) lr_layer = argv[++i];
        else if (!strcmp(argv[i], "--threads")) threads = parse_int(argv[i], v, 1, PT_MAX_THREADS), ++i;
        else if (!strcmp(argv[i], "--batch")) batch = parse_int(argv[i], v, 1, 4096), ++i;
        else if (!strcmp(argv[i], "--classes")) classes = parse_int(argv[i], v, 2, 100000), ++i;
        else if (!strcmp(argv[i], "--repeats")) repeats = parse_int(argv[i], v, 1, 1000), ++i;
        else if (!strcmp(argv[i], "--scaling")) scaling = 1;
        else {
            usage();
            return 2;
        }
    }
    int first = -1;
    if (!strcmp(lr_layer, "conv1")) first = 0;
    for (int i = 0; i < NET_LAYERS - 1; ++i)
        if (!strcmp(lr_layer, NET[i].name)) first = i + 1;
    if (first < 0) {
        fprintf(stderr, "train_step: unknown or untrainable LR layer '%s'\n", lr_layer);
        usage();
        return 2;
    }

    /* the FP32 peak of one thread, and of `threads` threads running at once
     * (wall clock: SMT siblings share one core's FMA units) */
    double peak_core = 0.0, peak = 0.0;
    int isa = pt_gemm_get_isa() == PT_GEMM_ISA_AVX512 ? 2 : 1;
    for (int i = 0; i < 20; ++i) {
        double g = fma_peak_gflops(isa, 1, 0.05, 0), g_all = fma_peak_gflops(isa, threads, 0.05, 0);
        if (g > peak_core) peak_core = g;
        if (g_all > peak) peak = g_all;
    }

    static net n;
    build(&n, first, batch, classes, threads);
    int per_layer = T_PER_LAYER * n.count;
    double *acc = calloc((size_t)per_layer, sizeof(double));
    double *layer_samples = calloc((size_t)per_layer * repeats, sizeof(double));
    double *step_samples = calloc((size_t)repeats, sizeof(double));
    double *pool = calloc((size_t)repeats * 3, sizeof(double));
    step(&n, NULL, NULL, NULL, NULL); /* warm-up: page in every buffer */
    step(&n, NULL, NULL, NULL, NULL);
    float loss = 0.0f;
    /* whole steps untimed inside, then steps with per-primitive timers */
    for (int r = 0; r < repeats; ++r) {
        double t0 = now_s();
        loss = step(&n, NULL, NULL, NULL, NULL);
        step_samples[r] = now_s() - t0;
    }
    for (int r = 0; r < repeats; ++r) {
        memset(acc, 0, (size_t)per_layer * sizeof(double));
        step(&n, acc, &pool[3 * r], &pool[3 * r + 1], &pool[3 * r + 2]);
        for (int k = 0; k < per_layer; ++k) layer_samples[(size_t)k * repeats + r] = acc[k];
    }

    double flop = 0.0;
    for (int i = 0; i < n.count; ++i)
        flop += n.l[i].flop_fwd + n.l[i].flop_bwd_weight + (i > 0 ? n.l[i].flop_bwd_input : 0.0);
    double med = median(step_samples, repeats), fastest = best(step_samples, repeats);
    printf("{\n  \"workload\": \"training step above %s\", \"batch\": %d, \"classes\": %d, "
           "\"threads\": %d, \"isa\": \"%s\",\n", lr_layer, batch, classes, threads,
           pt_gemm_isa_name(pt_gemm_get_isa()));
    printf("  \"peak_gflops_1_thread\": %.1f, \"peak_gflops\": %.1f, \"repeats\": %d, \"loss\": %.6f,\n",
           peak_core, peak, repeats, (double)loss);
    printf("  \"step\": {\"gflop\": %.3f, \"ms_median\": %.2f, \"ms_best\": %.2f, \"gflops\": %.1f, "
           "\"fraction_of_peak\": %.3f},\n", flop / 1e9, 1e3 * med, 1e3 * fastest, flop / med / 1e9,
           flop / med / 1e9 / peak);
    if (scaling) {
        /* rounds of (1 thread, N threads) in alternating order; the scratch
         * sized for N threads serves 1 */
        double *one = calloc((size_t)repeats, sizeof(double)), *all = calloc((size_t)repeats, sizeof(double));
        double *ratio = calloc((size_t)repeats, sizeof(double));
        for (int r = 0; r < repeats; ++r)
            for (int k = 0; k < 2; ++k) {
                int single = (k == 0) == (r % 2 == 0);
                n.ctx.num_threads = single ? 1 : threads;
                double t0 = now_s();
                step(&n, NULL, NULL, NULL, NULL);
                (single ? one : all)[r] = now_s() - t0;
            }
        n.ctx.num_threads = threads;
        for (int r = 0; r < repeats; ++r) ratio[r] = one[r] / all[r];
        double m1 = median(one, repeats), mn = median(all, repeats);
        printf("  \"scaling\": {\"rounds\": %d, \"ms_median_1_thread\": %.2f, \"ms_median\": %.2f, "
               "\"speedup_median_of_rounds\": %.3f},\n", repeats, 1e3 * m1, 1e3 * mn, median(ratio, repeats));
        free(one);
        free(all);
        free(ratio);
    }
    printf("  \"primitives\": [\n");
    static const char *step_names[T_PER_LAYER] = {"forward+relu6", "grad_input+relu6_backward", "grad_weight"};
    static const char *linear_steps[T_PER_LAYER] = {"forward", "grad_input", "grad_weight"};  /* fc7 */
    int printed = 0;
    for (int i = 0; i < n.count; ++i) {
        layer *L = &n.l[i];
        for (int k = 0; k < T_PER_LAYER; ++k) {
            if (i == 0 && k == T_BWD_INPUT) continue;
            double f = k == T_FWD ? L->flop_fwd : k == T_BWD_INPUT ? L->flop_bwd_input
                     : k == T_BWD_WEIGHT ? L->flop_bwd_weight : 0.0;
            double *s = &layer_samples[(size_t)(T_PER_LAYER * i + k) * repeats];
            double m = median(s, repeats);
            const char *kind = L->kind == DW ? "depthwise" : L->kind == PW ? "pointwise" : "linear";
            const char *step_name = L->kind < 0 ? linear_steps[k] : step_names[k];
            printf("%s    {\"layer\": \"%s\", \"kind\": \"%s\", \"step\": \"%s\", \"ms\": %.3f",
                   printed++ ? ",\n" : "", L->name, kind, step_name, 1e3 * m);
            if (f > 0)
                printf(", \"gflops\": %.1f, \"fraction_of_peak\": %.3f", f / m / 1e9, f / m / 1e9 / peak);
            printf("}");
        }
    }
    static const char *extra[3][2] = {{"global_avgpool", "fwd+bwd+relu6_backward"}, {"softmax_xent", "fwd+bwd"},
                                      {"sgd", "step"}};
    for (int k = 0; k < 3; ++k) {
        double s[1000];
        for (int r = 0; r < repeats; ++r) s[r] = pool[3 * r + k];
        printf(",\n    {\"layer\": \"-\", \"kind\": \"%s\", \"step\": \"%s\", \"ms\": %.3f}", extra[k][0],
               extra[k][1], 1e3 * median(s, repeats));
    }
    printf("\n  ]\n}\n");
    return 0;
}
