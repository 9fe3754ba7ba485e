/* prom.h: writing Prometheus text exposition (format 0.0.4) into an evbuffer.
 *
 * A family is announced once with prom_family() (HELP and TYPE lines), then each sample is one
 * line `name{label="value",...} number`. Label values are escaped here (backslash, double quote,
 * newline), so callers may pass any text; names are the caller's constants and are not checked. */
#ifndef ANTRE_PROM_H
#define ANTRE_PROM_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_label {
    const char *name;
    const char *value;
};

/* Append `# HELP NAME HELP` and `# TYPE NAME TYPE`. HELP is escaped (backslash, newline). */
void prom_family(struct evbuffer *out, const char *name, enum prom_type type, const char *help);

/* Append one sample of NAME with the NLABELS labels of LABELS (may be NULL when NLABELS is 0):
 * an unsigned counter, a signed gauge, or a floating-point value (shortest exact-enough form). */
void prom_u64(struct evbuffer *out, const char *name, const struct prom_label *labels,
              size_t nlabels, uint64_t v);
void prom_i64(struct evbuffer *out, const char *name, const struct prom_label *labels,
              size_t nlabels, int64_t v);
void prom_double(struct evbuffer *out, const char *name, const struct prom_label *labels,
                 size_t nlabels, double v);

/* Write V escaped as a label value (without the quotes) into DST (DSTLEN bytes, always
 * NUL-terminated when DSTLEN > 0). Returns the escaped length, or -1 when it did not fit. */
int prom_escape(char *dst, size_t dstlen, const char *v);

#endif
