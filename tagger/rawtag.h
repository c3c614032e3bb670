/* rawtag: the tagger's byte-level tag editing (internal to the tagger module; C++).
 *
 * What it is: for each container genred writes (ID3v2 in mp3/wav/aiff, FLAC and Ogg Vorbis
 * comments, MP4 ilst atoms, ASF attributes, APEv2 items), a parser that splits the tag into its
 * items exactly as they lie on disk, and a renderer that puts a new list of items back into the
 * container as a list of byte edits. Items genred does not own travel as their original bytes,
 * so they come back byte-identical whatever TagLib would have made of them (TagLib 1.13
 * re-renders every frame: it drops ID3v2.3 TRDA/TIME, adds POPM counters, strips text
 * terminators, loses every frame behind an ID3v2.3 extended header, uppercases and re-sorts
 * Vorbis comments, re-sorts MP4 and APE items, and so on: tests/tagger/test_corpus.py).
 * Only genred's own items (the genre and GENRED_*) are rendered: ID3v2 frames by TagLib, the
 * other formats' items here (each a few bytes of a documented layout).
 *
 * What it is not: a tag reader for anyone but the tagger, nor a writer of files. Nothing here
 * writes: render() returns Edits, applied by the tagger (all-or-nothing, see tagger.cpp).
 *
 * Invariants: a parser refuses (nullptr and a one-line reason) what it cannot split exactly,
 * so an unparsable file is left untouched rather than half understood. Items are grouped
 * (group 0: the main tag; mp3: 1 = the ID3v1 genre byte; ASF: 1 = Metadata, 2 = Metadata
 * Library object); render() keeps every group's order as given. */
#ifndef GENRED_TAGGER_RAWTAG_H
#define GENRED_TAGGER_RAWTAG_H

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace rawtag {

using Bytes = std::string;

/* The file being edited, read through pread on an fd the caller owns. */
class Source {
public:
    Source(int fd, uint64_t size) : fd_(fd), size_(size) {}
    uint64_t size() const { return size_; }
    /* Exactly len bytes at off, or false (short file, I/O error). */
    bool read(uint64_t off, uint64_t len, Bytes &out) const;
    int fd() const { return fd_; }

private:
    int fd_;
    uint64_t size_;
};

/* Replace old_len bytes at offset by data. A list is sorted and non-overlapping. */
struct Edit {
    uint64_t offset = 0, old_len = 0;
    Bytes data;
};
using Edits = std::vector<Edit>;

enum class Role { Other = 0, Genre = 1, Confidence = 2, Model = 3 };

struct Item {
    int group = 0;
    Role role = Role::Other;
    Bytes raw; /* as on disk */
};

enum class Format { Mpeg, Wav, Aiff, Flac, OggVorbis, OggOpus, OggSpeex, OggFlac, Mp4, Asf, Ape };

class Tag {
public:
    virtual ~Tag() = default;
    std::vector<Item> items;
    /* Names the exact item encoding ("id3v2.3", "xiph", "mp4", ...): raw items saved from one
     * dialect can be put back only into the same one. */
    virtual std::string dialect() const = 0;
    /* The UTF-8 text values of an item genred owns (a genre item may hold several). */
    virtual std::vector<std::string> values(const Item &it) const = 0;
    /* Whether one genre item can hold several values (else the caller joins them). */
    virtual bool multi_value() const = 0;
    /* Whether the genre is the values of every group (ASF keeps a list's first value in one
     * object and the others in another) or those of the first group that has one (ID3v2 before
     * ID3v1). */
    virtual bool merge_groups() const { return false; }
    /* genred's items, rendered for this tag: the genre (one item per group that has a genre
     * field; genres non-empty) and one GENRED_* key. */
    virtual std::vector<Item> make_genre(const std::vector<std::string> &genres) const = 0;
    virtual Item make_key(Role role, const std::string &value) const = 0;
    /* The edits that turn the file into one whose tag holds exactly items. */
    virtual int render(const std::vector<Item> &items, Edits &out, ErrMsg *e) const = 0;
};

/* Parses the tag genred writes in a file of format f. nullptr and a reason when the file's
 * layout is one this module cannot edit exactly. */
std::unique_ptr<Tag> open_tag(Format f, const Source &src, ErrMsg *e);

/* The key genred's items go by in containers with named fields. */
extern const char KEY_CONFIDENCE[];
extern const char KEY_MODEL[];
Role role_of_key(const std::string &key, const char *genre_key);

/* Byte helpers shared by the container files. */
uint32_t get_be(const Bytes &b, size_t off, int n);
uint64_t get_le(const Bytes &b, size_t off, int n);
void put_be(Bytes &b, size_t off, uint64_t v, int n);
void put_le(Bytes &b, size_t off, uint64_t v, int n);
Bytes be(uint64_t v, int n);
Bytes le(uint64_t v, int n);
std::string upper_ascii(std::string s);
/* UTF-16 (little or big endian, no BOM) to UTF-8 and back; bad surrogates become U+FFFD. */
std::string utf16_to_utf8(const Bytes &b, bool big_endian);
Bytes utf8_to_utf16(const std::string &s, bool big_endian);

/* Per-format openers (rawtag_*.cpp). */
std::unique_ptr<Tag> open_mpeg(const Source &src, ErrMsg *e);
std::unique_ptr<Tag> open_riff(const Source &src, bool aiff, ErrMsg *e);
std::unique_ptr<Tag> open_flac(const Source &src, ErrMsg *e);
std::unique_ptr<Tag> open_ogg(Format f, const Source &src, ErrMsg *e);
std::unique_ptr<Tag> open_mp4(const Source &src, ErrMsg *e);
std::unique_ptr<Tag> open_asf(const Source &src, ErrMsg *e);
std::unique_ptr<Tag> open_ape(const Source &src, ErrMsg *e);

} // namespace rawtag

#endif
