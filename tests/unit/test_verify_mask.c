/* test_verify_mask.c: masked contact addresses (gateway/verify_mask.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "verify_mask.h"

static const char *email(const char *v)
{
    static char out[128];
    verify_mask_email(v, out, sizeof out);
    return out;
}

static const char *phone(const char *v)
{
    static char out[128];
    verify_mask_phone(v, out, sizeof out);
    return out;
}

Test(verify_mask, email_keeps_first_letter_and_domain)
{
    cr_assert_str_eq(email("siti.rahma@gmail.com"), "s***@gmail.com");
    cr_assert_str_eq(email("a@b.id"), "a***@b.id");
    cr_assert_str_eq(email("nodomain"), "n***");
    cr_assert_str_eq(email(""), "?***");
    cr_assert_str_eq(email("@x.id"), "?***@x.id");
}

Test(verify_mask, email_hides_the_local_part_length)
{
    cr_assert_str_eq(email("s@gmail.com"), email("sxxxxxxxxxxxxxxxxxxx@gmail.com"));
}

Test(verify_mask, indonesian_mobile)
{
    cr_assert_str_eq(phone("+6281234567890"), "+62 812 **** 7890");
    cr_assert_str_eq(phone("+628123457890"), "+62 812 **** 7890");
    cr_assert_str_eq(phone("+62812345678"), "+62 812 **** 5678");
}

Test(verify_mask, other_shapes)
{
    cr_assert_str_eq(phone("081234567890"), "0812 **** 7890");
    cr_assert_str_eq(phone("12345678"), "****");
    cr_assert_str_eq(phone(""), "****");
}

Test(verify_mask, output_is_cut_and_terminated)
{
    char out[6];
    int n = verify_mask_phone("+6281234567890", out, sizeof out);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(out, "+62 8");
    n = verify_mask_email("siti@gmail.com", out, sizeof out);
    cr_assert_eq(n, 5);
    cr_assert_eq(strlen(out), 5);
}
