/* tagger: reads and writes genre tags in the file's own container through TagLib
 * (DESIGN.md §6): GENRE via the standard field, GENRED_CONFIDENCE and GENRED_MODEL as the
 * property map names them (ID3v2 TXXX, Xiph comments, MP4 freeform
 * `----:com.apple.iTunes:GENRED_*` atoms, APE items, ASF attributes).
 * Formats: mp3, flac, ogg vorbis/opus/speex/flac, m4a (AAC, ALAC), wma, ape, wavpack, wav, aiff.
 * It never rewrites audio data and touches no other tag; mp3/wav/aiff keep their ID3v2 version
 * (2.3 or 2.4; no tag or 2.2 gives 2.4), ID3v1 and APE tags beside ID3v2 are kept.
 * Errors: -1 and a one-line reason ("not a supported audio file", "file is read-only", ...);
 * a file without any write permission bit is read-only even for root.
 * Thread-safe for distinct files. Implemented in C++ (tagger.cpp) behind this C interface. */
#ifndef GENRED_TAGGER_H
#define GENRED_TAGGER_H

#ifdef __cplusplus
extern "C" {
#endif

#include "common.h"

typedef struct TaggerInfo {
    char genre[256];      /* "" when none */
    char artist[256];     /* "" when none */
    char confidence[32];  /* GENRED_CONFIDENCE as stored, "" when absent (genre set by hand) */
    char model[64];       /* GENRED_MODEL as stored, "" when absent */
} TaggerInfo;

enum TaggerOutcome {
    TAGGER_WRITTEN = 0,   /* tags were written */
    TAGGER_UNCHANGED = 1, /* the file already had this genre from this model: nothing written */
    TAGGER_KEPT = 2,      /* a hand-set genre was kept (force was off): nothing written */
};

typedef struct TaggerWrite {
    const char *genre;      /* display name for GENRE */
    double confidence;      /* written as "%.3f" */
    const char *model_id;   /* 12 hex digits */
    int force;              /* overwrite a genre set by hand */
    int dry_run;            /* decide the outcome but write nothing */
} TaggerWrite;

int tagger_read(const char *path, TaggerInfo *out, ErrMsg *e);
/* Writes the result; *outcome says what happened. Returns -1 (file untouched) on error. */
int tagger_write(const char *path, const TaggerWrite *w, int *outcome, ErrMsg *e);
/* Removes GENRED_CONFIDENCE and GENRED_MODEL and sets GENRE to previous_genre
 * (or removes GENRE when previous_genre is NULL or ""). */
int tagger_restore(const char *path, const char *previous_genre, ErrMsg *e);

/* File name extensions (lower case, no dot) of the containers the tagger writes, ending with
 * NULL: for a caller's file filter. The tagger itself detects the format by content too. */
const char *const *tagger_extensions(void);
/* "written", "unchanged", "kept" (for logs and the GENRED_EVENT of hooks). */
const char *tagger_outcome_name(int outcome);

#ifdef __cplusplus
}
#endif

#endif
