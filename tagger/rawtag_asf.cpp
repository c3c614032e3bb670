/* rawtag: ASF (wma) attributes, in the Extended Content Description object (group 0) and in
 * the Metadata (group 1) and Metadata Library (group 2) objects of the Header Extension.
 *
 * Each descriptor or record is an item, kept byte for byte and in its place; the other header
 * objects (Content Description with title and author, stream properties, ...) are kept whole.
 * genred's items (WM/Genre, GENRED_*) are written as Unicode descriptors in the Extended
 * Content Description object (created when the file has none). Only the header object is
 * rewritten; the File Properties object's file size follows. */
#include "rawtag.h"

namespace rawtag {
namespace {

Bytes guid(const char *s) /* "75B22633-..." as stored: first three fields little-endian */
{
    auto hex = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    Bytes raw;
    for (const char *p = s; *p; p++) {
        if (*p == '-') continue;
        raw += (char)(hex(p[0]) << 4 | hex(p[1]));
        p++;
    }
    Bytes g = raw;
    for (int i = 0; i < 4; i++) g[i] = raw[3 - i];
    g[4] = raw[5], g[5] = raw[4], g[6] = raw[7], g[7] = raw[6];
    return g;
}

const Bytes HEADER = guid("75B22630-668E-11CF-A6D9-00AA0062CE6C");
const Bytes FILE_PROPS = guid("8CABDCA1-A947-11CF-8EE4-00C00C205365");
const Bytes EXT_CONTENT = guid("D2D0A440-E307-11D2-97F0-00A0C95EA850");
const Bytes HEADER_EXT = guid("5FBF03B5-A92E-11CF-8EE3-00C00C205365");
const Bytes METADATA = guid("C5F8CBEA-5BAF-4877-8467-AA8C44FA4CCA");
const Bytes METADATA_LIB = guid("44231C94-9498-49D1-A141-1D134E457054");

struct Obj {
    Bytes guid, data; /* data: after the 24-byte object header */
};

bool split_objects(const Bytes &b, uint64_t pos, uint64_t end, uint64_t count, std::vector<Obj> &out)
{
    out.clear();
    for (uint64_t i = 0; (count == 0 || i < count) && pos + 24 <= end; i++) {
        uint64_t size = get_le(b, pos + 16, 8);
        if (size < 24 || size > end - pos) return false;
        out.push_back(Obj{b.substr(pos, 16), b.substr(pos + 24, size - 24)});
        pos += size;
    }
    return count == 0 ? pos == end : out.size() == count;
}

Bytes object(const Bytes &g, const Bytes &data) { return g + le(24 + data.size(), 8) + data; }

std::string strip_nul(std::string s)
{
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
}

/* Descriptors of an Extended Content Description object (group 0) or records of a Metadata or
 * Metadata Library object (groups 1, 2): each as its raw bytes. */
bool split_records(const Bytes &d, int group, std::vector<Bytes> &out)
{
    out.clear();
    if (d.size() < 2) return false;
    uint64_t n = get_le(d, 0, 2), pos = 2;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (group == 0) {
            if (d.size() - pos < 2) return false;
            uint64_t nl = get_le(d, pos, 2);
            if (d.size() - pos < 2 + nl + 4) return false;
            uint64_t vl = get_le(d, pos + 2 + nl + 2, 2);
            len = 2 + nl + 4 + vl;
        } else {
            if (d.size() - pos < 12) return false;
            len = 12 + get_le(d, pos + 4, 2) + get_le(d, pos + 8, 4);
        }
        if (len > d.size() - pos) return false;
        out.push_back(d.substr(pos, len));
        pos += len;
    }
    return true;
}

std::string record_name(const Bytes &r, int group)
{
    if (group == 0) return strip_nul(utf16_to_utf8(r.substr(2, get_le(r, 0, 2)), false));
    return strip_nul(utf16_to_utf8(r.substr(12, get_le(r, 4, 2)), false));
}

/* (type, value) of a record. */
std::pair<unsigned, Bytes> record_value(const Bytes &r, int group)
{
    if (group == 0) {
        uint64_t nl = get_le(r, 0, 2);
        return {(unsigned)get_le(r, 2 + nl, 2), r.substr(2 + nl + 4)};
    }
    return {(unsigned)get_le(r, 6, 2), r.substr(12 + get_le(r, 4, 2))};
}

Bytes descriptor(const std::string &name, const std::string &value)
{
    Bytes n = utf8_to_utf16(name, false) + Bytes(2, '\0');
    Bytes v = utf8_to_utf16(value, false) + Bytes(2, '\0');
    return le(n.size(), 2) + n + le(0, 2) + le(v.size(), 2) + v;
}

class AsfTag : public Tag {
public:
    Bytes header;               /* the whole header object */
    std::vector<Obj> objects;   /* its children */
    std::vector<Obj> ext;       /* the header extension's children (when there is one) */
    Bytes ext_reserved;         /* the 18 bytes before the header extension's data size */
    int ecd = -1, hext = -1, fprops = -1;

    std::string dialect() const override { return "asf"; }
    bool multi_value() const override { return true; }
    bool merge_groups() const override { return true; }
    std::vector<std::string> values(const Item &it) const override
    {
        auto tv = record_value(it.raw, it.group);
        if (tv.first != 0) return {};
        return {strip_nul(utf16_to_utf8(tv.second, false))};
    }
    std::vector<Item> make_genre(const std::vector<std::string> &genres) const override
    {
        std::vector<Item> out;
        for (const std::string &g : genres) out.push_back(Item{0, Role::Genre, descriptor("WM/Genre", g)});
        return out;
    }
    Item make_key(Role role, const std::string &value) const override
    {
        return Item{0, role, descriptor(role == Role::Confidence ? KEY_CONFIDENCE : KEY_MODEL, value)};
    }

    int render(const std::vector<Item> &its, Edits &out, ErrMsg *e) const override
    {
        out.clear();
        Bytes groups[3];
        uint64_t counts[3] = {0, 0, 0};
        for (const Item &it : its) {
            if (it.group < 0 || it.group > 2) continue;
            groups[it.group] += it.raw;
            counts[it.group]++;
        }
        for (int g = 0; g < 3; g++)
            if (counts[g] > 0xFFFF) return err_set(e, "too many ASF attributes");
        std::vector<Obj> objs = objects;
        if (ecd >= 0) objs[(size_t)ecd].data = le(counts[0], 2) + groups[0];
        else if (counts[0]) objs.push_back(Obj{EXT_CONTENT, le(counts[0], 2) + groups[0]});
        if (hext >= 0) {
            Bytes data;
            for (const Obj &o : ext) {
                if (o.guid == METADATA) data += object(o.guid, le(counts[1], 2) + groups[1]);
                else if (o.guid == METADATA_LIB) data += object(o.guid, le(counts[2], 2) + groups[2]);
                else data += object(o.guid, o.data);
            }
            objs[(size_t)hext].data = ext_reserved + le(data.size(), 4) + data;
        }
        Bytes body;
        for (const Obj &o : objs) body += object(o.guid, o.data);
        Bytes nh = HEADER + le(30 + body.size(), 8) + le(objs.size(), 4) + header.substr(28, 2) + body;
        int64_t d = (int64_t)nh.size() - (int64_t)header.size();
        if (fprops >= 0 && d != 0) {
            /* File Properties: file id (16), then the file size. */
            uint64_t at = 30;
            for (int i = 0; i < fprops; i++) at += 24 + objs[(size_t)i].data.size();
            uint64_t fs = get_le(nh, at + 24 + 16, 8);
            put_le(nh, at + 24 + 16, fs + (uint64_t)d, 8);
        }
        out.push_back(Edit{0, header.size(), nh});
        return 0;
    }
};

} // namespace

std::unique_ptr<Tag> open_asf(const Source &src, ErrMsg *e)
{
    auto t = std::make_unique<AsfTag>();
    Bytes h;
    if (!src.read(0, 30, h) || h.compare(0, 16, HEADER) != 0) {
        err_set(e, "not an ASF file");
        return nullptr;
    }
    uint64_t size = get_le(h, 16, 8);
    if (size < 30 || size > src.size() || size > (64u << 20) || !src.read(0, size, t->header)) {
        err_set(e, "damaged ASF header object");
        return nullptr;
    }
    if (!split_objects(t->header, 30, size, get_le(h, 24, 4), t->objects)) {
        err_set(e, "damaged ASF header object");
        return nullptr;
    }
    std::vector<Bytes> recs;
    for (size_t i = 0; i < t->objects.size(); i++) {
        const Obj &o = t->objects[i];
        if (o.guid == FILE_PROPS && t->fprops < 0) {
            if (o.data.size() < 24) {
                err_set(e, "damaged ASF file properties");
                return nullptr;
            }
            t->fprops = (int)i;
        } else if (o.guid == EXT_CONTENT && t->ecd < 0) {
            if (!split_records(o.data, 0, recs)) {
                err_set(e, "damaged ASF extended content description");
                return nullptr;
            }
            t->ecd = (int)i;
            for (const Bytes &r : recs) t->items.push_back(Item{0, role_of_key(record_name(r, 0), "WM/Genre"), r});
        } else if (o.guid == HEADER_EXT && t->hext < 0) {
            if (o.data.size() < 22 || get_le(o.data, 18, 4) != o.data.size() - 22 ||
                !split_objects(o.data, 22, o.data.size(), 0, t->ext)) {
                err_set(e, "damaged ASF header extension");
                return nullptr;
            }
            t->hext = (int)i;
            t->ext_reserved = o.data.substr(0, 18);
            for (const Obj &x : t->ext) {
                int g = x.guid == METADATA ? 1 : x.guid == METADATA_LIB ? 2 : -1;
                if (g < 0) continue;
                if (!split_records(x.data, g, recs)) {
                    err_set(e, "damaged ASF metadata object");
                    return nullptr;
                }
                for (const Bytes &r : recs) t->items.push_back(Item{g, role_of_key(record_name(r, g), "WM/Genre"), r});
            }
        }
    }
    return t;
}

} // namespace rawtag
