/* sink.h: the outside world antre-bench plays for the deployment it measures, on loopback:
 * an HTTP sink that is the SMS provider ([sms] url) and the downstream registration system
 * ([downstream] url), and an SMTP sink that is the mail server ([smtp] url). Both run on the
 * bench's event loop, keep every code they were sent so that a virtual applicant can read its
 * own back (as a person reads a phone or a mailbox), and count what they received. */
#ifndef ANTRE_BENCH_SINK_H
#define ANTRE_BENCH_SINK_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct sink;

/* Start the sinks on BASE: HTTP on HTTP_LISTEN and SMTP on SMTP_LISTEN ("127.0.0.1:0" picks a
 * free port; NULL: that sink is not started). Returns the handle, or NULL with ERR set. */
struct sink *sink_start(struct event_base *base, const char *http_listen, const char *smtp_listen,
                        char *err, size_t errlen);
void sink_free(struct sink *s);

/* The ports the sinks listen on (0 when not started). The SMS URL is
 * http://127.0.0.1:PORT/sms, the downstream's http://127.0.0.1:PORT/downstream. */
int sink_http_port(const struct sink *s);
int sink_smtp_port(const struct sink *s);

/* The newest code sent to DESTINATION (a phone number as the applicant registered it, or an
 * email address), or NULL when none arrived yet. Valid until the next event loop turn. */
const char *sink_code_for(const struct sink *s, const char *destination);

/* What the sinks received: SMS messages, emails, and registrations delivered downstream
 * (distinct Idempotency-Keys; a redelivery of the same key counts in downstream_redelivered). */
struct sink_counts {
    uint64_t sms, emails, downstream, downstream_redelivered;
};
void sink_counts(const struct sink *s, struct sink_counts *out);

#endif
