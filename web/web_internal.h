/* web_internal: what web.c (the server: sockets, security, routing, requests, model, hooks
 * thread) and web_api.c (the API's answers) share. Private to web/; web.h is the module's face. */
#ifndef GENRED_WEB_INTERNAL_H
#define GENRED_WEB_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "hooks.h"
#include "nn.h"
#include "web.h"

/* Uploads that must be decoded whole (no usable duration, as a browser's recording) may be
 * this long; longer ones are refused (DecodeOptions.max_whole_samples). */
#define WEB_MAX_WHOLE_SECONDS 600.0
/* A correction's JSON body. */
#define WEB_MAX_SMALL_BODY 4096
/* Mel pictures kept for GET /api/mel/ID after a classification, and for how long. */
#define WEB_MEL_KEEP 8
#define WEB_MEL_TTL_S 600.0

/* A loaded model and the file it came from; classifications hold a reference, so a reload
 * frees the old one only when the last of them is done. */
typedef struct WebModel {
    NnModel *m;
    int refs; /* the Web's own reference + one per classification using it */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} WebModel;

typedef struct WebMel {
    char id[33]; /* 32 hex digits, random: "" when free */
    unsigned char *png;
    size_t len;
    double time;
} WebMel;

typedef struct WebHookJob {
    HooksResult r; /* the strings are the job's own */
    struct WebHookJob *next;
} WebHookJob;

struct Web {
    struct MHD_Daemon *mhd;
    int listen_fd;
    char url[160];
    char listen_host[128]; /* as configured, for the Host check */
    bool loopback;
    char *token; /* NULL: none */
    size_t max_upload;
    int max_jobs;
    char *model_path;
    int device;
    char *state_path;
    uint8_t secret[32]; /* CSRF tokens are MACs under it: valid until the process ends */
    int debug_delay_ms; /* tests only: GENRED_WEB_DEBUG_DELAY_MS holds each classification */

    pthread_mutex_t lock; /* everything below */
    pthread_cond_t idle;  /* workers fell to 0 */
    WebModel *model;
    int running;   /* classifications between body complete and answer */
    int receiving; /* classify uploads whose body is still arriving */
    int workers;   /* classification threads alive */
    bool stopping;
    WebMel mel[WEB_MEL_KEEP];

    Hooks *hooks; /* owned by the hooks thread once it runs */
    pthread_t hooks_thread;
    bool hooks_started;
    int hooks_efd;
    WebHookJob *hq_head, *hq_tail;
    bool hooks_stop;
};

enum WebRoute {
    ROUTE_NONE = 0,
    ROUTE_PAGE,     /* GET / */
    ROUTE_ASSET,    /* GET /app.js ... */
    ROUTE_INFO,     /* GET /api/info */
    ROUTE_SESSION,  /* GET /api/session */
    ROUTE_STATS,    /* GET /api/stats */
    ROUTE_TRACKS,   /* GET /api/tracks */
    ROUTE_TRACK,    /* GET /api/tracks/ID */
    ROUTE_MEL,      /* GET /api/mel/ID */
    ROUTE_CLASSIFY, /* POST /api/classify */
    ROUTE_CORRECT,  /* POST /api/tracks/ID/genre */
};

/* HEADERS: first call; GET: answered on the next call (libmicrohttpd closes a connection whose
 * answer was queued on the first call, so only refusals are answered there); BODY: a POST's body
 * arriving; RUNNING: classifying; DONE: the answer is made; ANSWERED: queued. */
enum WebPhase { PHASE_HEADERS = 0, PHASE_GET, PHASE_BODY, PHASE_RUNNING, PHASE_DONE, PHASE_ANSWERED };

/* One request, from its headers to its completion (MHD's con_cls). */
typedef struct WebRequest {
    Web *w;
    struct MHD_Connection *conn;
    enum WebRoute route;
    enum WebPhase phase;
    double t0;
    int asset;        /* ROUTE_ASSET: index into the embedded files */
    int64_t id;       /* ROUTE_TRACK, ROUTE_CORRECT */
    char mel_id[33];  /* ROUTE_MEL */
    /* the body (classify: the audio; correct: the JSON) */
    uint8_t *body;
    size_t len, cap, limit;
    bool too_large;
    struct MHD_PostProcessor *pp;
    bool multipart, audio_seen, audio_done;
    char name[256]; /* the upload's name: its form file name, ?name=, else "upload" */
    bool want_mel;
    bool counted_receiving;
    /* the answer, made by a classification thread or a handler */
    unsigned status;
    char *answer;
    size_t answer_len;
    char answer_mel[33]; /* classify with ?mel=1: the picture's id */
    double t_classify;
} WebRequest;

/* ---- web.c, for web_api.c ---- */

/* Queues an answer with the common headers (CSP, nosniff, no-store); body is copied. */
enum MHD_Result web_reply(struct MHD_Connection *c, unsigned status, const char *type,
                          const void *body, size_t len);
/* {"error": "..."} with status. */
enum MHD_Result web_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A new CSRF token for a page (64 hex digits + NUL). */
void web_csrf_new(Web *w, char out[65]);
/* The model for a classification (reloaded when its file was replaced); NULL with a reason. */
WebModel *web_model_acquire(Web *w, ErrMsg *e);
void web_model_release(Web *w, WebModel *m);
/* Keeps a mel picture (taking png) and writes its id into id. */
void web_mel_put(Web *w, unsigned char *png, size_t len, char id[33]);
/* Queues the hooks of a correction (copied). */
void web_hooks_submit(Web *w, const HooksResult *r);

/* A growable memory stream for answers (open_memstream); web_out_end closes it and returns the
 * bytes (malloc'd) and their length. */
typedef struct WebOut {
    FILE *f;
    char *buf;
    size_t len;
} WebOut;
FILE *web_out_begin(WebOut *o);
char *web_out_end(WebOut *o, size_t *len);

/* ---- web_api.c ---- */

enum MHD_Result web_api_info(Web *w, WebRequest *r);
enum MHD_Result web_api_stats(Web *w, WebRequest *r);
enum MHD_Result web_api_tracks(Web *w, WebRequest *r);
enum MHD_Result web_api_track(Web *w, WebRequest *r);
enum MHD_Result web_api_correct(Web *w, WebRequest *r);
/* The classification thread's work: fills r->status and r->answer from r->body. */
void web_api_classify(Web *w, WebRequest *r);

#endif
