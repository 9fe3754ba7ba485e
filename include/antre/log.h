/* log.h: the one logging facility of antre's programs.
 *
 * Lines go to standard error as `2026-11-28T14:15:13.123Z LEVEL name[pid]: message`, where the
 * message reads `component: what happened key=value`. Log once, where the decision is made;
 * never log a secret (tokens, codes, keys, full NIKs). Safe to call from any process; not from
 * signal handlers. */
#ifndef ANTRE_LOG_H
#define ANTRE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* Set the program name shown in each line (not copied: pass a string literal). */
void log_set_name(const char *name);

/* Lines below LEVEL are dropped. */
void log_set_level(enum log_level level);

/* Parse "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
