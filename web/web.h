/* web: the web page and its JSON API (DESIGN.md §8b), for `genred serve` and for `genred watch`
 * when web.listen is set.
 *
 * What it is: an HTTP server (libmicrohttpd, its own thread pool) that serves one page (HTML, JS,
 * CSS built into the binary from the files in web/) and the API under /api/: classify an
 * uploaded or recorded clip (the object `genred classify --json` prints, built by
 * pipeline_result_json), the library's genres from the state database (counts per genre, a
 * filtered and sorted list paged by key), and corrections: a track, named by its database id,
 * gets a hand-set genre through the tagger, recorded in the state (so `genred untag` restores
 * what was there before genred) and announced to the hooks with GENRED_EVENT=corrected.
 *
 * What it is not: a file server. No file is ever read or written by a path from a request;
 * uploads are decoded from memory and dropped after the answer. It does not tag libraries: the
 * daemon or `genred tag` does.
 *
 * Security: loopback only unless web.token is set, and then every request must carry the token;
 * without a token only a loopback Host header is answered (no DNS rebinding); POSTs need the
 * per-page CSRF token (X-CSRF-Token) and a same-origin Origin when one is sent; uploads above
 * web.max_upload_mb get 413 before their body is read; at most web.max_jobs classifications run
 * at once (503 + Retry-After beyond); a strict Content-Security-Policy on every answer.
 *
 * Threads: web_start returns once the socket listens; requests run on the server's threads,
 * classifications on threads of their own (each with its own decode and mel, sharing the
 * read-only model), hooks on one thread that owns them. It loads its own model from the file
 * and loads it again when the file is replaced (checked before each classification), so the
 * daemon's model reloads reach it. Signals are the caller's: block them before web_start so
 * that no server thread takes them. */
#ifndef GENRED_WEB_H
#define GENRED_WEB_H

#include "common.h"
#include "config.h"

typedef struct Web Web;

/* Starts serving per the config's web.* settings (listen: web.listen, else 127.0.0.1:7710),
 * classifying with the model file model_path on the config's device, the library from
 * state.path (read per request: the page works before the database exists), corrections'
 * hooks from hooks.*. Returns NULL with a reason (bad address, a non-loopback address without
 * web.token, port in use, model unusable). */
Web *web_start(const Config *c, const char *model_path, ErrMsg *e);

/* The address it listens on, "http://127.0.0.1:7710/" (the port the kernel chose for port 0). */
const char *web_url(const Web *w);

/* Stops accepting, lets running classifications finish and the corrections' hooks run, then
 * closes every connection and frees everything. NULL is fine. */
void web_stop(Web *w);

#endif
