/* prom.c: Prometheus text helpers (see prom.h). */
#include "antre/prom.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] =
    {[PROM_COUNTER] = "counter", [PROM_GAUGE] = "gauge", [PROM_HISTOGRAM] = "histogram"};

/* The escaped form of C, or NULL when C is written as is. HELP text escapes no quote. */
static const char *escape_of(char c, int quote)
{
    if (c == '\\') return "\\\\";
    if (c == '\n') return "\\n";
    if (c == '"' && quote) return "\\\"";
    return NULL;
}

static void add_escaped(struct evbuffer *out, const char *v, int quote)
{
    const char *run = v;
    for (; *v; v++) {
        const char *e = escape_of(*v, quote);
        if (!e) continue;
        evbuffer_add(out, run, (size_t)(v - run));
        evbuffer_add(out, e, strlen(e));
        run = v + 1;
    }
    evbuffer_add(out, run, (size_t)(v - run));
}

int prom_escape(char *dst, size_t dstlen, const char *v)
{
    size_t n = 0;
    for (; *v; v++) {
        const char *e = escape_of(*v, 1);
        size_t k = e ? strlen(e) : 1;
        if (n + k >= dstlen) {
            if (dstlen) dst[n] = 0;
            return -1;
        }
        memcpy(dst + n, e ? e : v, k);
        n += k;
    }
    if (!dstlen) return -1;
    dst[n] = 0;
    return (int)n;
}

void prom_family(struct evbuffer *out, const char *name, enum prom_type type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s ", name);
    add_escaped(out, help, 0);
    evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type_names[type]);
}

/* NAME{labels} and the space before the value. */
static void sample_head(struct evbuffer *out, const char *name, const struct prom_label *labels,
                        size_t nlabels)
{
    evbuffer_add(out, name, strlen(name));
    for (size_t i = 0; i < nlabels; i++) {
        evbuffer_add_printf(out, "%s%s=\"", i ? "," : "{", labels[i].name);
        add_escaped(out, labels[i].value, 1);
        evbuffer_add(out, "\"", 1);
    }
    evbuffer_add(out, nlabels ? "} " : " ", nlabels ? 2 : 1);
}

void prom_u64(struct evbuffer *out, const char *name, const struct prom_label *labels,
              size_t nlabels, uint64_t v)
{
    sample_head(out, name, labels, nlabels);
    evbuffer_add_printf(out, "%llu\n", (unsigned long long)v);
}

void prom_i64(struct evbuffer *out, const char *name, const struct prom_label *labels,
              size_t nlabels, int64_t v)
{
    sample_head(out, name, labels, nlabels);
    evbuffer_add_printf(out, "%lld\n", (long long)v);
}

void prom_double(struct evbuffer *out, const char *name, const struct prom_label *labels,
                 size_t nlabels, double v)
{
    sample_head(out, name, labels, nlabels);
    if (isnan(v)) evbuffer_add_printf(out, "NaN\n");
    else if (isinf(v)) evbuffer_add_printf(out, "%sInf\n", v < 0 ? "-" : "+");
    else evbuffer_add_printf(out, "%.15g\n", v);
}
