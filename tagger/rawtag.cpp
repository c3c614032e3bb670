/* rawtag: shared helpers and the format dispatch (rawtag.h). */
#include "rawtag.h"

#include <unistd.h>

#include <cerrno>

namespace rawtag {

const char KEY_CONFIDENCE[] = "GENRED_CONFIDENCE";
const char KEY_MODEL[] = "GENRED_MODEL";

bool Source::read(uint64_t off, uint64_t len, Bytes &out) const
{
    out.clear();
    if (off > size_ || len > size_ - off) return false;
    out.resize(len);
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd_, &out[done], len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += (uint64_t)n;
    }
    return true;
}

uint32_t get_be(const Bytes &b, size_t off, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | (unsigned char)b[off + i];
    return v;
}

uint64_t get_le(const Bytes &b, size_t off, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | (unsigned char)b[off + i];
    return v;
}

void put_be(Bytes &b, size_t off, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) b[off + i] = (char)(v & 0xFF);
}

void put_le(Bytes &b, size_t off, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8) b[off + i] = (char)(v & 0xFF);
}

Bytes be(uint64_t v, int n)
{
    Bytes b(n, '\0');
    put_be(b, 0, v, n);
    return b;
}

Bytes le(uint64_t v, int n)
{
    Bytes b(n, '\0');
    put_le(b, 0, v, n);
    return b;
}

std::string upper_ascii(std::string s)
{
    for (char &c : s)
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
    return s;
}

Role role_of_key(const std::string &key, const char *genre_key)
{
    std::string k = upper_ascii(key);
    if (k == upper_ascii(genre_key)) return Role::Genre;
    if (k == KEY_CONFIDENCE) return Role::Confidence;
    if (k == KEY_MODEL) return Role::Model;
    return Role::Other;
}

static void put_utf8(std::string &out, uint32_t cp)
{
    if (cp < 0x80) {
        out += (char)cp;
    } else if (cp < 0x800) {
        out += (char)(0xC0 | (cp >> 6));
        out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += (char)(0xE0 | (cp >> 12));
        out += (char)(0x80 | ((cp >> 6) & 0x3F));
        out += (char)(0x80 | (cp & 0x3F));
    } else {
        out += (char)(0xF0 | (cp >> 18));
        out += (char)(0x80 | ((cp >> 12) & 0x3F));
        out += (char)(0x80 | ((cp >> 6) & 0x3F));
        out += (char)(0x80 | (cp & 0x3F));
    }
}

std::string utf16_to_utf8(const Bytes &b, bool big_endian)
{
    std::string out;
    size_t n = b.size() / 2;
    auto unit = [&](size_t i) -> uint32_t {
        unsigned a = (unsigned char)b[2 * i], c = (unsigned char)b[2 * i + 1];
        return big_endian ? (a << 8 | c) : (c << 8 | a);
    };
    for (size_t i = 0; i < n; i++) {
        uint32_t u = unit(i);
        if (u >= 0xD800 && u < 0xDC00 && i + 1 < n && unit(i + 1) >= 0xDC00 && unit(i + 1) < 0xE000) {
            put_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (unit(i + 1) - 0xDC00));
            i++;
        } else if (u >= 0xD800 && u < 0xE000) {
            put_utf8(out, 0xFFFD);
        } else {
            put_utf8(out, u);
        }
    }
    return out;
}

Bytes utf8_to_utf16(const std::string &s, bool big_endian)
{
    Bytes out;
    auto put = [&](uint32_t u) {
        char hi = (char)(u >> 8), lo = (char)(u & 0xFF);
        if (big_endian) {
            out += hi;
            out += lo;
        } else {
            out += lo;
            out += hi;
        }
    };
    for (size_t i = 0; i < s.size();) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int len;
        if (c < 0x80) cp = c, len = 1;
        else if ((c & 0xE0) == 0xC0) cp = c & 0x1F, len = 2;
        else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, len = 3;
        else if ((c & 0xF8) == 0xF0) cp = c & 0x07, len = 4;
        else cp = 0xFFFD, len = 1;
        if (i + (size_t)len > s.size()) {
            cp = 0xFFFD;
            len = (int)(s.size() - i);
        } else {
            for (int k = 1; k < len; k++) cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
        }
        i += (size_t)len;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put(0xD800 + (cp >> 10));
            put(0xDC00 + (cp & 0x3FF));
        } else {
            put(cp);
        }
    }
    return out;
}

std::unique_ptr<Tag> open_tag(Format f, const Source &src, ErrMsg *e)
{
    switch (f) {
    case Format::Mpeg: return open_mpeg(src, e);
    case Format::Wav: return open_riff(src, false, e);
    case Format::Aiff: return open_riff(src, true, e);
    case Format::Flac: return open_flac(src, e);
    case Format::OggVorbis:
    case Format::OggOpus:
    case Format::OggSpeex:
    case Format::OggFlac: return open_ogg(f, src, e);
    case Format::Mp4: return open_mp4(src, e);
    case Format::Asf: return open_asf(src, e);
    case Format::Ape: return open_ape(src, e);
    }
    err_set(e, "tagging this audio format is not supported");
    return nullptr;
}

} // namespace rawtag
