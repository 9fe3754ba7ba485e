/* verify_mask.h: contact addresses as shown to the applicant (issue 9): enough to recognise
 * one's own address, not enough to harvest it. Pure functions, no I/O. */
#ifndef ANTRE_VERIFY_MASK_H
#define ANTRE_VERIFY_MASK_H

#include <stddef.h>

/* The masked form of email address EMAIL into OUT (LEN bytes, always NUL-terminated): its first
 * character, "***" and the domain with its "@" ("s***@gmail.com"). An address without "@" (not
 * one validate_email passed) shows only its first character and "***". Returns the length
 * written (cut to LEN - 1). */
int verify_mask_email(const char *email, char *out, size_t len);

/* The masked form of phone number PHONE (as validate_phone writes it: +62 and digits) into OUT
 * (LEN bytes): country code, the three operator digits, four stars and the last four digits
 * ("+62 812 **** 7890"). A number of another shape keeps its first four and last four
 * characters around "****"; one of eight characters or fewer shows only "****". Returns the
 * length written (cut to LEN - 1). */
int verify_mask_phone(const char *phone, char *out, size_t len);

#endif
