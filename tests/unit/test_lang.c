/* test_lang.c: unit tests of Accept-Language parsing (gateway/lang.c): q-values, wildcards,
 * old and regional tags, malformed elements, and values that are not NUL-terminated. */
#include "../../gateway/lang.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* lang_prefers_english() on S, passed in a heap buffer of exactly strlen(S) bytes. */
static int en(const char *s)
{
    size_t n = strlen(s);
    char *b = malloc(n ? n : 1);
    cr_assert_not_null(b);
    memcpy(b, s, n);
    int r = lang_prefers_english(b, n);
    free(b);
    return r;
}

#define EN(s) cr_assert_eq(en(s), 1, "%s: expected English", s)
#define ID(s) cr_assert_eq(en(s), 0, "%s: expected Indonesian", s)

Test(lang, plain_tags)
{
    EN("en");
    EN("EN");
    EN("en-US");
    EN("en-GB, fr");
    ID("id");
    ID("id-ID");
    ID("in");
    ID("");
    ID("fr, de");
    ID("eng"); /* not "en" followed by "-" */
    ID("english");
    EN("fr, en"); /* unweighted ranges all weigh 1: English beats an absent Indonesian */
}

Test(lang, q_values)
{
    EN("id;q=0.5, en;q=0.8");
    ID("id;q=0.8, en;q=0.5");
    ID("id;q=0.5, en;q=0.5"); /* a tie goes to Indonesian */
    EN("id;q=0.501, en;q=0.502");
    ID("id;q=0.502, en;q=0.501");
    EN("en-US,en;q=0.9,id;q=0.8");
    ID("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7");
    EN("id;q=0, en;q=0.001");
    ID("en;q=0"); /* q=0: not acceptable */
    EN("en;q=1.000, id;q=0.999");
    EN("en;q=1., id;q=0.");
    EN("en ; q=0.7 , id;q=0.6"); /* spaces around ";" */
    EN("en;Q=0.7,id;q=0.6");
    EN("en\t;\tq=0.7,\tid;q=0.6");
    /* the best weight of a language counts */
    EN("en;q=0.1, id;q=0.5, en-GB;q=0.9");
}

Test(lang, wildcard)
{
    ID("*");           /* both languages get the wildcard's weight: a tie */
    EN("*, id;q=0.5"); /* English is unnamed: it weighs as "*" */
    ID("*, en;q=0.5");
    EN("*;q=0.5, id;q=0.1");
    ID("en;q=0, *"); /* named with q=0: the wildcard does not bring it back */
    ID("*;q=0, en;q=0");
    EN("fr, *;q=0.3, id;q=0.2");
}

Test(lang, malformed_q_values_ignore_their_element)
{
    ID("en;q=1.5");
    ID("en;q=2");
    ID("en;q=0.1234");
    ID("en;q=-1");
    ID("en;q=nan");
    ID("en;q=inf");
    ID("en;q=1e0");
    ID("en;q=0x1");
    ID("en;q= 0.5");
    ID("en;q=");
    ID("en;q");
    ID("en;");
    ID("en;q=0.5;q=1");
    ID("en;level=1");
    ID("en;q=1.001");
    ID("en;q=01");
    /* the well-formed rest of the list still counts */
    EN("en;q=1.5, en-GB;q=0.4, id;q=0.3");
    ID("id;q=oops, en;q=0.5, id-ID;q=0.6");
}

Test(lang, malformed_ranges_ignore_their_element)
{
    ID("en_US");
    ID("en-");
    ID("-en");
    ID("en--US");
    ID("en-US-abcdefghi"); /* a subtag over 8 characters */
    ID("e1");
    ID("**");
    ID("en id");
    ID(",,, ;;; ,");
    EN(",,, ;;; ,en");
    ID(",,, ;;; en"); /* one element: an empty range, then junk */
    EN("en-Latn-US-x-twain, id;q=0.9");
    EN("ID;q=garbage, En");
}

Test(lang, reads_only_len_bytes)
{
    /* what follows the value in memory must not count: not an extra range, not more digits */
    const char buf[] = "id;q=0.5,en;q=0.4"
                       "99, en";
    cr_assert_eq(lang_prefers_english(buf, strlen("id;q=0.5,en;q=0.4")), 0);
    cr_assert_eq(lang_prefers_english(buf, strlen("id;q=0.5,en;q=0.4") + 2), 0); /* bad q */
    cr_assert_eq(lang_prefers_english(buf, sizeof buf - 1), 1);
    cr_assert_eq(lang_prefers_english("en", 0), 0);
    cr_assert_eq(lang_prefers_english("en;q=0.9", 2), 1);
    cr_assert_eq(lang_prefers_english("id,en", 2), 0);
    const char nul[] = "id;q=0.1,en\0";
    cr_assert_eq(lang_prefers_english(nul, sizeof nul - 1), 0); /* "en\0" is malformed */
}
