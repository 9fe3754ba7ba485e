/* lang.h: which of the gateway's two languages (Indonesian, English) a client's Accept-Language
 * header asks for. */
#ifndef ANTRE_LANG_H
#define ANTRE_LANG_H

#include <stddef.h>

/* Whether the Accept-Language value V (LEN bytes, need not be NUL-terminated; never read past
 * V + LEN) prefers English to Indonesian. Pure: no allocation, no state, any thread.
 *
 * The value is a comma-separated list of language ranges (RFC 9110 section 12.5.4), each
 * optionally weighted `;q=` with a qvalue (0 to 1, at most three decimals). A range counts for
 * English when it is `en` or starts `en-`, for Indonesian when it is `id`, `in` (the old code)
 * or starts with one of them and `-`; case does not matter. `*` gives its weight to a language
 * that no range names. A language's weight is the highest weight among the ranges naming it
 * (so `en;q=0` alone says "not English"), the wildcard's when none names it, else 0.
 * Malformed elements (a bad range, a bad or repeated q, anything else after the range) are
 * ignored; the rest of the list still counts.
 *
 * Returns 1 when English weighs strictly more than Indonesian, else 0 (Indonesian is the
 * default, and wins ties). */
int lang_prefers_english(const char *v, size_t len);

#endif
