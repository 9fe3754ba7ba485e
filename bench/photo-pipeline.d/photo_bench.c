/* photo_bench.c: the C driver of bench/photo-pipeline (which compiles it and links it with
 * build/libantre_worker.a and build/libantre_common.a). Three commands, each printing one JSON
 * object on stdout:
 *
 *   photo_bench make OUT.jpg|OUT.png W H SEED NOISE TARGET_BYTES
 *       draw a photo-like picture (soft gradients, shapes with hard edges slightly softened as
 *       a lens does, fine texture and sensor noise of sigma NOISE) and save it; for a JPEG the
 *       quality is searched so that the file comes as close to TARGET_BYTES as it can.
 *   photo_bench run THREADS STORE_DIR REPEAT FILE...
 *       photo_process every FILE REPEAT times on THREADS threads (round r stores under
 *       STORE_DIR/r<r>, so every store is a real write, not a duplicate); reports wall time,
 *       CPU time of the process (getrusage: every thread, libvips' own included), peak RSS
 *       and the verdicts.
 *   photo_bench stages FILE
 *       the cost of each step of the old full-decode path and of the shrink-on-load decode
 *       the lossless path uses, on one file (CPU seconds of the process).
 *
 * A measurement tool, not part of the worker: it exits 1 on any failure. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <vips/vips.h>

#include "../../worker/photo.h"
#include "antre/conf.h"

static void die(const char *what)
{
    fprintf(stderr, "photo_bench: %s: %s\n", what, vips_error_buffer());
    exit(1);
}

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- make ---------------------------------------------------------------------------------- */

/* Free the images of T (N of them). */
static void unref_all(VipsImage **t, int n)
{
    for (int i = 0; i < n; i++)
        if (t[i]) g_object_unref(t[i]);
}

/* One band of the picture: a gradient with weights GX, GY, blocks of random grey (hard edges)
 * at two scales, soft texture, all rendered into memory. */
static VipsImage *draw_band(int w, int h, int seed, double gx, double gy, double noise)
{
    VipsImage *t[14] = {0};
    VipsImage *out = NULL;
    if (vips_xyz(&t[0], w, h, NULL) || vips_extract_band(t[0], &t[1], 0, NULL) ||
        vips_extract_band(t[0], &t[2], 1, NULL) || vips_linear1(t[1], &t[3], gx / w, 0, NULL) ||
        vips_linear1(t[2], &t[4], gy / h, 40, NULL) || vips_add(t[3], t[4], &t[5], NULL))
        die("gradient");
    /* Shapes: 40x30 blocks and 160x120 blocks of random levels, zoomed with hard edges. */
    if (vips_gaussnoise(&t[6], 40, 30, "mean", 0.0, "sigma", 45.0, "seed", seed, NULL) ||
        vips_zoom(t[6], &t[7], (w + 39) / 40, (h + 29) / 30, NULL) ||
        vips_gaussnoise(&t[8], 160, 120, "mean", 0.0, "sigma", 18.0, "seed", seed + 1, NULL) ||
        vips_zoom(t[8], &t[9], (w + 159) / 160, (h + 119) / 120, NULL) ||
        vips_crop(t[7], &t[10], 0, 0, w, h, NULL) || vips_crop(t[9], &t[11], 0, 0, w, h, NULL))
        die("shapes");
    VipsImage *parts[3] = {t[5], t[10], t[11]};
    if (vips_sum(parts, &t[12], 3, NULL)) die("sum");
    /* A lens softens the edges a little; then texture and sensor noise. */
    VipsImage *u[5] = {0};
    if (vips_gaussblur(t[12], &u[0], 1.2, NULL) ||
        vips_gaussnoise(&u[1], w, h, "mean", 0.0, "sigma", noise, "seed", seed + 2, NULL) ||
        vips_add(u[0], u[1], &u[2], NULL) || vips_cast_uchar(u[2], &u[3], NULL))
        die("noise");
    out = vips_image_copy_memory(u[3]);
    if (!out) die("render");
    unref_all(u, 5);
    unref_all(t, 14);
    return out;
}

static int cmd_make(int argc, char **argv)
{
    if (argc != 8) return 2;
    const char *out = argv[2];
    int w = atoi(argv[3]), h = atoi(argv[4]), seed = atoi(argv[5]);
    double noise = atof(argv[6]);
    size_t target = (size_t)atoll(argv[7]);
    VipsImage *b[3] = {draw_band(w, h, seed * 10, 90, 50, noise),
                       draw_band(w, h, seed * 10 + 3, 60, 80, noise),
                       draw_band(w, h, seed * 10 + 6, 30, 110, noise)};
    VipsImage *img = NULL;
    if (vips_bandjoin(b, &img, 3, NULL)) die("bandjoin");
    unref_all(b, 3);
    if (strstr(out, ".png")) {
        if (vips_pngsave(img, out, "compression", 1, NULL)) die("pngsave");
        printf("{\"path\": \"%s\", \"q\": 0}\n", out);
        g_object_unref(img);
        return 0;
    }
    /* JPEG size grows with Q: bisect for the largest Q whose file is at most TARGET, or the
     * lowest above it when none is under. */
    int lo = 40, hi = 100, best = 40;
    while (lo <= hi) {
        int q = (lo + hi) / 2;
        void *buf = NULL;
        size_t len = 0;
        if (vips_jpegsave_buffer(img, &buf, &len, "Q", q, "subsample_mode",
                                 VIPS_FOREIGN_SUBSAMPLE_ON, NULL))
            die("jpegsave");
        g_free(buf);
        if (len <= target) {
            best = q;
            lo = q + 1;
        } else {
            hi = q - 1;
        }
    }
    if (vips_jpegsave(img, out, "Q", best, "subsample_mode", VIPS_FOREIGN_SUBSAMPLE_ON, NULL))
        die("jpegsave");
    struct stat st;
    if (stat(out, &st) < 0) die("stat");
    printf("{\"path\": \"%s\", \"q\": %d, \"bytes\": %lld}\n", out, best, (long long)st.st_size);
    g_object_unref(img);
    return 0;
}

/* ---- run ----------------------------------------------------------------------------------- */

struct run {
    struct photo_opts base;
    const char *store;
    char **files;
    int nfiles, total;
    atomic_int next, accepted, rejected, shrunk, lossless, failed;
};

static void *run_thread(void *arg)
{
    struct run *r = arg;
    for (;;) {
        int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->total) break;
        char dir[4096], err[512];
        snprintf(dir, sizeof dir, "%s/r%d", r->store, i / r->nfiles);
        struct photo_opts o = r->base;
        o.store_dir = dir;
        struct photo_result res;
        if (photo_process(&o, r->files[i % r->nfiles], PHOTO_SELFIE, &res, err, sizeof err) < 0) {
            fprintf(stderr, "photo_bench: %s: %s\n", r->files[i % r->nfiles], err);
            atomic_fetch_add(&r->failed, 1);
            continue;
        }
        if (res.state != PHOTO_ACCEPTED) {
            fprintf(stderr, "photo_bench: %s: rejected %s\n", r->files[i % r->nfiles], res.reason);
            atomic_fetch_add(&r->rejected, 1);
            continue;
        }
        atomic_fetch_add(&r->accepted, 1);
        if (res.shrunk) atomic_fetch_add(&r->shrunk, 1);
        if (res.lossless) atomic_fetch_add(&r->lossless, 1);
    }
    return NULL;
}

static int cmd_run(int argc, char **argv)
{
    if (argc < 6) return 2;
    int threads = atoi(argv[2]), repeat = atoi(argv[4]);
    if (threads < 1 || threads > 64 || repeat < 1) return 2;
    static struct run r;
    struct conf c;
    conf_defaults(&c);
    photo_opts_from_conf(&r.base, &c);
    r.store = argv[3];
    r.files = argv + 5;
    r.nfiles = argc - 5;
    r.total = r.nfiles * repeat;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double t0 = now_s(CLOCK_MONOTONIC);
    pthread_t tid[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, run_thread, &r) != 0) die("pthread_create");
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    double wall = now_s(CLOCK_MONOTONIC) - t0;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("{\"threads\": %d, \"photos\": %d, \"accepted\": %d, \"rejected\": %d, \"failed\": %d, "
           "\"shrunk\": %d, \"lossless\": %d, \"wall_s\": %.4f, \"cpu_s\": %.4f, "
           "\"maxrss_kb\": %ld}\n",
           threads, r.total, atomic_load(&r.accepted), atomic_load(&r.rejected),
           atomic_load(&r.failed), atomic_load(&r.shrunk), atomic_load(&r.lossless), wall, cpu,
           ru1.ru_maxrss);
    return atomic_load(&r.failed) || atomic_load(&r.rejected) ? 1 : 0;
}

/* ---- stages -------------------------------------------------------------------------------- */

static double lap_s;

/* Start a stage: the CPU clock of the process (libvips works on its own threads too). */
static void lap_start(void) { lap_s = now_s(CLOCK_PROCESS_CPUTIME_ID); }

static void lap_print(const char *name, int last)
{
    printf("\"%s\": %.4f%s", name, now_s(CLOCK_PROCESS_CPUTIME_ID) - lap_s, last ? "" : ", ");
}

static int cmd_stages(int argc, char **argv)
{
    if (argc != 3) return 2;
    const char *path = argv[2];
    VipsImage *t[8] = {0};
    struct photo_quality q;
    char err[256];
    void *buf = NULL;
    size_t len = 0;
    double avg;
    printf("{");
    lap_start();
    if (vips_jpegload(path, &t[0], "fail_on", VIPS_FAIL_ON_ERROR, NULL)) die("header");
    lap_print("header", 0);
    lap_start();
    if (!(t[1] = vips_image_copy_memory(t[0]))) die("decode");
    lap_print("full_decode", 0);
    lap_start();
    if (vips_autorot(t[1], &t[2], NULL) ||
        vips_colourspace(t[2], &t[3], VIPS_INTERPRETATION_sRGB, NULL) ||
        !(t[4] = vips_image_copy_memory(t[3])))
        die("autorot");
    lap_print("autorot_srgb", 0);
    lap_start();
    if (photo_quality_measure(t[4], &q, err, sizeof err) < 0) die(err);
    lap_print("quality_full", 0);
    lap_start();
    if (vips_jpegsave_buffer(t[4], &buf, &len, "Q", 85, "strip", TRUE, "optimize_coding", TRUE,
                             NULL))
        die("encode");
    g_free(buf);
    lap_print("encode_q85_full", 0);
    lap_start();
    if (vips_jpegload(path, &t[5], "shrink", 4, "fail_on", VIPS_FAIL_ON_ERROR, NULL) ||
        !(t[6] = vips_image_copy_memory(t[5])))
        die("shrink decode");
    lap_print("decode_shrink4", 0);
    lap_start();
    if (photo_quality_measure(t[6], &q, err, sizeof err) < 0) die(err);
    lap_print("quality_shrink4", 0);
    lap_start();
    if (vips_jpegload(path, &t[7], "shrink", 8, "fail_on", VIPS_FAIL_ON_ERROR, NULL) ||
        vips_avg(t[7], &avg, NULL))
        die("shrink decode");
    lap_print("decode_shrink8", 1);
    printf("}\n");
    unref_all(t, 8);
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    if (photo_init(argv[0], err, sizeof err) < 0) {
        fprintf(stderr, "photo_bench: %s\n", err);
        return 1;
    }
    int rc = 2;
    if (argc > 1 && !strcmp(argv[1], "make")) rc = cmd_make(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "run")) rc = cmd_run(argc, argv);
    else if (argc > 1 && !strcmp(argv[1], "stages")) rc = cmd_stages(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: photo_bench make OUT W H SEED NOISE TARGET_BYTES | run THREADS "
                        "STORE_DIR REPEAT FILE... | stages FILE.jpg\n");
    vips_shutdown();
    return rc;
}
