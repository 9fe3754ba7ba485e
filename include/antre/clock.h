/* clock.h: the two clocks every program reads: monotonic for durations and deadlines, wall for
 * what is shown or signed (token expiries, schedules). */
#ifndef ANTRE_CLOCK_H
#define ANTRE_CLOCK_H

#include <stdint.h>

/* Nanoseconds on the monotonic clock (CLOCK_MONOTONIC): only differences mean anything. */
uint64_t clock_now_ns(void);

/* Milliseconds since the Unix epoch on the wall clock (may jump when the clock is set). */
int64_t clock_wall_ms(void);

#endif
