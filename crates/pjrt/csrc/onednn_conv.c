/* netspec's oneDNN convolution kernels for XLA:CPU custom calls (see crates/pjrt/src/onednn.rs).
 *
 * oneDNN (Debian's libdnnl 2.x) is opened with dlopen at run time, so the netspec binary does not
 * depend on it: without the library the custom calls are simply not offered to the code generator.
 * Three passes of one 2-D convolution, activations NHWC and kernel HWIO (the layouts netspec's
 * lowering gives XLA), f32:
 *   pass 0  forward          y[n,oh,ow,o]  from x[n,h,w,c], w[kh,kw,c,o]
 *   pass 1  backward data    dx[n,h,w,c]   from dy[n,oh,ow,o], w[kh,kw,c,o]
 *   pass 2  backward weights dw[kh,kw,c,o] from x[n,h,w,c], dy[n,oh,ow,o]
 * The kernel is reordered to/from the blocked layout oneDNN picks for the shape (a parameter-sized
 * copy). Primitives are created once per (pass, geometry) and kept; calls are serialised by one mutex
 * (oneDNN parallelises inside a call over all cores, so concurrent calls would only oversubscribe). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#if DNNL_VERSION_MAJOR != 2
#error "netspec's oneDNN shim is written against the oneDNN 2.x C API"
#endif

#define FNS(X)                                                                                    \
    X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_memory_desc_init_by_tag)                 \
    X(dnnl_convolution_forward_desc_init) X(dnnl_convolution_backward_data_desc_init)            \
    X(dnnl_convolution_backward_weights_desc_init) X(dnnl_primitive_desc_create)                 \
    X(dnnl_primitive_desc_query_md) X(dnnl_primitive_create) X(dnnl_memory_create)               \
    X(dnnl_memory_set_data_handle) X(dnnl_primitive_execute) X(dnnl_stream_wait)                 \
    X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size) X(dnnl_reorder_primitive_desc_create) \
    X(dnnl_primitive_desc_query)

#define DECL(f) static __typeof__(f) *p_##f;
FNS(DECL)
#undef DECL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state; /* 0 not tried, 1 ready, -1 failed */
static char state_err[256];
static dnnl_engine_t engine;
static dnnl_stream_t stream;

static int fail(char *err, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && len) vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -1;
}

static int init_locked(void) {
    if (state) return state;
    /* libgomp reads this when it loads: without it oneDNN's idle OpenMP workers spin and take the
     * cores XLA's own threads need between convolutions. An explicit setting wins. */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(state_err, sizeof state_err, "cannot open libdnnl.so.2 (%s)", dlerror());
        return state = -1;
    }
#define LOAD(f)                                                                          \
    if (!(p_##f = (__typeof__(f) *)dlsym(lib, #f))) {                                    \
        snprintf(state_err, sizeof state_err, "libdnnl.so.2 lacks %s", #f);             \
        return state = -1;                                                               \
    }
    FNS(LOAD)
#undef LOAD
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(state_err, sizeof state_err, "oneDNN could not create a CPU engine and stream");
        return state = -1;
    }
    return state = 1;
}

int netspec_dnnl_init(char *err, size_t len) {
    pthread_mutex_lock(&lock);
    int s = init_locked();
    pthread_mutex_unlock(&lock);
    return s == 1 ? 0 : fail(err, len, "%s", state_err);
}

/* geometry: n h w c o kh kw sh sw pad_top pad_bottom pad_left pad_right */
enum { G_N, G_H, G_W, G_C, G_O, G_KH, G_KW, G_SH, G_SW, G_PT, G_PB, G_PL, G_PR, G_LEN };

typedef struct entry {
    struct entry *next;
    int pass;
    int64_t g[G_LEN];
    dnnl_primitive_t conv, reorder;    /* reorder: user kernel -> blocked (passes 0, 1) or back (2) */
    dnnl_memory_t act_a, act_b, wmem_user, wmem_blocked;
    void *wbuf;                        /* blocked kernel storage, NULL when the layouts agree */
    char impl[64];
} entry;

static entry *cache;

static int64_t out_size(int64_t n, int64_t k, int64_t s, int64_t lo, int64_t hi) {
    return (n + lo + hi - k) / s + 1;
}

#define CK(call, what)                                                                   \
    do {                                                                                 \
        dnnl_status_t st_ = (call);                                                      \
        if (st_ != dnnl_success) return fail(err, len, "oneDNN %s failed (status %d)", what, (int)st_); \
    } while (0)

static int build(entry *e, char *err, size_t len) {
    const int64_t *g = e->g;
    int64_t oh = out_size(g[G_H], g[G_KH], g[G_SH], g[G_PT], g[G_PB]);
    int64_t ow = out_size(g[G_W], g[G_KW], g[G_SW], g[G_PL], g[G_PR]);
    if (oh <= 0 || ow <= 0) return fail(err, len, "empty convolution output %ldx%ld", (long)oh, (long)ow);
    dnnl_dims_t xd = {g[G_N], g[G_C], g[G_H], g[G_W]};
    dnnl_dims_t yd = {g[G_N], g[G_O], oh, ow};
    dnnl_dims_t wd = {g[G_O], g[G_C], g[G_KH], g[G_KW]};
    dnnl_dims_t strides = {g[G_SH], g[G_SW]};
    dnnl_dims_t pl = {g[G_PT], g[G_PL]}, pr = {g[G_PB], g[G_PR]};
    dnnl_memory_desc_t x_md, y_md, w_any, w_user;
    CK(p_dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, dnnl_nhwc), "source descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, dnnl_nhwc), "destination descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any), "kernel descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&w_user, 4, wd, dnnl_f32, dnnl_hwio), "kernel descriptor");

    dnnl_convolution_desc_t fd;
    CK(p_dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_md,
                                            &w_any, NULL, &y_md, strides, pl, pr),
       "forward descriptor");
    dnnl_primitive_desc_t fpd, pd;
    CK(p_dnnl_primitive_desc_create(&fpd, &fd, NULL, engine, NULL), "forward primitive descriptor");
    if (e->pass == 0) {
        pd = fpd;
    } else if (e->pass == 1) {
        dnnl_convolution_desc_t bd;
        CK(p_dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &x_md, &w_any, &y_md,
                                                      strides, pl, pr),
           "backward-data descriptor");
        CK(p_dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd), "backward-data primitive descriptor");
    } else {
        dnnl_convolution_desc_t bd;
        CK(p_dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &x_md, &w_any, NULL,
                                                         &y_md, strides, pl, pr),
           "backward-weights descriptor");
        CK(p_dnnl_primitive_desc_create(&pd, &bd, NULL, engine, fpd), "backward-weights primitive descriptor");
    }
    const char *impl = NULL;
    /* not fatal: the implementation's name is for diagnostics only */
    if (p_dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success) impl = NULL;
    snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
    const dnnl_memory_desc_t *w_blk = p_dnnl_primitive_desc_query_md(
        pd, e->pass == 2 ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    CK(p_dnnl_primitive_create(&e->conv, pd), "primitive creation");
    /* memories for the two activations; their handles are set per call */
    CK(p_dnnl_memory_create(&e->act_a, &x_md, engine, DNNL_MEMORY_NONE), "memory");
    CK(p_dnnl_memory_create(&e->act_b, &y_md, engine, DNNL_MEMORY_NONE), "memory");
    CK(p_dnnl_memory_create(&e->wmem_user, &w_user, engine, DNNL_MEMORY_NONE), "memory");
    if (p_dnnl_memory_desc_equal(w_blk, &w_user)) {
        e->wbuf = NULL;
        e->wmem_blocked = e->wmem_user;
    } else {
        size_t sz = p_dnnl_memory_desc_get_size(w_blk);
        if (posix_memalign(&e->wbuf, 64, sz ? sz : 64)) return fail(err, len, "out of memory (%zu bytes)", sz);
        CK(p_dnnl_memory_create(&e->wmem_blocked, w_blk, engine, e->wbuf), "memory");
        dnnl_primitive_desc_t rpd;
        if (e->pass == 2)
            CK(p_dnnl_reorder_primitive_desc_create(&rpd, w_blk, engine, &w_user, engine, NULL), "reorder");
        else
            CK(p_dnnl_reorder_primitive_desc_create(&rpd, &w_user, engine, w_blk, engine, NULL), "reorder");
        CK(p_dnnl_primitive_create(&e->reorder, rpd), "reorder creation");
    }
    return 0;
}

static entry *lookup(int pass, const int64_t *g, char *err, size_t len) {
    for (entry *e = cache; e; e = e->next)
        if (e->pass == pass && !memcmp(e->g, g, sizeof e->g)) return e;
    entry *e = calloc(1, sizeof *e);
    if (!e) return fail(err, len, "out of memory"), NULL;
    e->pass = pass;
    memcpy(e->g, g, sizeof e->g);
    if (build(e, err, len)) {
        free(e);
        return NULL;
    }
    e->next = cache;
    cache = e;
    return e;
}

static int run_locked(int pass, const int64_t *g, const float *a, const float *b, float *out, char *err,
                      size_t len) {
    if (init_locked() != 1) return fail(err, len, "%s", state_err);
    if (pass < 0 || pass > 2) return fail(err, len, "unknown convolution pass %d", pass);
    for (int i = 0; i < G_LEN; i++)
        if (g[i] < (i >= G_PT ? 0 : 1)) return fail(err, len, "bad convolution geometry (entry %d = %ld)", i, (long)g[i]);
    entry *e = lookup(pass, g, err, len);
    if (!e) return -1;
    /* a: x (passes 0, 2) or dy (pass 1); b: w (passes 0, 1) or dy (pass 2) */
    dnnl_memory_t xm = e->act_a, ym = e->act_b;
    const float *x = pass == 1 ? out : a, *y = pass == 0 ? out : (pass == 1 ? a : b);
    const float *w = pass == 2 ? out : b;
    CK(p_dnnl_memory_set_data_handle(xm, (void *)x), "set handle");
    CK(p_dnnl_memory_set_data_handle(ym, (void *)y), "set handle");
    CK(p_dnnl_memory_set_data_handle(e->wmem_user, (void *)w), "set handle");
    if (pass != 2 && e->reorder) {
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->wmem_user}, {DNNL_ARG_TO, e->wmem_blocked}};
        CK(p_dnnl_primitive_execute(e->reorder, stream, 2, ra), "kernel reorder");
    }
    dnnl_exec_arg_t args[3];
    if (pass == 0) {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, xm};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->wmem_blocked};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, ym};
    } else if (pass == 1) {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, ym};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->wmem_blocked};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, xm};
    } else {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, xm};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, ym};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, e->wmem_blocked};
    }
    CK(p_dnnl_primitive_execute(e->conv, stream, 3, args), "convolution");
    if (pass == 2 && e->reorder) {
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->wmem_blocked}, {DNNL_ARG_TO, e->wmem_user}};
        CK(p_dnnl_primitive_execute(e->reorder, stream, 2, ra), "kernel reorder");
    }
    CK(p_dnnl_stream_wait(stream), "stream wait");
    return 0;
}

int netspec_dnnl_conv(int pass, const int64_t *g, const float *a, const float *b, float *out, char *err,
                      size_t len) {
    pthread_mutex_lock(&lock);
    int r = run_locked(pass, g, a, b, out, err, len);
    pthread_mutex_unlock(&lock);
    return r;
}

/* The name of the oneDNN implementation chosen for (pass, geometry), e.g. "brg:avx512_core". */
int netspec_dnnl_impl(int pass, const int64_t *g, char *name, size_t name_len, char *err, size_t len) {
    pthread_mutex_lock(&lock);
    int r = -1;
    if (init_locked() != 1) {
        fail(err, len, "%s", state_err);
    } else {
        entry *e = lookup(pass, g, err, len);
        if (e) {
            snprintf(name, name_len, "%s", e->impl);
            r = 0;
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}
