/* fuzz.h: what the fuzz targets share: CHECK(), which aborts (a crash libFuzzer reports, and
 * the replay's run fails on) naming the file, line and condition that failed. */
#ifndef ANTRE_FUZZ_H
#define ANTRE_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
