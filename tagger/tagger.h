/* tagger: reads and writes genre tags in the file's own container (DESIGN.md §6): GENRE in the
 * container's genre field (ID3v2 TCON, with an mp3's ID3v1 genre byte kept in step; Vorbis
 * GENRE; MP4 \xa9gen; WM/Genre; APE Genre), GENRED_CONFIDENCE and GENRED_MODEL as the
 * container names user fields (ID3v2 TXXX, Xiph comments, MP4 freeform
 * `----:com.apple.iTunes:GENRED_*` atoms, APE items, ASF attributes).
 * Formats: mp3, flac, ogg vorbis/opus/speex/flac, m4a (AAC, ALAC), wma, ape, wavpack, wav, aiff.
 * Every tag item genred does not own stays byte-identical and in its place (ID3v2 keeps its
 * version, 2.2 included, its flags and extended header; Vorbis comments their key case and
 * order; ...), audio data is never rewritten, and a file whose tag cannot be split exactly is
 * refused with the reason and left untouched.
 * Errors: -1 and a one-line reason ("not a supported audio file", "file is read-only", ...);
 * a file without any write permission bit is read-only even for root.
 * Thread-safe for distinct files. Implemented in C++ (tagger.cpp, rawtag*.cpp). */
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
/* Writes the result; *outcome says what happened. Returns -1 (file untouched) on error.
 * undo (may be NULL): when a write replaced a genre that was not genred's own (set by hand, or
 * none), *undo gets a malloc'd record of the exact genre items the file had (free() it), to
 * keep for tagger_restore; else NULL. */
int tagger_write(const char *path, const TaggerWrite *w, int *outcome, char **undo, ErrMsg *e);
/* Undoes genred: removes GENRED_CONFIDENCE and GENRED_MODEL and puts back the genre items of
 * undo (a record from tagger_write) byte for byte; without a record that fits the file's tag,
 * sets GENRE to previous_genre (or removes it when previous_genre is NULL or ""). */
int tagger_restore(const char *path, const char *previous_genre, const char *undo, ErrMsg *e);
/* Writes genre as set by hand (a user's correction): GENRE = genre, GENRED_* removed, so later
 * runs keep it unless forced. */
int tagger_set_hand_genre(const char *path, const char *genre, ErrMsg *e);

/* File name extensions (lower case, no dot) of the containers the tagger writes, ending with
 * NULL: for a caller's file filter. The tagger itself detects the format by content too. */
const char *const *tagger_extensions(void);
/* "written", "unchanged", "kept" (for logs and the GENRED_EVENT of hooks). */
const char *tagger_outcome_name(int outcome);

#ifdef __cplusplus
}
#endif

#endif
