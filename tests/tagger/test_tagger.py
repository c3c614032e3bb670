#!/usr/bin/python3
"""Tests of the tagger module on real files.

Usage: test_tagger.py PATH/TO/tagger_probe {formats|policy|bad_inputs|threads}

Each part makes short audio files with ffmpeg in a temp dir, gives them the usual tags with
mutagen (title, artist, album, comment, track number, a custom user tag, cover art where the
container has one), runs genred's tagger through tagger_probe, and checks with mutagen that
GENRE, GENRED_CONFIDENCE and GENRED_MODEL are there in the container's native form while every
other tag, the cover bytes and the audio payload are unchanged. Exits 0 when all checks pass,
1 on any failure, 77 (skip) when ffmpeg or mutagen is missing.
"""
import base64
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile

try:
    import mutagen
    import mutagen.mp3
    from mutagen import apev2, asf, flac, id3, mp4
    from mutagen.aiff import AIFF
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    from mutagen.wave import WAVE
except ImportError as ex:
    print(f"skip: mutagen not available ({ex})")
    sys.exit(77)

PROBE = None
FAILS = []
MODEL = "0123456789ab"
COVER = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # bytes only need to survive unchanged


def check(cond, what, quiet=False):
    if cond:
        if not quiet:
            print(f"  ok   {what}")
    else:
        print(f"  FAIL {what}")
        FAILS.append(what)
    return cond


# Under -DGENRED_SANITIZE=ON a sanitizer report must not pass for the probe's "error" exit 1.
PROBE_ENV = dict(os.environ, ASAN_OPTIONS="exitcode=86", UBSAN_OPTIONS="exitcode=86:print_stacktrace=1")


def probe_run(args):
    r = subprocess.run([PROBE, *args], capture_output=True, text=True, timeout=60, env=PROBE_ENV)
    if not check(r.returncode in (0, 1) and "Sanitizer" not in r.stderr
                 and "runtime error" not in r.stderr, f"probe {args[0]} exits cleanly", quiet=True):
        print(r.stdout, r.stderr)
    return r


def probe(*args):
    r = probe_run(args)
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return r.returncode, out


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=60)


def audio_md5(path):
    """Checksum of the audio packets (stream copy), or of the decoded audio where copy fails."""
    for extra in (["-c", "copy"], []):
        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:a", *extra,
                            "-f", "md5", "-"], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and r.stdout.startswith("MD5="):
            return r.stdout.strip()
    return None


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# Making files. Each format: ffmpeg arguments for bare audio, and how its tags are written.

FORMATS = {
    # name: (file name, ffmpeg codec args, tag style)
    "mp3_v24": ("a.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"], "id3v24"),
    "mp3_v23": ("b.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"], "id3v23"),
    "mp3_v1only": ("c.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"], "id3v1"),
    "mp3_notag": ("d.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"], "none"),
    "mp3_ape": ("e.mp3", ["-c:a", "libmp3lame", "-b:a", "64k", "-id3v2_version", "0"], "id3v24+ape"),
    "flac": ("f.flac", ["-c:a", "flac"], "flac"),
    "ogg_vorbis": ("g.ogg", ["-c:a", "libvorbis", "-q:a", "2"], "ogg"),
    "opus": ("h.opus", ["-c:a", "libopus", "-b:a", "48k"], "ogg"),
    "m4a_aac": ("i.m4a", ["-c:a", "aac", "-b:a", "64k"], "mp4"),
    "m4a_alac": ("j.m4a", ["-c:a", "alac"], "mp4"),
    "m4a_aac_faststart": ("k.m4a", ["-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart"], "mp4"),
    "wma": ("l.wma", ["-c:a", "wmav2", "-b:a", "64k"], "asf"),
    "wavpack": ("m.wv", ["-c:a", "wavpack"], "ape"),
    "wav": ("n.wav", ["-c:a", "pcm_s16le"], "id3v24"),
    "aiff": ("o.aiff", ["-c:a", "pcm_s16be", "-write_id3v2", "0"], "id3v23"),
}

TAGS = {"title": "Test Title", "artist": "Test Artist", "album": "Test Album",
        "comment": "a comment", "track": "3/12", "custom": "custom value"}


def make_file(tmp, name, genre=None):
    fname, codec, style = FORMATS[name]
    path = os.path.join(tmp, fname)
    rate = "48000" if fname.endswith(".opus") else "44100"
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration=1:sample_rate={rate}", "-ac", "2",
           "-map_metadata", "-1", "-fflags", "+bitexact", *codec, path)
    add_tags(path, style, genre)
    return path


def id3_frames(genre):
    fr = [id3.TIT2(encoding=3, text=TAGS["title"]), id3.TPE1(encoding=3, text=TAGS["artist"]),
          id3.TALB(encoding=3, text=TAGS["album"]),
          id3.COMM(encoding=3, lang="eng", desc="", text=TAGS["comment"]),
          id3.TRCK(encoding=3, text=TAGS["track"]),
          id3.TXXX(encoding=3, desc="MYTAG", text=TAGS["custom"]),
          id3.APIC(encoding=3, mime="image/png", type=3, desc="front", data=COVER)]
    if genre:
        fr.append(id3.TCON(encoding=3, text=genre))
    return fr


def picture():
    p = flac.Picture()
    p.type, p.mime, p.desc, p.width, p.height, p.depth, p.data = 3, "image/png", "front", 16, 16, 24, COVER
    return p


def id3v1_tag(genre):
    """An ID3v1.1 tag built by hand: ffmpeg 5.1 writes none without an ID3v2 tag beside it."""
    def field(text, n):
        return text.encode("latin-1")[:n].ljust(n, b"\0")
    index = 255 if genre is None else ["Blues", "Classic Rock", "Country", "Dance", "Disco", "Funk",
                                       "Grunge", "Hip-Hop", "Jazz"].index(genre)
    return (b"TAG" + field(TAGS["title"], 30) + field(TAGS["artist"], 30) + field(TAGS["album"], 30)
            + b"2001" + field(TAGS["comment"], 28) + b"\0" + bytes([3, index]))


def add_tags(path, style, genre):
    if style == "none":
        return
    if style == "id3v1":
        with open(path, "ab") as f:
            f.write(id3v1_tag(genre))
        return
    if style.startswith("id3v2"):
        version = 3 if style.startswith("id3v23") else 4
        if path.endswith(".wav") or path.endswith(".aiff"):
            f = WAVE(path) if path.endswith(".wav") else AIFF(path)
            if f.tags is None:
                f.add_tags()
            for fr in id3_frames(genre):
                f.tags.add(fr)
            f.save(v2_version=version)
        else:
            t = id3.ID3()
            for fr in id3_frames(genre):
                t.add(fr)
            t.save(path, v2_version=version)
        if style.endswith("+ape"):
            a = apev2.APEv2()
            a["Title"], a["MYAPETAG"] = TAGS["title"], "ape value"
            a.save(path)
    elif style in ("flac", "ogg"):
        f = flac.FLAC(path) if style == "flac" else mutagen.File(path)
        vals = {"title": TAGS["title"], "artist": TAGS["artist"], "album": TAGS["album"],
                "comment": TAGS["comment"], "tracknumber": "3", "tracktotal": "12",
                "mytag": TAGS["custom"]}
        if genre:
            vals["genre"] = genre
        if f.tags is None:
            f.add_tags()
        for k, v in vals.items():
            f[k] = v
        if style == "flac":
            f.add_picture(picture())
        else:
            f["metadata_block_picture"] = [base64.b64encode(picture().write()).decode("ascii")]
        f.save()
    elif style == "mp4":
        f = mp4.MP4(path)
        if f.tags is None:
            f.add_tags()
        f["\xa9nam"], f["\xa9ART"], f["\xa9alb"] = TAGS["title"], TAGS["artist"], TAGS["album"]
        f["\xa9cmt"], f["trkn"] = TAGS["comment"], [(3, 12)]
        f["----:com.apple.iTunes:MYTAG"] = [mp4.MP4FreeForm(TAGS["custom"].encode())]
        f["covr"] = [mp4.MP4Cover(COVER, imageformat=mp4.MP4Cover.FORMAT_PNG)]
        if genre:
            f["\xa9gen"] = genre
        f.save()
    elif style == "asf":
        f = asf.ASF(path)
        f["Title"], f["Author"], f["WM/AlbumTitle"] = TAGS["title"], TAGS["artist"], TAGS["album"]
        f["Description"], f["WM/TrackNumber"], f["MYTAG"] = TAGS["comment"], "3", TAGS["custom"]
        if genre:
            f["WM/Genre"] = genre
        f.save()
    elif style == "ape":
        f = apev2.APEv2()
        f["Title"], f["Artist"], f["Album"] = TAGS["title"], TAGS["artist"], TAGS["album"]
        f["Comment"], f["Track"], f["MYTAG"] = TAGS["comment"], "3/12", TAGS["custom"]
        f["Cover Art (Front)"] = apev2.APEValue(b"front.png\x00" + COVER, apev2.BINARY)
        if genre:
            f["Genre"] = genre
        f.save(path)
    else:
        raise ValueError(style)


# ---------------------------------------------------------------------------------------------
# Reading files back. snapshot() is every tag but ours, normalised so that an encoding change
# TagLib is entitled to make (UTF-8 -> UTF-16 for ID3v2.3) is not a difference; ours() is
# (genre, confidence, model) in the container's native form.

OUR_KEYS = {"genred_confidence", "genred_model"}
ASF_CDO = {"Title", "Author", "Copyright", "Description", "Rating"}


def id3_norm(tags, with_genre):
    out = {}
    for key, fr in tags.items():
        if fr.FrameID == "TXXX" and fr.desc.lower() in OUR_KEYS:
            continue
        if fr.FrameID == "TCON" and not with_genre:
            continue
        specs = [s.name for s in fr._framespec + fr._optionalspec if s.name != "encoding"]
        out[key] = tuple((n, repr(getattr(fr, n, None))) for n in specs)
    return out


def pairs_norm(items, genre_key, with_genre):
    return sorted((k.lower(), v) for k, v in items
                  if k.lower() not in OUR_KEYS and (with_genre or k.lower() != genre_key))


def snapshot(path, with_genre=False):
    f = mutagen.File(path)
    if f is None:
        return None
    t = f.tags
    snap = {"type": type(f).__name__}
    if t is None and isinstance(f, (mutagen.mp3.MP3, WAVE, AIFF)):
        t = id3.ID3()
    if isinstance(t, id3.ID3):
        snap["tags"] = id3_norm(t, with_genre)
        snap["pictures"] = [fr.data for fr in t.getall("APIC")]
        snap["id3_version"] = t.version
    elif isinstance(f, flac.FLAC):
        snap["tags"] = pairs_norm(t or [], "genre", with_genre)
        snap["pictures"] = [p.data for p in f.pictures]
        snap["picture_meta"] = [(p.type, p.mime, p.desc, p.width, p.height) for p in f.pictures]
        snap["blocks"] = [type(b).__name__ for b in f.metadata_blocks
                          if b.code not in (flac.Padding.code, flac.VCFLACDict.code)]
    elif isinstance(f, (OggVorbis, OggOpus)):
        snap["tags"] = pairs_norm([(k, v) for k, v in t if k.lower() != "metadata_block_picture"],
                                  "genre", with_genre)
        snap["pictures"] = [flac.Picture(base64.b64decode(v)).data
                            for v in t.get("metadata_block_picture", [])]
        snap["vendor"] = t.vendor
    elif isinstance(f, mp4.MP4):
        snap["tags"] = sorted((k, repr(v)) for k, v in (t or {}).items()
                              if k != "covr" and not k.lower().endswith(tuple(OUR_KEYS))
                              and (with_genre or k not in ("\xa9gen", "gnre")))
        snap["pictures"] = [bytes(c) for c in (t or {}).get("covr", [])]
    elif isinstance(f, asf.ASF):
        # TagLib writes all five strings of the Content Description Object, so a missing
        # Copyright or Rating comes back as "": the same as absent to every reader.
        snap["tags"] = sorted((k, repr(v)) for k, v in (t or {}).items()
                              if k.lower() not in OUR_KEYS and (with_genre or k != "WM/Genre")
                              and not (k in ASF_CDO and [str(x) for x in v] == [""]))
        snap["pictures"] = []
    elif isinstance(t, apev2.APEv2) or t is None:
        a = ape_tags(path)
        snap["tags"] = sorted((k.lower(), v.kind, repr(v)) for k, v in a.items()
                              if k.lower() not in OUR_KEYS and (with_genre or k.lower() != "genre"))
        snap["pictures"] = [v.value for k, v in a.items() if k.lower().startswith("cover art")]
    else:
        raise ValueError(f"no snapshot for {type(f).__name__}")
    return snap


def ape_tags(path):
    try:
        return apev2.APEv2(path)
    except apev2.APENoHeaderError:
        return {}


def ours(path):
    """(genre, confidence, model) as the container natively stores them; None when absent."""
    f = mutagen.File(path)
    t = f.tags
    if isinstance(t, id3.ID3):
        def txxx(d):
            fr = t.get(f"TXXX:{d}")
            return fr.text[0] if fr else None
        return (t["TCON"].text[0] if "TCON" in t else None, txxx("GENRED_CONFIDENCE"),
                txxx("GENRED_MODEL"))
    if isinstance(f, (flac.FLAC, OggVorbis, OggOpus)):
        def get(k):
            v = t.get(k) if t is not None else None
            return v[0] if v else None
        return get("genre"), get("GENRED_CONFIDENCE"), get("GENRED_MODEL")
    if isinstance(f, mp4.MP4):
        def ff(k):
            v = (t or {}).get(f"----:com.apple.iTunes:{k}")
            return bytes(v[0]).decode() if v else None
        g = (t or {}).get("\xa9gen")
        return (g[0] if g else None), ff("GENRED_CONFIDENCE"), ff("GENRED_MODEL")
    if isinstance(f, asf.ASF):
        def at(k):
            v = (t or {}).get(k)
            return str(v[0]) if v else None
        return at("WM/Genre"), at("GENRED_CONFIDENCE"), at("GENRED_MODEL")
    a = ape_tags(path)
    def ap(k):
        return str(a[k]) if k in a else None
    return ap("Genre"), ap("GENRED_CONFIDENCE"), ap("GENRED_MODEL")


def ape_native_keys(path):
    """The exact APE item keys (to check our keys are stored upper case, as written)."""
    return set(ape_tags(path).keys())


# ---------------------------------------------------------------------------------------------

ENCODERS = []


def have_encoder(codec):
    if not ENCODERS:
        r = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
        ENCODERS.append(r.stdout)
    return f" {codec} " in ENCODERS[0]


def part_formats(tmp):
    for name, (fname, codec, style) in FORMATS.items():
        enc = codec[codec.index("-c:a") + 1]
        if not have_encoder(enc):
            print(f"SKIP {name}: ffmpeg has no {enc} encoder")
            continue
        print(f"{name}:")
        path = make_file(tmp, name)
        before_snap, before_md5 = snapshot(path), audio_md5(path)
        before_v1 = file_bytes(path)[-128:] if style == "id3v1" else None
        before_ape = ape_tags(path) if style.endswith("+ape") else None
        check(before_md5 is not None, f"{name}: ffmpeg reads the audio")
        rc, out = probe("write", path, "Hip-Hop", "0.8734", MODEL)
        check(rc == 0 and out.get("outcome") == "written", f"{name}: written ({out})")
        check(ours(path) == ("Hip-Hop", "0.873", MODEL), f"{name}: native tags {ours(path)}")
        after = snapshot(path)
        for key in before_snap:
            if key == "id3_version" and style in ("none", "id3v1"):
                continue
            check(after.get(key) == before_snap[key], f"{name}: {key} unchanged")
        if before_snap.get("pictures") is not None and style not in ("none", "id3v1", "asf"):
            check(len(after["pictures"]) == 1 and after["pictures"][0].endswith(COVER),
                  f"{name}: cover art bytes identical")
        check(audio_md5(path) == before_md5, f"{name}: audio payload identical")
        if style.startswith("id3v2") or style in ("none", "id3v1"):
            want = (2, 3, 0) if style == "id3v23" else (2, 4, 0)
            got = mutagen.File(path).tags.version
            check(got == want, f"{name}: ID3v2 version {got}")
        if style == "id3v1":
            v1 = file_bytes(path)[-128:]
            check(v1[:3] == b"TAG" and v1[:127] == before_v1[:127], f"{name}: ID3v1 tag kept")
            check(v1[127] == 7, f"{name}: ID3v1 genre byte follows GENRE (Hip-Hop = 7)")
        if style.endswith("+ape"):
            a = ape_tags(path)
            check(dict(a) and {k: repr(v) for k, v in a.items()} ==
                  {k: repr(v) for k, v in before_ape.items()}, f"{name}: APE tag kept")
        if style == "ape":
            check({"GENRED_CONFIDENCE", "GENRED_MODEL"} <= ape_native_keys(path),
                  f"{name}: APE keys stored as written")
        rc, out = probe("read", path)
        check(rc == 0 and out.get("genre") == "Hip-Hop" and out.get("confidence") == "0.873"
              and out.get("model") == MODEL and out.get("artist") == ("" if style == "none" else
                                                                        TAGS["artist"]),
              f"{name}: tagger_read {out}")
        # Undo: back to exactly the tags the file had before.
        rc, out = probe("restore", path)
        check(rc == 0 and ours(path) == (None, None, None), f"{name}: restore removes our keys")
        after = snapshot(path)
        check(after.get("tags") == before_snap.get("tags"), f"{name}: tags after restore as before")
        check(audio_md5(path) == before_md5, f"{name}: audio identical after restore")
    if shutil.which("mac"):
        print("NOTE ape: `mac` exists but this test does not drive it yet")
    print("SKIP ape (.ape Monkey's Audio): no encoder in ffmpeg or Debian; the tagger's APE path "
          "is the one wavpack uses (APE::Tag), tested above")


def part_policy(tmp):
    for name in ("flac", "mp3_v23", "m4a_aac", "wma", "opus"):
        print(f"{name}:")
        path = make_file(tmp, name, genre="Jazz")
        orig = file_bytes(path)
        old = 1_000_000_000_000_000_000
        os.utime(path, ns=(old, old))
        rc, out = probe("write", path, "Rock", "0.5", MODEL)
        check(rc == 0 and out.get("outcome") == "kept", f"{name}: hand-set genre kept ({out})")
        check(file_bytes(path) == orig and os.stat(path).st_mtime_ns == old,
              f"{name}: kept writes nothing")
        rc, out = probe("write", path, "Rock", "0.5", MODEL, "--dry-run", "--force")
        check(rc == 0 and out.get("outcome") == "written", f"{name}: dry run says written ({out})")
        check(file_bytes(path) == orig and os.stat(path).st_mtime_ns == old,
              f"{name}: dry run writes nothing")
        rc, out = probe("write", path, "Rock", "0.5", MODEL, "--force")
        check(rc == 0 and out.get("outcome") == "written", f"{name}: force overwrites ({out})")
        check(ours(path) == ("Rock", "0.500", MODEL), f"{name}: forced tags {ours(path)}")
        tagged = file_bytes(path)
        os.utime(path, ns=(old, old))
        rc, out = probe("write", path, "Rock", "0.5004", MODEL)
        check(rc == 0 and out.get("outcome") == "unchanged", f"{name}: same result unchanged ({out})")
        check(file_bytes(path) == tagged and os.stat(path).st_mtime_ns == old,
              f"{name}: unchanged leaves bytes and mtime")
        rc, out = probe("write", path, "Rock", "0.61", MODEL)
        check(rc == 0 and out.get("outcome") == "written" and ours(path)[1] == "0.610",
              f"{name}: new confidence rewrites, no force needed ({out})")
        rc, out = probe("write", path, "Metal", "0.61", "fedcba987654")
        check(rc == 0 and out.get("outcome") == "written" and ours(path) == ("Metal", "0.610", "fedcba987654"),
              f"{name}: our own earlier genre is replaced without force ({out})")
        rc, out = probe("restore", path, "Jazz")
        check(rc == 0 and ours(path) == ("Jazz", None, None), f"{name}: restore gives Jazz back")
        rc, out = probe("write", path, "Rock", "0.5", MODEL)
        check(rc == 0 and out.get("outcome") == "kept", f"{name}: restored genre counts as hand-set")
        # A user's correction (the web page's): written as set by hand, then kept.
        probe("write", path, "Rock", "0.5", MODEL, "--force")
        rc, out = probe("hand", path, "Blues")
        check(rc == 0 and ours(path) == ("Blues", None, None), f"{name}: hand-set correction {ours(path)}")
        rc, out = probe("write", path, "Rock", "0.5", MODEL)
        check(rc == 0 and out.get("outcome") == "kept", f"{name}: the correction is kept")
    # A genre that is not in ID3v1's list, written to an mp3 that has ID3v1.
    print("mp3_v1only custom genre:")
    path = make_file(tmp, "mp3_v1only")
    rc, out = probe("write", path, "Nu Gaze", "0.9", MODEL)
    check(rc == 0 and ours(path) == ("Nu Gaze", "0.900", MODEL), f"mp3_v1only: custom genre {out}")
    check(file_bytes(path)[-128:-125] == b"TAG", "mp3_v1only: ID3v1 still there")
    # Non-ASCII genre survives in every container.
    for name in ("flac", "mp3_v23", "m4a_alac", "wma", "wavpack"):
        path = make_file(tmp, name)
        rc, out = probe("write", path, "Música Popular Brasileira", "0.25", MODEL)
        check(rc == 0 and ours(path)[0] == "Música Popular Brasileira", f"{name}: utf-8 genre")
    # Arguments the API must refuse.
    path = make_file(tmp, "flac")
    orig = file_bytes(path)
    for args, what in ((("", "0.5", MODEL), "empty genre"), (("Rock", "1.5", MODEL), "confidence > 1"),
                       (("Rock", "nan", MODEL), "nan confidence"), (("Rock", "0.5", ""), "empty model"),
                       (("Rock", "0.5", "ab cd"), "model with space"), (("x" * 300, "0.5", MODEL), "long genre")):
        rc, out = probe("write", path, *args)
        check(rc == 1 and out.get("error"), f"refuses {what}: {out.get('error')}")
    check(file_bytes(path) == orig, "refused writes leave the file alone")


def part_bad_inputs(tmp):
    cases = []
    text = os.path.join(tmp, "notes.mp3")
    with open(text, "w") as f:
        f.write("these are not mp3 frames\n" * 200)
    cases.append((text, "text file named .mp3"))
    for ext in ("flac", "m4a", "ogg", "wma", "wv", "wav"):
        p = os.path.join(tmp, f"random.{ext}")
        with open(p, "wb") as f:
            f.write(hashlib.sha256(ext.encode()).digest() * 300)
        cases.append((p, f"random bytes named .{ext}"))
    empty = os.path.join(tmp, "empty.mp3")
    open(empty, "wb").close()
    cases.append((empty, "zero bytes"))
    cases.append((os.path.join(tmp, "missing.flac"), "missing file"))
    cases.append((tmp, "a directory"))
    for path, what in cases:
        orig = file_bytes(path) if os.path.isfile(path) else None
        for cmd in (["read", path], ["write", path, "Rock", "0.5", MODEL], ["restore", path, "Jazz"]):
            rc, out = probe(*cmd)
            reason = out.get("error", "")
            check(rc == 1 and reason and "\n" not in reason and reason == reason.lower(),
                  f"{what}: {cmd[0]} -> -1 ({reason})")
        if orig is not None:
            check(file_bytes(path) == orig, f"{what}: bytes unchanged")
    # A read-only file: readable, but writes refused (root too), and nothing changes.
    for name in ("flac", "mp3_v24"):
        path = make_file(tmp, name)
        os.chmod(path, 0o444)
        orig = file_bytes(path)
        rc, out = probe("read", path)
        check(rc == 0 and out.get("artist") == TAGS["artist"], f"read-only {name}: read works")
        for cmd in (["write", path, "Rock", "0.5", MODEL], ["write", path, "Rock", "0.5", MODEL, "--dry-run"],
                    ["restore", path, "Jazz"]):
            rc, out = probe(*cmd)
            check(rc == 1 and "read-only" in out.get("error", ""),
                  f"read-only {name}: {' '.join(cmd[2:] if cmd[0] == 'write' else cmd[:1])} -> {out}")
        check(file_bytes(path) == orig, f"read-only {name}: bytes unchanged")
        os.chmod(path, 0o644)


def part_threads(tmp):
    names = ["flac", "mp3_v24", "m4a_aac", "ogg_vorbis", "wavpack", "wma", "opus", "mp3_v23"]
    paths = []
    for i in range(2):
        for n in names:
            sub = os.path.join(tmp, f"{n}{i}")
            os.mkdir(sub)
            paths.append(make_file(sub, n))
    snaps = {p: snapshot(p) for p in paths}
    r = probe_run(["threads", "Reggae", "0.777", MODEL, *paths])
    check(r.returncode == 0, f"threads: all {len(paths)} writes succeed\n{r.stdout}")
    for p in paths:
        check(ours(p) == ("Reggae", "0.777", MODEL) and snapshot(p)["tags"] == snaps[p]["tags"],
              f"threads: {os.path.relpath(p, tmp)} tagged, other tags kept")


def main():
    global PROBE
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    PROBE = sys.argv[1]
    part = {"formats": part_formats, "policy": part_policy, "bad_inputs": part_bad_inputs,
            "threads": part_threads}.get(sys.argv[2])
    if part is None:
        print(f"unknown part {sys.argv[2]}")
        return 2
    if not shutil.which("ffmpeg"):
        print("skip: ffmpeg not found")
        return 77
    tmp = tempfile.mkdtemp(prefix="genred-tagger-")
    try:
        part(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILS)} failure(s)")
    for f in FAILS:
        print(f"  {f}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
