/* report_svg.c: the run over time as one standalone SVG document (no script, no external font
 * or style: a browser shows it as it is): the profile's name and the verdict on top, then four
 * panels stacked on one time axis: arrivals and admissions per second; applicants waiting and
 * active; the queues' backlogs; the p99 latency of each second with the 50 ms line. Each panel
 * has its axes with ticks and labels and its legend on the right. Every text is escaped; every
 * number written is finite. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "report.h"

#define SVG_W 1000
#define LEFT 70      /* room for the y tick labels */
#define RIGHT 170    /* room for the legend */
#define PANEL_H 170  /* plot height of a panel */
#define PANEL_GAP 62 /* between panels: the x tick labels and the next panel's title */
#define VERDICT_COLS 150

/* One line of a panel: its name, colour and how to read second I (NAN: no value there). */
struct line {
    const char *name, *colour;
    double (*at)(const struct second_stats *x, int arg);
    int arg;
    int dashed;
};

struct panel {
    const char *title, *unit;
    struct line lines[3];
    int nlines;
    double mark; /* a horizontal reference line (0: none) */
    const char *mark_label;
};

static double field_u32(const struct second_stats *x, int off)
{
    uint32_t v;
    memcpy(&v, (const char *)x + off, sizeof v);
    return v;
}

static double queue_len(const struct second_stats *x, int q)
{
    return x->queue_len[q] < 0 ? NAN : (double)x->queue_len[q];
}

static double p99_ms(const struct second_stats *x, int unused)
{
    (void)unused;
    return x->requests ? x->p99_us / 1000.0 : NAN;
}

#define U32(f) field_u32, (int)offsetof(struct second_stats, f)

static const struct panel panels[] = {
    {"Arrivals and admissions",
     "per second",
     {{"arrivals/s", "#1f77b4", U32(arrivals), 0}, {"admitted/s", "#2ca02c", U32(admitted), 0}},
     2,
     0,
     NULL},
    {"Applicants waiting and active",
     "applicants",
     {{"waiting", "#ff7f0e", U32(waiting), 0}, {"active", "#9467bd", U32(active), 0}},
     2,
     0,
     NULL},
    {"Queue backlogs",
     "jobs pending",
     {{"upload", "#d62728", queue_len, QUEUE_UPLOAD, 0},
      {"verify", "#17becf", queue_len, QUEUE_VERIFY, 0},
      {"register", "#8c564b", queue_len, QUEUE_REGISTER, 0}},
     3,
     0,
     NULL},
    {"p99 latency of each second", "ms", {{"p99", "#e377c2", p99_ms, 0, 0}}, 1, 50, "50 ms"},
};

#define NPANELS (int)(sizeof panels / sizeof panels[0])

/* TEXT to OUT with &, <, >, " and ' escaped, and control characters left out. */
static void put_escaped(FILE *out, const char *text, size_t n)
{
    for (size_t i = 0; i < n && text[i]; i++) {
        unsigned char c = (unsigned char)text[i];
        switch (c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if (c >= 0x20 && c != 0x7f) fputc(c, out);
        }
    }
}

/* A step of 1, 2 or 5 times a power of ten that cuts [0, MAX] in about N parts. */
static double nice_step(double max, int n)
{
    if (!(max > 0) || !isfinite(max)) return 1;
    double raw = max / n, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double step = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
    return step * mag;
}

static void tick_label(char *buf, size_t len, double v, double step)
{
    if (v >= 1e6) snprintf(buf, len, "%gM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, len, "%gk", v / 1e3);
    else if (step < 1) snprintf(buf, len, "%.*f", step < 0.1 ? 2 : 1, v);
    else snprintf(buf, len, "%.0f", v);
}

struct frame {
    double x0, y0, w, h; /* the plot area (y0: its top) */
    double xmax, ymax;   /* the values at its right and top edges */
};

static double fx(const struct frame *f, double t) { return f->x0 + f->w * t / f->xmax; }
static double fy(const struct frame *f, double v) { return f->y0 + f->h - f->h * v / f->ymax; }

static void axes(FILE *out, const struct frame *f, double xstep, double ystep, const char *unit,
                 int last)
{
    char label[32];
    /* Grid and y ticks. */
    for (double v = 0; v <= f->ymax + ystep / 2; v += ystep) {
        double y = fy(f, v);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n"
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n",
                f->x0, y, f->x0 + f->w, y, f->x0 - 5, y, f->x0, y);
        tick_label(label, sizeof label, v, ystep);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>\n",
                f->x0 - 8, y + 4, label);
    }
    /* x ticks. */
    for (double t = 0; t <= f->xmax + xstep / 2; t += xstep) {
        double x = fx(f, t);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\" text-anchor=\"middle\">%.0f</text>\n",
                x, f->y0 + f->h, x, f->y0 + f->h + 5, x, f->y0 + f->h + 18, t);
    }
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n",
            f->x0, f->y0, f->w, f->h);
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" class=\"unit\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
            f->x0 - 52, f->y0 + f->h / 2, f->x0 - 52, f->y0 + f->h / 2);
    put_escaped(out, unit, strlen(unit));
    fputs("</text>\n", out);
    if (last)
        fprintf(out,
                "<text x=\"%.1f\" y=\"%.1f\" class=\"unit\" text-anchor=\"middle\">time since "
                "the first arrival (s)</text>\n",
                f->x0 + f->w / 2, f->y0 + f->h + 36);
}

/* LINE over the run as one path. Seconds without a value (a queue not sampled then) are
 * bridged: the samples come every few seconds, and a line broken at each gap would not show. */
static void plot(FILE *out, const struct frame *f, const struct run_stats *s, const struct line *l)
{
    fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s d=\"", l->colour,
            l->dashed ? " stroke-dasharray=\"6 4\"" : "");
    int any = 0;
    for (size_t i = 0; i < s->nseconds; i++) {
        double v = l->at(&s->seconds[i], l->arg);
        if (isnan(v)) continue;
        if (v > f->ymax) v = f->ymax;
        fprintf(out, "%s%.1f %.1f", any ? " L" : "M", fx(f, (double)i), fy(f, v));
        any = 1;
    }
    if (!any) fprintf(out, "M%.1f %.1f", f->x0, f->y0 + f->h);
    fputs("\"/>\n", out);
}

static void legend(FILE *out, const struct frame *f, const struct panel *p)
{
    double x = f->x0 + f->w + 18, y = f->y0 + 14;
    for (int k = 0; k < p->nlines; k++, y += 20) {
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/>\n<text x=\"%.1f\" y=\"%.1f\" class=\"legend\">",
                x, y - 4, x + 22, y - 4, p->lines[k].colour, x + 28, y);
        put_escaped(out, p->lines[k].name, strlen(p->lines[k].name));
        fputs("</text>\n", out);
    }
    if (p->mark > 0) {
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"mark\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" class=\"legend\">",
                x, y - 4, x + 22, y - 4, x + 28, y);
        put_escaped(out, p->mark_label, strlen(p->mark_label));
        fputs("</text>\n", out);
    }
}

static void draw_panel(FILE *out, const struct run_stats *s, const struct panel *p, double top,
                       double xmax, double xstep, int last)
{
    double max = p->mark;
    for (size_t i = 0; i < s->nseconds; i++)
        for (int k = 0; k < p->nlines; k++) {
            double v = p->lines[k].at(&s->seconds[i], p->lines[k].arg);
            if (isfinite(v) && v > max) max = v;
        }
    max *= 1.08; /* headroom: a line at the top would hide in the frame */
    double ystep = nice_step(max > 0 ? max : 1, 4);
    struct frame f = {LEFT, top, SVG_W - LEFT - RIGHT, PANEL_H, xmax, 0};
    f.ymax = ceil((max > 0 ? max : 1) / ystep) * ystep;
    if (!(f.ymax > 0)) f.ymax = 1;

    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" class=\"panel\">", f.x0, top - 10);
    put_escaped(out, p->title, strlen(p->title));
    fputs("</text>\n", out);
    axes(out, &f, xstep, ystep, p->unit, last);
    if (p->mark > 0)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"mark\"/>\n",
                f.x0, fy(&f, p->mark), f.x0 + f.w, fy(&f, p->mark));
    for (int k = 0; k < p->nlines; k++) plot(out, &f, s, &p->lines[k]);
    legend(out, &f, p);
}

void report_svg(FILE *out, const struct profile *p, const struct run_stats *s)
{
    char verdict[REPORT_VERDICT_MAX];
    report_verdict(verdict, sizeof verdict, p, s);
    /* The verdict in lines of at most VERDICT_COLS characters, cut between words. */
    const char *lines[8];
    size_t lens[8];
    int nlines = 0;
    for (const char *w = verdict; *w && nlines < 8;) {
        size_t n = strlen(w);
        if (n > VERDICT_COLS) {
            n = VERDICT_COLS;
            while (n > 0 && w[n] != ' ') n--;
            if (n == 0) n = VERDICT_COLS;
        }
        lines[nlines] = w;
        lens[nlines++] = n;
        w += n;
        while (*w == ' ') w++;
    }
    double head = 48 + 16.0 * nlines + 30;
    double height = head + NPANELS * (PANEL_H + PANEL_GAP) + 10;

    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %.0f\" width=\"%d\" "
            "height=\"%.0f\" font-family=\"sans-serif\">\n",
            SVG_W, height, SVG_W, height);
    fputs("<style>\n"
          ".title{font-size:20px;font-weight:bold;fill:#222}\n"
          ".verdict{font-size:12px;fill:#333}\n"
          ".panel{font-size:14px;font-weight:bold;fill:#222}\n"
          ".tick{font-size:11px;fill:#444}\n"
          ".unit{font-size:12px;fill:#444}\n"
          ".legend{font-size:12px;fill:#222}\n"
          ".grid{stroke:#e4e4e4;stroke-width:1}\n"
          ".axis{stroke:#666;stroke-width:1}\n"
          ".frame{fill:none;stroke:#888;stroke-width:1}\n"
          ".mark{stroke:#b00;stroke-width:1.2;stroke-dasharray:5 4}\n"
          "</style>\n",
          out);
    fprintf(out, "<rect width=\"%d\" height=\"%.0f\" fill=\"#fff\"/>\n", SVG_W, height);
    fputs("<text x=\"20\" y=\"32\" class=\"title\">antre-bench: ", out);
    const char *name = p && p->name[0] ? p->name : "(unnamed profile)";
    put_escaped(out, name, strlen(name));
    fprintf(out, " (%.0f s, %llu applicants)</text>\n", isfinite(s->wall_s) ? s->wall_s : 0,
            (unsigned long long)s->arrived);
    for (int i = 0; i < nlines; i++) {
        fprintf(out, "<text x=\"20\" y=\"%d\" class=\"verdict\">", 56 + 16 * i);
        put_escaped(out, lines[i], lens[i]);
        fputs("</text>\n", out);
    }

    double xmax = s->nseconds > 1 ? (double)(s->nseconds - 1) : 1;
    double xstep = nice_step(xmax, 10);
    for (int k = 0; k < NPANELS; k++)
        draw_panel(out, s, &panels[k], head + k * (PANEL_H + PANEL_GAP), xmax, xstep,
                   k == NPANELS - 1);
    fputs("</svg>\n", out);
}
