/* profile.c: antre-bench's arrival profiles (conf/bench/NAME.ini): the key table, the strict INI
 * loader (inih through ini_lines.h), and the arrival-rate curve (piecewise linear, its
 * integral, scaling, cutting).
 *
 * Like common/conf.c, the table below is the one declaration of every key, its type, bounds and
 * default; loading starts from the defaults and then reads the file line by line, collecting
 * every error as "file:line: reason" so a profile is fixed in one pass. A value may continue on
 * the following indented lines (inih's multi-line values): that is how a long `points` list or
 * `description` is written within inih's line length. */
#include "profile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "antre/ini_lines.h"

enum ptype { P_STR, P_ROOM, P_DOUBLE, P_PROB, P_INT, P_U64, P_POINTS };

struct pkey {
    const char *section;
    const char *name;
    enum ptype type;
    double min, max; /* bounds of numbers (inclusive) */
    const char *def;
    size_t offset;
};

#define F(field) offsetof(struct profile, field)
#define PROB(name, def)                                                                            \
    {                                                                                              \
        "behaviour", #name, P_PROB, 0, 1, def, F(name)                                             \
    }

/* The default arrivals: a steady 10 per second for a minute (duration_s defaults to the last
 * point's time). */
#define DEFAULT_POINTS "0:10, 60:10"

static const struct pkey table[] = {
    {"profile", "name", P_STR, 0, PROFILE_NAME_MAX - 1, "", F(name)},
    {"profile", "description", P_STR, 0, PROFILE_TEXT_MAX - 1, "", F(description)},
    {"profile", "room", P_ROOM, 1, PROFILE_NAME_MAX - 1, "gelombang", F(room)},
    {"profile", "duration_s", P_DOUBLE, 0.001, 30 * 86400.0, "60", F(duration_s)},
    {"profile", "max_applicants", P_U64, 0, 1e12, "0", F(max_applicants)},
    {"arrivals", "points", P_POINTS, 0, 1e9, DEFAULT_POINTS, F(points)},
    PROB(p_page, "0.5"),
    PROB(p_hammer, "0.1"),
    {"behaviour", "hammer_joins", P_INT, 2, 100, "5", F(hammer_joins)},
    PROB(p_abandon, "0.05"),
    {"behaviour", "abandon_mean_s", P_DOUBLE, 0.001, 86400, "120", F(abandon_mean_s)},
    PROB(p_leave, "0.9"),
    {"behaviour", "poll_jitter", P_DOUBLE, 0, 1, "0.2", F(poll_jitter)},
    PROB(p_retry, "0.9"),
    {"behaviour", "max_retries", P_INT, 0, 100, "3", F(max_retries)},
    PROB(p_invalid, "0.1"),
    PROB(p_tus, "0.3"),
    PROB(p_oversize, "0.02"),
    PROB(p_corrupt, "0.02"),
    PROB(p_wrong_format, "0.02"),
    {"behaviour", "photo_kb_min", P_DOUBLE, 1, 1e6, "150", F(photo_kb_min)},
    {"behaviour", "photo_kb_max", P_DOUBLE, 1, 1e6, "3000", F(photo_kb_max)},
    PROB(p_reupload, "0.1"),
    PROB(p_verify_email, "0.3"),
    PROB(p_wrong_code, "0.05"),
    {"behaviour", "checklist_poll_s", P_DOUBLE, 0.01, 3600, "2", F(checklist_poll_s)},
    {"behaviour", "checklist_timeout_s", P_DOUBLE, 0.1, 86400, "120", F(checklist_timeout_s)},
};
#define NTABLE (sizeof table / sizeof table[0])

struct load {
    struct profile *p;
    const char *path;
    struct ini_lines lines; /* the reader; lines.line is the line errors name */
    int errors;
    char *err;
    size_t errlen;
    size_t used;
    const struct pkey *prev; /* the key of the previous value line, for continuations */
    int seen_line[NTABLE];
};

static void add_error(struct load *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_error(struct load *ld, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ld->errors++;
    if (!ld->err || ld->used + 1 >= ld->errlen) return;
    int w = snprintf(ld->err + ld->used, ld->errlen - ld->used, "%s%s:%d: %s", ld->used ? "\n" : "",
                     ld->path, ld->lines.line, reason);
    if (w > 0)
        ld->used += (size_t)w < ld->errlen - ld->used ? (size_t)w : ld->errlen - ld->used - 1;
}

/* A whole number or decimal, finite, nothing after it. */
static int parse_number(const char *v, double *out)
{
    char *end;
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    errno = 0;
    double d = strtod(v, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == v || *end || errno || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

/* Append the "t_s:per_s" pairs of V (comma-separated) to P's points. */
static void parse_points(struct load *ld, const char *v)
{
    struct profile *p = ld->p;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t') tok++;
        if (!*tok) continue;
        char *colon = strchr(tok, ':');
        double t, r;
        if (colon) *colon = 0;
        if (!colon || parse_number(tok, &t) < 0 || parse_number(colon + 1, &r) < 0) {
            if (colon) *colon = ':';
            add_error(ld, "points: \"%s\" is not t_s:per_s (two numbers)", tok);
            continue;
        }
        if (t < 0) {
            add_error(ld, "points: time %g is negative", t);
            continue;
        }
        if (r < 0) {
            add_error(ld, "points: rate %g at %gs is negative", r, t);
            continue;
        }
        if (p->npoints && t <= p->points[p->npoints - 1].t_s) {
            add_error(ld,
                      "points: time %g is not after the previous point's %g (times must increase)",
                      t, p->points[p->npoints - 1].t_s);
            continue;
        }
        if (p->npoints == PROFILE_MAX_POINTS) {
            add_error(ld, "points: more than %d points", PROFILE_MAX_POINTS);
            return;
        }
        p->points[p->npoints].t_s = t;
        p->points[p->npoints].per_s = r;
        p->npoints++;
    }
}

static int room_name_ok(const char *v)
{
    if (!*v) return 0;
    for (const char *c = v; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return 0;
    return 1;
}

/* Set key K of P from V. CONTINUED: V continues the previous line's value. */
static void set_value(struct load *ld, const struct pkey *k, const char *v, int continued)
{
    char *field = (char *)ld->p + k->offset;
    double d = 0;
    switch (k->type) {
    case P_STR:
    case P_ROOM: {
        size_t have = continued ? strlen(field) : 0;
        size_t len = strlen(v);
        if (have + (have ? 1 : 0) + len > (size_t)k->max) {
            add_error(ld, "%s: longer than %d characters", k->name, (int)k->max);
            return;
        }
        if (k->type == P_ROOM && !room_name_ok(v)) {
            add_error(ld, "room: \"%s\" is not a room name (a-z, 0-9, - and _)", v);
            return;
        }
        if (have) field[have++] = ' ';
        memcpy(field + have, v, len + 1);
        return;
    }
    case P_POINTS:
        if (!continued) ld->p->npoints = 0;
        parse_points(ld, v);
        return;
    default: break;
    }
    if (parse_number(v, &d) < 0) {
        add_error(ld, "%s: \"%s\" is not a number", k->name, v);
        return;
    }
    if (d < k->min || d > k->max) {
        if (k->type == P_PROB) add_error(ld, "%s: %g is not a probability (0 to 1)", k->name, d);
        else add_error(ld, "%s: %g is outside %g to %g", k->name, d, k->min, k->max);
        return;
    }
    if ((k->type == P_INT || k->type == P_U64) && d != floor(d)) {
        add_error(ld, "%s: %g is not a whole number", k->name, d);
        return;
    }
    if (k->type == P_INT) *(int *)field = (int)d;
    else if (k->type == P_U64) *(uint64_t *)field = (uint64_t)d;
    else *(double *)field = d;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct load *ld = user;
    const struct pkey *k = NULL;
    int section_known = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        if (strcmp(table[i].section, section)) continue;
        section_known = 1;
        if (!strcmp(table[i].name, name)) k = &table[i];
    }
    if (ld->lines.indented && ld->lines.may_continue && k == ld->prev) {
        if (k->type != P_STR && k->type != P_POINTS)
            add_error(ld, "%s: takes one line (an indented line continues a value)", k->name);
        else set_value(ld, k, value, 1);
        return 1;
    }
    ld->prev = k;
    ld->lines.may_continue = k != NULL; /* an indented line next continues this value */
    if (!section_known) {
        add_error(ld, "unknown section [%s]", section);
        return 1;
    }
    if (!k) {
        add_error(ld, "unknown key \"%s\" in [%s]", name, section);
        return 1;
    }
    size_t i = (size_t)(k - table);
    if (ld->seen_line[i]) {
        add_error(ld, "%s: given twice (first on line %d)", name, ld->seen_line[i]);
        return 1;
    }
    ld->seen_line[i] = ld->lines.line;
    set_value(ld, k, value, 0);
    return 1;
}

/* ini_lines' refusals (over-long lines, syntax errors), at the line it names. */
static void refuse_line(void *arg, const char *reason) { add_error(arg, "%s", reason); }

static void apply_default(struct profile *p, const struct pkey *k)
{
    struct load ld;
    memset(&ld, 0, sizeof ld);
    ld.p = p;
    ld.path = "default";
    set_value(&ld, k, k->def, 0);
}

void profile_defaults(struct profile *p)
{
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < NTABLE; i++) apply_default(p, &table[i]);
    p->duration_s = p->points[p->npoints - 1].t_s;
}

/* The file's stem: conf/bench/wave-opening.ini -> wave-opening. */
static void stem_of(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strcspn(base, ".");
    if (len >= outlen) len = outlen - 1;
    memcpy(out, base, len);
    out[len] = 0;
}

/* Checks across keys, each reported at the line of the key that breaks it. */
static void check_whole(struct load *ld)
{
    struct profile *p = ld->p;
    size_t kmin = 0, kmax = 0, kpoints = 0, kdur = 0;
    for (size_t i = 0; i < NTABLE; i++) {
        if (!strcmp(table[i].name, "photo_kb_min")) kmin = i;
        if (!strcmp(table[i].name, "photo_kb_max")) kmax = i;
        if (!strcmp(table[i].name, "points")) kpoints = i;
        if (!strcmp(table[i].name, "duration_s")) kdur = i;
    }
    if (p->photo_kb_min > p->photo_kb_max) {
        ld->lines.line = ld->seen_line[kmax] ? ld->seen_line[kmax] : ld->seen_line[kmin];
        add_error(ld, "photo_kb_max: %g is below photo_kb_min (%g)", p->photo_kb_max,
                  p->photo_kb_min);
    }
    if (ld->seen_line[kpoints] && p->npoints < 2 && !ld->errors) {
        ld->lines.line = ld->seen_line[kpoints];
        add_error(ld, "points: needs at least two points (the rate is 0 outside them)");
    }
    if (!p->name[0]) stem_of(ld->path, p->name, sizeof p->name);
    if (!ld->seen_line[kdur] && p->npoints) p->duration_s = p->points[p->npoints - 1].t_s;
    if (ld->seen_line[kdur]) profile_set_duration(p, p->duration_s);
}

int profile_load(const char *path, struct profile *p, char *err, size_t errlen)
{
    struct load ld;
    memset(&ld, 0, sizeof ld);
    if (errlen) err[0] = 0;
    profile_defaults(p);
    ld.p = p;
    ld.path = path;
    ld.err = err;
    ld.errlen = errlen;
    /* An indented line continues the value of the line before it (a long points list). */
    ld.lines.too_long_hint = "continue a value on an indented line";
    ld.lines.refuse = refuse_line;
    ld.lines.arg = &ld;
    if (ini_lines_parse(&ld.lines, path, on_value, &ld) < 0) {
        snprintf(err, errlen, "%s:0: cannot open: %s", path, strerror(errno));
        return -1;
    }
    check_whole(&ld);
    return ld.errors ? -1 : 0;
}

void profile_scale(struct profile *p, double scale)
{
    if (!(scale > 0)) return;
    for (size_t i = 0; i < p->npoints; i++) p->points[i].per_s *= scale;
    if (p->max_applicants) {
        double m = llround((double)p->max_applicants * scale);
        p->max_applicants = m < 1 ? 1 : (uint64_t)m;
    }
}

/* Linear interpolation between points A and B at T (A.t_s <= T <= B.t_s). */
static double lerp(const struct profile_point *a, const struct profile_point *b, double t)
{
    double span = b->t_s - a->t_s;
    if (span <= 0) return b->per_s;
    return a->per_s + (b->per_s - a->per_s) * (t - a->t_s) / span;
}

void profile_set_duration(struct profile *p, double duration_s)
{
    if (!(duration_s > 0)) return;
    p->duration_s = duration_s;
    size_t keep = 0;
    while (keep < p->npoints && p->points[keep].t_s <= duration_s) keep++;
    if (keep == p->npoints) return;
    if (keep > 0 && p->points[keep - 1].t_s < duration_s) {
        /* the rate at the cut, so the curve up to it is unchanged */
        double r = lerp(&p->points[keep - 1], &p->points[keep], duration_s);
        p->points[keep].t_s = duration_s;
        p->points[keep].per_s = r;
        keep++;
    }
    p->npoints = keep;
}

double profile_rate_at(const struct profile *p, double t_s)
{
    if (p->npoints == 0 || t_s < p->points[0].t_s || t_s > p->duration_s) return 0;
    for (size_t i = 0; i + 1 < p->npoints; i++)
        if (t_s <= p->points[i + 1].t_s) return lerp(&p->points[i], &p->points[i + 1], t_s);
    return t_s == p->points[p->npoints - 1].t_s ? p->points[p->npoints - 1].per_s : 0;
}

double profile_expected_arrivals(const struct profile *p)
{
    double sum = 0;
    for (size_t i = 0; i + 1 < p->npoints; i++) {
        const struct profile_point *a = &p->points[i], *b = &p->points[i + 1];
        if (a->t_s >= p->duration_s) break;
        struct profile_point end = *b;
        if (b->t_s > p->duration_s) {
            end.t_s = p->duration_s;
            end.per_s = lerp(a, b, p->duration_s);
        }
        sum += (end.t_s - a->t_s) * (a->per_s + end.per_s) / 2;
    }
    if (p->max_applicants && sum > (double)p->max_applicants) sum = (double)p->max_applicants;
    return sum;
}
