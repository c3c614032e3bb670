/* rawtag: APEv2 items (WavPack, Monkey's Audio), in the tag at the end of the file (before an
 * ID3v1 tag when there is one).
 *
 * Each item is kept byte for byte and in its place; the header (when the tag has one), the
 * version and the flags are kept. genred's items are text items GENRE (several genres as one
 * item of NUL-separated values, APEv2's list form) and GENRED_*. A file without an APE tag gets
 * one with a header and a footer; a tag left with no item is removed. */
#include "rawtag.h"

namespace rawtag {
namespace {

const uint32_t HAS_HEADER = 1u << 31, IS_HEADER = 1u << 29;

Bytes item(const std::string &key, const Bytes &value)
{
    return le(value.size(), 4) + le(0, 4) + key + Bytes(1, '\0') + value;
}

class ApeTag : public Tag {
public:
    bool exists = false;
    uint64_t start = 0, end = 0; /* the tag, header to footer */
    uint32_t version = 2000, flags = HAS_HEADER;

    std::string dialect() const override { return "ape"; }
    bool multi_value() const override { return true; }
    std::vector<std::string> values(const Item &it) const override
    {
        uint64_t n = get_le(it.raw, 0, 4), f = get_le(it.raw, 4, 4);
        if ((f >> 1 & 3) != 0) return {}; /* binary or external */
        size_t k = it.raw.find('\0', 8);
        Bytes v = it.raw.substr(k + 1, n);
        std::vector<std::string> out;
        size_t p = 0;
        for (;;) {
            size_t z = v.find('\0', p);
            std::string s = v.substr(p, z == Bytes::npos ? Bytes::npos : z - p);
            if (!s.empty()) out.push_back(s);
            if (z == Bytes::npos) break;
            p = z + 1;
        }
        return out;
    }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        Bytes v;
        for (size_t i = 0; i < genres.size(); i++) v += (i ? Bytes(1, '\0') : Bytes()) + genres[i];
        return {Item{0, Role::Genre, item("GENRE", v)}};
    }
    Item make_key(Role role, const std::string &value) const override
    {
        return Item{0, role, item(role == Role::Confidence ? KEY_CONFIDENCE : KEY_MODEL, value)};
    }
    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        Bytes body;
        uint64_t n = 0;
        for (const Item &it : its) body += it.raw, n++;
        Bytes tag;
        if (n) {
            if (body.size() > (64u << 20)) return err_set(e, "APE tag would exceed 64 MB");
            auto hf = [&](uint32_t fl) {
                return Bytes("APETAGEX") + le(version, 4) + le(body.size() + 32, 4) + le(n, 4) + le(fl, 4) + Bytes(8, '\0');
            };
            if (flags & HAS_HEADER) tag += hf(flags | IS_HEADER);
            tag += body + hf(flags & ~IS_HEADER);
        }
        if (exists || !tag.empty()) out.push_back(Edit{start, end - start, tag});
        return 0;
    }
};

} // namespace

std::unique_ptr<Tag> open_ape(const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<ApeTag>();
    uint64_t end = src.size();
    Bytes b;
    if (end >= 128 && src.read(end - 128, 3, b) && b == "TAG") end -= 128;
    t->start = t->end = end;
    if (end < 32 || !src.read(end - 32, 32, b) || b.compare(0, 8, "APETAGEX") != 0) return t;
    t->version = (uint32_t)get_le(b, 8, 4);
    uint64_t size = get_le(b, 12, 4), count = get_le(b, 16, 4);
    uint32_t fl = (uint32_t)get_le(b, 20, 4);
    uint64_t hdr = (fl & HAS_HEADER) ? 32 : 0;
    if (size < 32 || size + hdr > end) {
        err_set(e, "damaged APE tag (size)");
        return nullptr;
    }
    t->exists = true;
    t->flags = fl & ~IS_HEADER;
    t->start = end - size - hdr;
    Bytes body;
    if (!src.read(end - size, size - 32, body)) {
        err_set(e, "cannot read the APE tag");
        return nullptr;
    }
    uint64_t pos = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (body.size() - pos < 9) break;
        uint64_t vlen = get_le(body, pos, 4);
        size_t k = body.find('\0', pos + 8);
        if (k == Bytes::npos || vlen > body.size() - k - 1) {
            err_set(e, "damaged APE tag (item %llu)", (unsigned long long)i);
            return nullptr;
        }
        Bytes raw = body.substr(pos, k + 1 + vlen - pos);
        t->items.push_back(Item{0, role_of_key(body.substr(pos + 8, k - pos - 8), "GENRE"), raw});
        pos += raw.size();
    }
    if (t->items.size() != count) {
        err_set(e, "damaged APE tag (item count)");
        return nullptr;
    }
    return t;
}

} // namespace rawtag
