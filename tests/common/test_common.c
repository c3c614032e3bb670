/* common: control characters never split a line written with common_put_text, nor one the
 * log writes (file names reach both). */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* What f (a tmpfile) holds, NUL-terminated, in a static buffer. */
static const char *contents(FILE *f)
{
    static char buf[1024];
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

int main(void)
{
    FILE *f = tmpfile();
    common_put_text(f, "a\nb\tc\rd\x01\x1b[2J\x7f \\n caf\xc3\xa9");
    const char *want = "a\\nb\\tc\\rd\\x01\\x1b[2J\\x7f \\n caf\xc3\xa9";
    CHECK(strcmp(contents(f), want) == 0, "common_put_text wrote '%s', want '%s'", contents(f),
          want);
    fclose(f);

    /* the log, through stderr */
    FILE *log = tmpfile();
    fflush(stderr);
    int saved = dup(fileno(stderr));
    dup2(fileno(log), fileno(stderr));
    log_warn("cannot tag %s: %s", "/music/a\nb.mp3", "bad\theader");
    fflush(stderr);
    dup2(saved, fileno(stderr));
    close(saved);
    const char *line = "genred: warning: cannot tag /music/a\\nb.mp3: bad\\theader\n";
    CHECK(strcmp(contents(log), line) == 0, "log wrote '%s', want '%s'", contents(log), line);
    fclose(log);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures != 0;
}
