/* test_bench_profile.c: unit tests of antre-bench's arrival profiles (bench/sim/profile.c): the
 * defaults, every refusal with the line it names, multi-line values, the piecewise-linear rate,
 * scaling, the duration cut, the expected arrivals; and every shipped conf/bench/NAME.ini loads. */
#include "profile.h"
#include "tmpdir.h"

#include <criterion/criterion.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static char dir[TMPDIR_LEN];

static void setup(void) { tmpdir_make(dir, "bench_profile"); }

static void teardown(void) { tmpdir_remove(dir); }

TestSuite(bench_profile, .init = setup, .fini = teardown);

/* Load TEXT from DIR/p.ini; returns profile_load's result, the errors in ERR. */
static int load(const char *text, struct profile *p, char *err, size_t errlen)
{
    const char *path = tmpdir_write(dir, "p.ini", text, 0600);
    return profile_load(path, p, err, errlen);
}

/* Assert that TEXT is refused with an error on LINE whose reason contains WHAT. */
static void refused(const char *text, int line, const char *what)
{
    struct profile p;
    char err[2048], want[600];
    cr_assert_eq(load(text, &p, err, sizeof err), -1, "accepted: %s", text);
    snprintf(want, sizeof want, "%s/p.ini:%d: ", dir, line);
    cr_assert_not_null(strstr(err, want), "want %s in: %s", want, err);
    cr_assert_not_null(strstr(err, what), "want \"%s\" in: %s", what, err);
}

#define NEAR(a, b)                                                                                 \
    cr_assert(fabs((a) - (b)) < 1e-9, "%s = %.12g, want %.12g", #a, (double)(a), (double)(b))

Test(bench_profile, defaults)
{
    struct profile p;
    profile_defaults(&p);
    cr_assert_str_eq(p.room, "gelombang");
    cr_assert_eq(p.npoints, 2);
    NEAR(p.duration_s, 60);
    NEAR(profile_rate_at(&p, 30), 10);
    NEAR(profile_expected_arrivals(&p), 600);
    cr_assert_eq(p.max_applicants, 0);
    cr_assert_eq(p.hammer_joins, 5);
    cr_assert_eq(p.max_retries, 3);
    NEAR(p.p_page, 0.5);
    NEAR(p.poll_jitter, 0.2);
    NEAR(p.photo_kb_min, 150);
    NEAR(p.photo_kb_max, 3000);
    NEAR(p.checklist_poll_s, 2);
    NEAR(p.checklist_timeout_s, 120);

    /* an empty file is the defaults, named after the file */
    char err[512];
    cr_assert_eq(load("# nothing\n", &p, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.name, "p");
    NEAR(p.duration_s, 60);
}

Test(bench_profile, full_file)
{
    struct profile p;
    char err[1024];
    const char *text = "; a comment\n"
                       "[profile]\n"
                       "name = spike\n"
                       "description = a short spike,\n"
                       "    then nothing\n"
                       "room = wave-2\n"
                       "max_applicants = 500\n"
                       "\n"
                       "[arrivals]\n"
                       "points = 0:0, 10:100,\n"
                       "         20:0\n"
                       "[behaviour]\n"
                       "p_hammer = 1\n"
                       "hammer_joins = 3\n"
                       "p_abandon = 0 ; never\n"
                       "photo_kb_min = 10\n"
                       "photo_kb_max = 10\n";
    cr_assert_eq(load(text, &p, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(p.name, "spike");
    cr_assert_str_eq(p.description, "a short spike, then nothing");
    cr_assert_str_eq(p.room, "wave-2");
    cr_assert_eq(p.max_applicants, 500);
    cr_assert_eq(p.npoints, 3);
    NEAR(p.duration_s, 20); /* the last point's time */
    NEAR(p.p_hammer, 1);
    cr_assert_eq(p.hammer_joins, 3);
    NEAR(p.p_abandon, 0);
    NEAR(p.p_page, 0.5); /* untouched keys keep their default */
    NEAR(p.p_leave, 0.9);
    NEAR(profile_expected_arrivals(&p), 500); /* 1000 capped by max_applicants */
}

Test(bench_profile, errors_name_their_line)
{
    refused("[profile]\n[nosuch]\nx = 1\n", 3, "unknown section [nosuch]");
    refused("[profile]\nname = a\ncolour = red\n", 3, "unknown key \"colour\" in [profile]");
    refused("\n\n[behaviour]\np_page = lots\n", 4, "p_page: \"lots\" is not a number");
    refused("[behaviour]\np_page = 0.5x\n", 2, "is not a number");
    refused("[behaviour]\np_retry = 1.5\n", 2, "p_retry: 1.5 is not a probability (0 to 1)");
    refused("[behaviour]\np_tus = -0.1\n", 2, "not a probability");
    refused("[behaviour]\nhammer_joins = 2.5\n", 2, "not a whole number");
    refused("[behaviour]\nhammer_joins = 1\n", 2, "hammer_joins: 1 is outside 2 to 100");
    refused("[profile]\nduration_s = 0\n", 2, "duration_s");
    refused("[profile]\nduration_s = nan\n", 2, "not a number");
    refused("[profile]\nroom = Gelombang!\n", 2, "not a room name");
    refused("[arrivals]\npoints = 0:1, 10:5, 10:6\n", 2, "time 10 is not after");
    refused("[arrivals]\npoints = 0:1, 10:5,\n  5:6\n", 3, "time 5 is not after");
    refused("[arrivals]\npoints = 0:1, 10:-5\n", 2, "rate -5 at 10s is negative");
    refused("[arrivals]\npoints = -1:1, 10:5\n", 2, "negative");
    refused("[arrivals]\npoints = 0:1, 10\n", 2, "\"10\" is not t_s:per_s");
    refused("[arrivals]\npoints = 0:1\n", 2, "at least two points");
    refused("[profile]\nname = a\nname = b\n", 3, "given twice (first on line 2)");
    refused("[profile]\nthis line is nonsense\n", 2, "syntax error");
    refused("[behaviour]\np_page = 0.1\n  0.2\n", 3, "takes one line");
    refused("[behaviour]\nphoto_kb_min = 500\nphoto_kb_max = 100\n", 3, "below photo_kb_min");

    /* every error in one pass */
    struct profile p;
    char err[2048];
    cr_assert_eq(load("[behaviour]\np_page = 2\np_tus = x\n", &p, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "p.ini:2: p_page"), "%s", err);
    cr_assert_not_null(strstr(err, "p.ini:3: p_tus"), "%s", err);

    cr_assert_eq(profile_load("/nonexistent/x.ini", &p, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "/nonexistent/x.ini:0: cannot open"), "%s", err);
}

Test(bench_profile, long_lines_refused)
{
    char text[600];
    int n = snprintf(text, sizeof text, "[profile]\ndescription = ");
    memset(text + n, 'a', 400);
    strcpy(text + n + 400, "\nroom = x\n");
    refused(text, 2, "line longer than");
}

Test(bench_profile, interpolation)
{
    struct profile p;
    char err[512];
    cr_assert_eq(load("[arrivals]\npoints = 10:0, 20:100, 40:50, 50:50\n", &p, err, sizeof err), 0,
                 "%s", err);
    NEAR(profile_rate_at(&p, 0), 0); /* before the first point */
    NEAR(profile_rate_at(&p, 9.99), 0);
    NEAR(profile_rate_at(&p, 10), 0);
    NEAR(profile_rate_at(&p, 15), 50);
    NEAR(profile_rate_at(&p, 20), 100);
    NEAR(profile_rate_at(&p, 30), 75);
    NEAR(profile_rate_at(&p, 45), 50);
    NEAR(profile_rate_at(&p, 50), 50);
    NEAR(profile_rate_at(&p, 50.01), 0); /* after the last */
    /* 10..20: 500, 20..40: 1500, 40..50: 500 */
    NEAR(profile_expected_arrivals(&p), 2500);
}

Test(bench_profile, scaling)
{
    struct profile p;
    char err[512];
    cr_assert_eq(load("[profile]\nmax_applicants = 1000\n[arrivals]\npoints = 0:0, 60:1333, "
                      "120:200\n",
                      &p, err, sizeof err),
                 0, "%s", err);
    NEAR(profile_expected_arrivals(&p), 1000); /* capped */
    p.max_applicants = 0;
    double before = profile_expected_arrivals(&p);
    NEAR(before, 30 * 1333 + 60 * (1333 + 200) / 2.0);
    p.max_applicants = 1000;
    profile_scale(&p, 0.01);
    NEAR(profile_rate_at(&p, 60), 13.33);
    cr_assert_eq(p.max_applicants, 10);
    NEAR(profile_expected_arrivals(&p), 10);
    p.max_applicants = 0;
    NEAR(profile_expected_arrivals(&p), before * 0.01);
    profile_scale(&p, 0); /* ignored */
    NEAR(profile_rate_at(&p, 60), 13.33);
    p.max_applicants = 3;
    profile_scale(&p, 0.01); /* a cap never scales to 0 (0 means no cap) */
    cr_assert_eq(p.max_applicants, 1);
}

Test(bench_profile, duration_cut)
{
    struct profile p;
    char err[512];
    cr_assert_eq(load("[arrivals]\npoints = 0:0, 10:100, 20:0, 30:40\n", &p, err, sizeof err), 0,
                 "%s", err);
    NEAR(profile_expected_arrivals(&p), 1000 + 200);
    profile_set_duration(&p, 15);
    NEAR(p.duration_s, 15);
    cr_assert_eq(p.npoints, 3); /* 0, 10, and the cut at 15 */
    NEAR(p.points[2].t_s, 15);
    NEAR(p.points[2].per_s, 50);
    NEAR(profile_rate_at(&p, 12), 80);
    NEAR(profile_rate_at(&p, 15), 50);
    NEAR(profile_rate_at(&p, 16), 0);
    NEAR(profile_expected_arrivals(&p), 500 + 375);

    /* a cut on a point keeps it; a longer duration leaves the points alone */
    profile_set_duration(&p, 10);
    cr_assert_eq(p.npoints, 2);
    NEAR(profile_expected_arrivals(&p), 500);
    profile_set_duration(&p, 100);
    cr_assert_eq(p.npoints, 2);
    NEAR(profile_expected_arrivals(&p), 500);
    NEAR(profile_rate_at(&p, 50), 0);

    /* duration_s in the file cuts the points the same way */
    cr_assert_eq(load("[profile]\nduration_s = 5\n[arrivals]\npoints = 0:0, 10:100\n", &p, err,
                      sizeof err),
                 0, "%s", err);
    cr_assert_eq(p.npoints, 2);
    NEAR(profile_rate_at(&p, 5), 50);
    NEAR(profile_expected_arrivals(&p), 125);
    /* a duration past the last point: the rate is 0 after it */
    cr_assert_eq(load("[profile]\nduration_s = 90\n[arrivals]\npoints = 0:2, 10:2\n", &p, err,
                      sizeof err),
                 0, "%s", err);
    NEAR(p.duration_s, 90);
    NEAR(profile_expected_arrivals(&p), 20);
}

/* Every shipped profile loads, describes itself, and expects some arrivals. */
Test(bench_profile, shipped_profiles_load)
{
    glob_t g;
    cr_assert_eq(glob("conf/bench/*.ini", 0, NULL, &g), 0,
                 "no conf/bench/*.ini (run from the tree)");
    int seen_wave = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct profile p;
        char err[2048];
        cr_assert_eq(profile_load(g.gl_pathv[i], &p, err, sizeof err), 0, "%s", err);
        cr_assert_gt(strlen(p.description), 40, "%s: no description", g.gl_pathv[i]);
        cr_assert_gt(profile_expected_arrivals(&p), 0, "%s: no arrivals", g.gl_pathv[i]);
        if (!strcmp(p.name, "wave-opening")) {
            seen_wave = 1;
            /* at scale 1 the peak is the real one: 80,000 in a minute */
            double peak = 0;
            for (size_t k = 0; k < p.npoints; k++)
                if (p.points[k].per_s > peak) peak = p.points[k].per_s;
            cr_assert(fabs(peak - 80000.0 / 60) < 1, "wave-opening peak %g", peak);
        }
    }
    cr_assert_geq(g.gl_pathc, 4);
    cr_assert(seen_wave);
    globfree(&g);
}
