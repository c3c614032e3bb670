#!/usr/bin/python3
"""Tags lose nothing (issue 19): every tag layout of corpus.py through genred, compared raw.

Usage: test_corpus.py probe TAGGER_PROBE
       test_corpus.py cli GENRED_BINARY SOURCE_DIR

probe: each file of the corpus through the tagger API (tagger_probe): a write that must keep a
  hand-set genre and write nothing, a forced write, the same result again (unchanged), a new
  result over genred's own, and the restore with the undo record of the forced write.
cli: the same corpus through `genred tag`, `genred tag --force` and `genred untag`, then a fresh
  copy through a `genred watch` run (tag.force on) and `genred untag` with its state database.

After every write, every tag item genred does not own is byte-identical to the original (ID3v2
frames, Vorbis comments, MP4 atoms, APE items, ASF attributes, pictures included) and the tag's
structure around them too (corpus.diff); only files without an ID3v2 tag may gain one. After the
restore the whole tag, genred's items included, is the original. The audio stream's md5 (ffmpeg)
never changes. Exits 0 pass, 1 fail, 77 skip (no ffmpeg or mutagen).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))

try:
    import mutagen  # noqa: F401
except ImportError as ex:
    print(f"skip: mutagen not available ({ex})")
    sys.exit(77)
if not shutil.which("ffmpeg"):
    print("skip: ffmpeg not found")
    sys.exit(77)

import corpus  # noqa: E402

FAILS = []
MODEL = "0123456789ab"
# Files that have no ID3v2 tag: a write adds one (ID3v2.4), a restore takes it away again.
NEW_ID3 = {"untagged.mp3", "v1_only.mp3"}
# Under -DGENRED_SANITIZE=ON a sanitizer report must not pass for an "error" exit 1.
ENV = dict(os.environ, ASAN_OPTIONS="exitcode=86", UBSAN_OPTIONS="exitcode=86:print_stacktrace=1")


def check(cond, what):
    if not cond:
        print(f"  FAIL {what}", flush=True)
        FAILS.append(what)
    return cond


def run(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=kw.pop("env", ENV), **kw)
    if "Sanitizer" in r.stderr or "runtime error" in r.stderr:
        check(False, f"sanitizer report from {' '.join(map(str, args[:3]))}:\n{r.stderr[-3000:]}")
    return r


def kv(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def build(d):
    os.makedirs(d)
    files = corpus.build(d)
    for f in os.listdir(d):  # leftovers of the writers (cover.png)
        if os.path.join(d, f) not in files.values():
            os.unlink(os.path.join(d, f))
    return files


class Original:
    """A file as the corpus made it: bytes, raw snapshot, audio md5."""

    def __init__(self, path, md5):
        self.path = path
        self.name = os.path.basename(path)
        self.bytes = corpus.file_bytes(path)
        self.snap = corpus.snapshot(path)
        self.md5 = md5

    def same_except_ours(self, path, when):
        now = corpus.snapshot(path)
        diffs = corpus.diff(self.snap, now)
        if self.name in NEW_ID3:
            diffs = [d for d in diffs if not d.startswith(("id3.", "id3v2:"))]
            check(now["struct"].get("id3.version") == (2, 4, 0), f"{self.name} {when}: a new ID3v2.4 tag")
        ok = check(not diffs, f"{self.name} {when}: items genred does not own unchanged")
        for d in diffs:
            print(f"      {d}")
        return ok, now

    def same_as_original(self, path, when):
        now = corpus.snapshot(path)
        diffs = corpus.diff(self.snap, now, with_owned=True)
        ok = check(not diffs, f"{self.name} {when}: the whole tag is the original")
        for d in diffs:
            print(f"      {d}")
        return ok


def originals(paths):
    md5 = corpus.audio_md5_many(paths)
    for p in paths:
        check(md5[p] is not None, f"{os.path.basename(p)}: ffmpeg reads the audio")
    return {p: Original(p, md5[p]) for p in paths}


def check_audio(orig, when, where=None):
    """The audio md5 of every file (at where[path], default the original path) is the original's."""
    where = where or {p: p for p in orig}
    md5 = corpus.audio_md5_many([where[p] for p in orig])
    for p, o in orig.items():
        check(md5[where[p]] == o.md5, f"{o.name} {when}: audio md5 unchanged")


def ours(snap):
    """The GENRED_* keys among the items the independent reader found genred's."""
    found = set()
    for k_, v in snap["owned"]:
        raw = k_.encode() + (repr(v).encode() if not isinstance(v, bytes) else v)
        for k in ("GENRED_CONFIDENCE", "GENRED_MODEL"):
            if k.encode() in raw or k.encode("utf-16-le") in raw:
                found.add(k)
    return found


def part_probe(probe, tmp):
    files = build(os.path.join(tmp, "corpus"))
    print(f"{len(files)} layouts: {', '.join(sorted(files))}")
    orig = originals(sorted(files.values()))
    undo = {}
    for path, o in orig.items():
        print(f"{o.name}:", flush=True)
        r = run([probe, "read", path])
        check(r.returncode == 0, f"{o.name}: read ({r.stdout.strip()})")
        hand_set = kv(r.stdout).get("genre") and not kv(r.stdout).get("confidence")

        r = run([probe, "write", path, "Rock", "0.5", MODEL])
        out = kv(r.stdout)
        if hand_set:
            check(out.get("outcome") == "kept", f"{o.name}: hand-set genre kept ({out})")
            check(corpus.file_bytes(path) == o.bytes, f"{o.name}: kept writes nothing")
            r = run([probe, "write", path, "Rock", "0.5", MODEL, "--force"])
            out = kv(r.stdout)
        check(r.returncode == 0 and out.get("outcome") == "written", f"{o.name}: written ({out})")
        undo[path] = out.get("undo")
        check(undo[path] is not None and undo[path].startswith("genred-undo-1 "),
              f"{o.name}: undo record given")
        _, snap = o.same_except_ours(path, "after the write")
        check(len(ours(snap)) == 2, f"{o.name}: GENRED_* written")
    check_audio(orig, "after the write")

    for path, o in orig.items():
        print(f"{o.name}:", flush=True)
        tagged = corpus.file_bytes(path)
        r = run([probe, "write", path, "Rock", "0.5004", MODEL])
        check(kv(r.stdout).get("outcome") == "unchanged" and corpus.file_bytes(path) == tagged,
              f"{o.name}: the same result writes nothing")
        r = run([probe, "write", path, "Jazz", "0.61", "fedcba987654"])
        out2 = kv(r.stdout)
        check(out2.get("outcome") == "written" and "undo" not in out2,
              f"{o.name}: genred's own genre replaced, no undo record ({out2})")
        o.same_except_ours(path, "after a second write")
        r = run([probe, "read", path])
        check(kv(r.stdout).get("genre") == "Jazz" and kv(r.stdout).get("model") == "fedcba987654",
              f"{o.name}: read back {kv(r.stdout)}")

        r = run([probe, "restore", path, "", undo[path] or ""])
        check(r.returncode == 0, f"{o.name}: restore ({r.stdout.strip()})")
        o.same_as_original(path, "after the restore")
    check_audio(orig, "after the restore")


# The layouts that carry no genre: genred tags them without --force.
NO_GENRE = {"v24_notcon.mp3", "untagged.mp3", "flac_nopad.flac", "flac_id3front.flac",
            "vorbis_ffmpeg.ogg", "opus_ffmpeg.opus"}


def part_cli(binary, src, tmp):
    os.environ.update(GENRED_BIN=binary, GENRED_SOURCE_DIR=src)
    import daemontest as dt

    d = os.path.join(tmp, "corpus")
    files = sorted(build(d).values())
    orig = originals(files)
    env = dict(ENV, XDG_STATE_HOME=os.path.join(tmp, "state"), XDG_CONFIG_HOME=os.path.join(tmp, "cfg"))
    env.pop("GENRED_MODEL", None)
    model = os.path.join(tmp, "m.safetensors")
    subprocess.run(["/usr/bin/python3", os.path.join(src, "tests/nn/make_model.py"), "--arch",
                    "seed-cnn", "--seed", "1", model], check=True, stdout=subprocess.DEVNULL)

    print("genred tag:", flush=True)
    r = run([binary, "tag", "--model", model, d], env=env)
    check(r.returncode == 0, f"genred tag exits 0 ({r.returncode}): {r.stderr[-2000:]}")
    for p, o in orig.items():
        line = [x for x in r.stdout.splitlines() if p in x]
        if o.name in NO_GENRE:
            check(line and line[0].startswith("tagged "), f"{o.name}: tagged ({line})")
            o.same_except_ours(p, "after genred tag")
        else:
            check(line and line[0].startswith("kept "), f"{o.name}: hand-set genre kept ({line})")
            check(corpus.file_bytes(p) == o.bytes, f"{o.name}: genred tag wrote nothing")
    check_audio(orig, "after genred tag")

    print("genred tag --force:", flush=True)
    r = run([binary, "tag", "--force", "--model", model, d], env=env)
    check(r.returncode == 0, f"genred tag --force exits 0 ({r.returncode}): {r.stderr[-2000:]}")
    for p, o in orig.items():
        _, snap = o.same_except_ours(p, "after genred tag --force")
        check(len(ours(snap)) == 2, f"{o.name}: GENRED_* written by tag --force")
    check_audio(orig, "after genred tag --force")

    print("genred untag:", flush=True)
    r = run([binary, "untag", *files], env=env)
    check(r.returncode == 0, f"genred untag exits 0 ({r.returncode}): {r.stderr[-2000:]}")
    for p, o in orig.items():
        o.same_as_original(p, "after genred untag")
    check_audio(orig, "after genred untag")

    print("genred watch (tag.force):", flush=True)
    L = dt.Lib("corpus", extra_conf="tag = { force = true; };\n", hooks=False)
    try:
        lib = {}
        for p, o in orig.items():
            q = os.path.join(L.lib, o.name)
            shutil.copy(p, q)
            lib[q] = o
        L.start()
        L.wait_rows(list(lib), 120)
        check(L.stop() == 0, "daemon exits 0 on SIGTERM")
        rows = L.rows()
        for q, o in lib.items():
            row = rows.get(os.fsencode(q))
            check(row is not None and row[0] == 0, f"{o.name}: daemon result ok ({row})")
            _, snap = o.same_except_ours(q, "after the daemon run")
            check(len(ours(snap)) == 2, f"{o.name}: GENRED_* written by the daemon")
        where = {o.path: q for q, o in lib.items()}
        check_audio(orig, "after the daemon run", where)
        r = run([binary, "untag", "--config", L.conf, *lib], env=env)
        check(r.returncode == 0, f"genred untag after the daemon exits 0: {r.stderr[-2000:]}")
        for q, o in lib.items():
            o.same_as_original(q, "after the daemon run and genred untag")
        check_audio(orig, "after the daemon run and genred untag", where)
    finally:
        FAILS.extend(dt.FAILS)
        L.cleanup()


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("probe", "cli"):
        print(__doc__)
        return 2
    tmp = tempfile.mkdtemp(prefix="genred-corpus-")
    try:
        if sys.argv[1] == "probe":
            part_probe(sys.argv[2], tmp)
        else:
            part_cli(sys.argv[2], sys.argv[3], tmp)
    finally:
        if FAILS:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(FAILS)} failure(s)")
    for f in FAILS:
        print(f"  {f}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
