/* common: the small utility module every other module may use.
 * Error messages, levelled logging to stderr, checked allocation, atomic file writes.
 * It depends on nothing of ours. Thread-safe: the log writes one line per call. */
#ifndef GENRED_COMMON_H
#define GENRED_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A reason for a failure, filled by the callee; the caller adds the file name.
 * Messages are one line, lower case, no trailing period: "truncated header". */
typedef struct ErrMsg {
    char msg[512];
} ErrMsg;

/* Sets e->msg (when e is not NULL); always returns -1 so callers can `return err_set(...)`. */
int err_set(ErrMsg *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

enum LogLevel { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
extern int common_log_level; /* messages above this level are not even formatted */
void common_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_at(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= common_log_level) common_log_write((level), __VA_ARGS__);                   \
    } while (0)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
/* Parses "error", "warn", "info", "debug"; returns -1 when unknown. */
int common_log_level_parse(const char *name);
/* Writes s with its control characters shown as \n, \t, \r or \xHH, so that a file name (or
 * a tag read from a file) can never split a log, result or error line, nor add a column to a
 * tab-separated one. Other bytes, backslashes included, are written as they are. The log
 * above writes its messages this way. */
void common_put_text(FILE *f, const char *s);
/* Writes s as a JSON string literal (with quotes). Bytes that are not valid UTF-8 become
 * U+FFFD (one per byte), so the output is always valid JSON whatever a file name holds. */
void common_put_json_string(FILE *f, const char *s);

/* Allocation that aborts with a message on out-of-memory: running out of memory for a
 * few MB of spectrograms is not a condition any caller can recover from usefully. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Writes data to path through a temp file in the same directory, fsync, rename: readers
 * see the old file or the new one, never half of one. */
int common_write_atomic(const char *path, const void *data, size_t len, ErrMsg *e);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience). */
int common_read_file(const char *path, uint8_t **data, size_t *len, ErrMsg *e);

/* Monotonic clock in seconds. */
double common_now(void);

/* Number of online CPUs, at least 1. */
int common_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif
