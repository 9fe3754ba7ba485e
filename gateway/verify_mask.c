/* verify_mask.c: masked contact addresses (see verify_mask.h). */
#include "verify_mask.h"

#include <stdio.h>
#include <string.h>

static int clamp(int n, size_t len)
{
    if (n < 0) return 0;
    return (size_t)n < len ? n : (int)len - 1;
}

int verify_mask_email(const char *email, char *out, size_t len)
{
    if (!len) return 0;
    const char *at = strchr(email, '@');
    char first = email[0] && email[0] != '@' ? email[0] : '?';
    return clamp(snprintf(out, len, "%c***%s", first, at ? at : ""), len);
}

int verify_mask_phone(const char *phone, char *out, size_t len)
{
    if (!len) return 0;
    size_t n = strlen(phone);
    if (n >= 11 && !strncmp(phone, "+62", 3))
        return clamp(snprintf(out, len, "+62 %.3s **** %s", phone + 3, phone + n - 4), len);
    if (n > 8) return clamp(snprintf(out, len, "%.4s **** %s", phone, phone + n - 4), len);
    return clamp(snprintf(out, len, "****"), len);
}
