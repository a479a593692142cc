/* netspec's oneDNN convolution and matrix-product kernels for XLA:CPU custom calls (see
 * crates/pjrt/src/onednn.rs).
 *
 * oneDNN (Debian's libdnnl 2.x) is opened with dlopen at run time, so the netspec binary does not
 * depend on it: without the library the custom calls are simply not offered to the code generator.
 * Three passes of one 2-D convolution, activations NHWC and kernel HWIO (the layouts netspec's
 * lowering gives XLA), f32:
 *   pass 0  forward          y[n,oh,ow,o]  from x[n,h,w,c], w[kh,kw,c,o]
 *   pass 1  backward data    dx[n,h,w,c]   from dy[n,oh,ow,o], w[kh,kw,c,o]
 *   pass 2  backward weights dw[kh,kw,c,o] from x[n,h,w,c], dy[n,oh,ow,o]
 * The kernel is reordered to/from the blocked layout oneDNN picks for the shape (a parameter-sized
 * copy). Primitives are created once per (pass, geometry) and kept (under a mutex); calls run
 * concurrently (XLA runs independent thunks on its own threads): each call has its own memory objects,
 * and its thread's stream, kernel buffer and scratchpad (user-managed, so no library-global state). */
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
    X(dnnl_primitive_desc_query) X(dnnl_memory_destroy) X(dnnl_primitive_attr_create)            \
    X(dnnl_primitive_attr_set_scratchpad_mode) X(dnnl_sgemm)

#define DECL(f) static __typeof__(f) *p_##f;
FNS(DECL)
#undef DECL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* libgomp's per-thread team size, found through libdnnl's own dependency (oneDNN's OpenMP build). */
static void (*p_omp_set_num_threads)(int);
static int (*p_omp_get_max_threads)(void);
static int state; /* 0 not tried, 1 ready, -1 failed */
static char state_err[256];
static dnnl_engine_t engine;
static pthread_key_t tls_key;

/* Per-thread execution state: a stream and two growable buffers (blocked kernel, scratchpad). */
typedef struct {
    dnnl_stream_t stream;
    void *buf[2];
    size_t cap[2];
} tls_state;

static void tls_free(void *p) {
    tls_state *t = p;
    free(t->buf[0]);
    free(t->buf[1]);
    free(t); /* the stream is left to the process (oneDNN may still reference it at exit) */
}

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
    p_omp_set_num_threads = (void (*)(int))dlsym(lib, "omp_set_num_threads");
    p_omp_get_max_threads = (int (*)(void))dlsym(lib, "omp_get_max_threads");
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(state_err, sizeof state_err, "oneDNN could not create a CPU engine");
        return state = -1;
    }
    if (pthread_key_create(&tls_key, tls_free)) {
        snprintf(state_err, sizeof state_err, "pthread_key_create failed");
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
    dnnl_primitive_t conv, reorder; /* reorder: user kernel -> blocked (passes 0, 1) or back (2) */
    dnnl_memory_desc_t x_md, y_md, w_user, w_blk, scratch_md, rscratch_md;
    int blocked;                    /* the kernel layouts differ: reorder through a buffer */
    size_t w_size, scratch_size, rscratch_size;
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
    dnnl_memory_desc_t w_any;
    CK(p_dnnl_memory_desc_init_by_tag(&e->x_md, 4, xd, dnnl_f32, dnnl_nhwc), "source descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&e->y_md, 4, yd, dnnl_f32, dnnl_nhwc), "destination descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any), "kernel descriptor");
    CK(p_dnnl_memory_desc_init_by_tag(&e->w_user, 4, wd, dnnl_f32, dnnl_hwio), "kernel descriptor");
    dnnl_primitive_attr_t attr;
    CK(p_dnnl_primitive_attr_create(&attr), "attribute creation");
    CK(p_dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");

    dnnl_convolution_desc_t fd;
    CK(p_dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &e->x_md,
                                            &w_any, NULL, &e->y_md, strides, pl, pr),
       "forward descriptor");
    dnnl_primitive_desc_t fpd, pd;
    CK(p_dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL), "forward primitive descriptor");
    if (e->pass == 0) {
        pd = fpd;
    } else if (e->pass == 1) {
        dnnl_convolution_desc_t bd;
        CK(p_dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &e->x_md, &w_any,
                                                      &e->y_md, strides, pl, pr),
           "backward-data descriptor");
        CK(p_dnnl_primitive_desc_create(&pd, &bd, attr, engine, fpd), "backward-data primitive descriptor");
    } else {
        dnnl_convolution_desc_t bd;
        CK(p_dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &e->x_md, &w_any, NULL,
                                                         &e->y_md, strides, pl, pr),
           "backward-weights descriptor");
        CK(p_dnnl_primitive_desc_create(&pd, &bd, attr, engine, fpd), "backward-weights primitive descriptor");
    }
    const char *impl = NULL;
    /* not fatal: the implementation's name is for diagnostics only */
    if (p_dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success) impl = NULL;
    snprintf(e->impl, sizeof e->impl, "%s", impl ? impl : "?");
    e->w_blk = *p_dnnl_primitive_desc_query_md(pd, e->pass == 2 ? dnnl_query_diff_weights_md : dnnl_query_weights_md, 0);
    e->scratch_md = *p_dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_size = p_dnnl_memory_desc_get_size(&e->scratch_md);
    CK(p_dnnl_primitive_create(&e->conv, pd), "primitive creation");
    e->blocked = !p_dnnl_memory_desc_equal(&e->w_blk, &e->w_user);
    if (e->blocked) {
        e->w_size = p_dnnl_memory_desc_get_size(&e->w_blk);
        dnnl_primitive_desc_t rpd;
        if (e->pass == 2)
            CK(p_dnnl_reorder_primitive_desc_create(&rpd, &e->w_blk, engine, &e->w_user, engine, attr), "reorder");
        else
            CK(p_dnnl_reorder_primitive_desc_create(&rpd, &e->w_user, engine, &e->w_blk, engine, attr), "reorder");
        e->rscratch_md = *p_dnnl_primitive_desc_query_md(rpd, dnnl_query_scratchpad_md, 0);
        e->rscratch_size = p_dnnl_memory_desc_get_size(&e->rscratch_md);
        CK(p_dnnl_primitive_create(&e->reorder, rpd), "reorder creation");
    }
    return 0;
}

static entry *lookup_locked(int pass, const int64_t *g, char *err, size_t len) {
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

static entry *lookup(int pass, const int64_t *g, char *err, size_t len) {
    pthread_mutex_lock(&lock);
    entry *e = NULL;
    if (init_locked() != 1) {
        fail(err, len, "%s", state_err);
    } else if (pass < 0 || pass > 2) {
        fail(err, len, "unknown convolution pass %d", pass);
    } else {
        int ok = 1;
        for (int i = 0; i < G_LEN && ok; i++)
            if (g[i] < (i >= G_PT ? 0 : 1)) {
                fail(err, len, "bad convolution geometry (entry %d = %ld)", i, (long)g[i]);
                ok = 0;
            }
        if (ok) e = lookup_locked(pass, g, err, len);
    }
    pthread_mutex_unlock(&lock);
    return e;
}

/* This thread's state, and buffer `which` grown to at least `size` bytes (NULL on failure). */
static tls_state *thread_state(char *err, size_t len) {
    tls_state *t = pthread_getspecific(tls_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (!t) return fail(err, len, "out of memory"), NULL;
    if (p_dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        free(t);
        return fail(err, len, "oneDNN could not create a stream"), NULL;
    }
    pthread_setspecific(tls_key, t);
    return t;
}

static void *grow(tls_state *t, int which, size_t size) {
    if (size == 0) return NULL;
    if (t->cap[which] < size) {
        void *p = NULL;
        if (posix_memalign(&p, 64, size)) return NULL;
        free(t->buf[which]);
        t->buf[which] = p;
        t->cap[which] = size;
    }
    return t->buf[which];
}

/* Memory objects created per call (cheap) so that concurrent calls share nothing mutable. */
typedef struct {
    dnnl_memory_t m[5];
    int n;
} mems;

static dnnl_status_t mem(mems *ms, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *p) {
    dnnl_status_t st = p_dnnl_memory_create(out, md, engine, p);
    if (st == dnnl_success) ms->m[ms->n++] = *out;
    return st;
}

static int execute(entry *e, tls_state *t, mems *ms, const float *a, const float *b, float *out, char *err,
                   size_t len) {
    int pass = e->pass;
    /* a: x (passes 0, 2) or dy (pass 1); b: w (passes 0, 1) or dy (pass 2) */
    const float *x = pass == 1 ? out : a, *y = pass == 0 ? out : (pass == 1 ? a : b);
    const float *w = pass == 2 ? out : b;
    dnnl_memory_t xm, ym, wu, wb, sm = NULL, rsm = NULL;
    CK(mem(ms, &xm, &e->x_md, (void *)x), "memory");
    CK(mem(ms, &ym, &e->y_md, (void *)y), "memory");
    CK(mem(ms, &wu, &e->w_user, (void *)w), "memory");
    wb = wu;
    if (e->blocked) {
        void *wbuf = grow(t, 0, e->w_size);
        if (!wbuf) return fail(err, len, "out of memory (%zu bytes)", e->w_size);
        CK(mem(ms, &wb, &e->w_blk, wbuf), "memory");
    }
    /* one scratchpad buffer serves the convolution and the reorder (they run one after the other) */
    size_t ssize = e->scratch_size > e->rscratch_size ? e->scratch_size : e->rscratch_size;
    void *sbuf = grow(t, 1, ssize);
    if (ssize && !sbuf) return fail(err, len, "out of memory (%zu bytes)", ssize);
    if (e->scratch_size) CK(p_dnnl_memory_create(&sm, &e->scratch_md, engine, sbuf), "memory");
    if (sm) ms->m[ms->n++] = sm;
    if (e->blocked && e->rscratch_size) CK(p_dnnl_memory_create(&rsm, &e->rscratch_md, engine, sbuf), "memory");
    if (rsm) ms->m[ms->n++] = rsm;
    if (pass != 2 && e->blocked) {
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, wu}, {DNNL_ARG_TO, wb}, {DNNL_ARG_SCRATCHPAD, rsm}};
        CK(p_dnnl_primitive_execute(e->reorder, t->stream, rsm ? 3 : 2, ra), "kernel reorder");
    }
    dnnl_exec_arg_t args[4];
    if (pass == 0) {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, xm};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wb};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DST, ym};
    } else if (pass == 1) {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, ym};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, wb};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, xm};
    } else {
        args[0] = (dnnl_exec_arg_t){DNNL_ARG_SRC, xm};
        args[1] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, ym};
        args[2] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, wb};
    }
    args[3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sm};
    CK(p_dnnl_primitive_execute(e->conv, t->stream, sm ? 4 : 3, args), "convolution");
    if (pass == 2 && e->blocked) {
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, wb}, {DNNL_ARG_TO, wu}, {DNNL_ARG_SCRATCHPAD, rsm}};
        CK(p_dnnl_primitive_execute(e->reorder, t->stream, rsm ? 3 : 2, ra), "kernel reorder");
    }
    CK(p_dnnl_stream_wait(t->stream), "stream wait");
    return 0;
}

int netspec_dnnl_conv(int pass, const int64_t *g, const float *a, const float *b, float *out, char *err,
                      size_t len) {
    entry *e = lookup(pass, g, err, len);
    if (!e) return -1;
    tls_state *t = thread_state(err, len);
    if (!t) return -1;
    mems ms = {.n = 0};
    int r = execute(e, t, &ms, a, b, out, err, len);
    for (int i = 0; i < ms.n; i++) p_dnnl_memory_destroy(ms.m[i]);
    return r;
}

/* The name of the oneDNN implementation chosen for (pass, geometry), e.g. "brg:avx512_core". */
int netspec_dnnl_impl(int pass, const int64_t *g, char *name, size_t name_len, char *err, size_t len) {
    entry *e = lookup(pass, g, err, len);
    if (!e) return -1;
    snprintf(name, name_len, "%s", e->impl);
    return 0;
}

/* Rows [m0, m1) of the row-major product c[m,n] = op(a) op(b), op(a) : [m,k], op(b) : [k,n]
 * (ta / tb: the operand is stored transposed), written to c_rows (row m0 first, rows n apart: c + m0*n
 * for the whole product, or a tile's own buffer). The handler splits a product into row tiles and runs
 * them on XLA's own threads, so each tile runs on the calling thread alone: the OpenMP team size is
 * set to 1 around the call and restored (the convolution kernels, on the same threads, keep theirs).
 * Without libgomp's entry points (another oneDNN threading build) the library's default applies. */
int netspec_dnnl_matmul_rows(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                             const float *b, float *c_rows, int64_t m0, int64_t m1, char *err, size_t len) {
    if (state != 1) return fail(err, len, "oneDNN is not initialised");
    if (m0 < 0 || m1 > m || m0 >= m1) return fail(err, len, "bad row range [%ld, %ld) of %ld", (long)m0, (long)m1, (long)m);
    int prev = p_omp_get_max_threads ? p_omp_get_max_threads() : 0;
    if (p_omp_set_num_threads) p_omp_set_num_threads(1);
    const float *at = ta ? a + m0 : a + m0 * k; /* op(a)'s rows m0.. : columns of a when transposed */
    dnnl_status_t st = p_dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m1 - m0, n, k, 1.0f, at, ta ? m : k, b,
                                    tb ? k : n, 0.0f, c_rows, n);
    if (p_omp_set_num_threads && prev > 0) p_omp_set_num_threads(prev);
    return st == dnnl_success ? 0 : fail(err, len, "oneDNN sgemm failed (status %d)", (int)st);
}
