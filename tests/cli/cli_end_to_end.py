#!/usr/bin/python3
"""classify and tag end to end with a random-weight model (tests/nn/make_model.py): TSV and
--json output, tags read back by mutagen, --dry-run writes nothing, a hand-set genre is kept
without --force and replaced with it, a second run reports unchanged, folder walking (nested
folders, a symlink loop, non-audio files skipped), the demo library, exit codes 0/1/2.
    cli_end_to_end.py GENRED SOURCE_DIR"""
import hashlib
import json
import os
import re
import sys

from clitest import Genred, check, ffmpeg, finish, make_model, music, need_tools, sh, tmpdir

HEX12 = re.compile(r"^[0-9a-f]{12}$")


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def tags(path):
    """(genre, confidence, model) as an independent reader (mutagen) sees them."""
    import mutagen
    ext = path.rsplit(".", 1)[-1]
    if ext == "mp3":
        from mutagen.id3 import ID3
        t = ID3(path)
        g = t.get("TCON")
        c = t.get("TXXX:GENRED_CONFIDENCE")
        m = t.get("TXXX:GENRED_MODEL")
        return (str(g.text[0]) if g else None, str(c.text[0]) if c else None,
                str(m.text[0]) if m else None)
    f = mutagen.File(path)
    if ext == "m4a":
        def ff(k):
            v = f.tags.get("----:com.apple.iTunes:" + k) if f.tags else None
            return bytes(v[0]).decode() if v else None
        g = f.tags.get("\xa9gen") if f.tags else None
        return (g[0] if g else None, ff("GENRED_CONFIDENCE"), ff("GENRED_MODEL"))
    def vc(k):
        v = f.tags.get(k) if f.tags else None
        return v[0] if v else None
    return (vc("genre"), vc("genred_confidence"), vc("genred_model"))


def main():
    genred, src = sys.argv[1], sys.argv[2]
    need_tools("sox", "ffmpeg")
    try:
        import mutagen  # noqa: F401
    except ImportError:
        from clitest import skip
        skip("python3-mutagen not installed")
    t = tmpdir()
    model = make_model(src, os.path.join(t, "seed.safetensors"))
    g = Genred(genred, env={"GENRED_MODEL": model})
    lib = os.path.join(t, "lib")
    os.makedirs(os.path.join(lib, "a", "b"))
    wav = music(os.path.join(t, "m0.wav"), seconds=20, seed=0)
    wav1 = music(os.path.join(t, "m1.wav"), seconds=12, seed=1)
    files = {
        "a/one.mp3": (wav, ["-c:a", "libmp3lame", "-b:a", "128k"]),
        "a/b/two.flac": (wav1, ["-c:a", "flac"]),
        "three.ogg": (wav1, ["-c:a", "libvorbis"]),
        "four.m4a": (wav, ["-c:a", "aac", "-b:a", "128k"]),
    }
    paths = []
    for rel, (s, args) in files.items():
        p = os.path.join(lib, rel)
        ffmpeg("-i", s, *args, p)
        paths.append(p)
    with open(os.path.join(lib, "notes.txt"), "w") as f:
        f.write("not audio, and not named like audio: the walk skips it\n")
    os.symlink("..", os.path.join(lib, "a", "b", "loop"))  # a symlink loop
    os.makedirs(os.path.join(lib, "x.mp3"))               # a folder named like audio
    # A non-UTF-8 file name.
    odd = os.path.join(os.fsencode(t), b"caf\xe9.flac")
    ffmpeg("-i", wav1, "-c:a", "flac", os.fsdecode(odd))

    # --- classify: TSV, in input order ---
    r = g.run("classify", *paths)
    check(r.returncode == 0, "classify exit %d: %s" % (r.returncode, r.stderr.decode()))
    lines = r.stdout.decode().splitlines()
    check(len(lines) == len(paths), "classify: %d lines for %d files" % (len(lines), len(paths)))
    tsv = {}
    for p, line in zip(paths, lines):
        cols = line.split("\t")
        if check(len(cols) == 3 and cols[0] == p, "classify line %r" % line):
            check(re.match(r"^[01]\.\d{3}$", cols[2]) is not None, "confidence %r" % cols[2])
            tsv[p] = (cols[1], cols[2])
    print("classify:\n" + r.stdout.decode())

    # --- classify --json ---
    r = g.run("classify", "--json", *paths, os.fsdecode(odd))
    check(r.returncode == 0, "classify --json exit %d" % r.returncode)
    objs = [json.loads(l) for l in r.stdout.decode("utf-8").splitlines()]
    check(len(objs) == len(paths) + 1, "--json: %d objects" % len(objs))
    for o in objs:
        probs = o["probabilities"]
        check(len(probs) == 10, "--json: %d probabilities" % len(probs))
        check(len(o["windows"]) == 6 and all(len(w) == 10 for w in o["windows"]),
              "--json: windows shape")
        check(abs(sum(probs.values()) - 1) < 1e-3, "--json: probabilities sum %f" % sum(probs.values()))
        check(abs(max(probs.values()) - o["confidence"]) < 1e-6, "--json: confidence is not the max")
        check(max(probs, key=probs.get) == o["label"], "--json: label is not the argmax")
        check(HEX12.match(o["model"]) is not None, "--json: model id %r" % o["model"])
        if o["path"] in tsv:
            check(tsv[o["path"]] == (o["genre"], "%.3f" % o["confidence"]),
                  "--json disagrees with TSV for %s" % o["path"])
    check(objs[-1]["path"] == t + "/caf\ufffd.flac", "non-UTF-8 path escaped as %r" % objs[-1]["path"])

    # --- tag --dry-run writes nothing ---
    before = {p: digest(p) for p in paths}
    r = g.run("tag", "--dry-run", lib)
    out = r.stdout.decode()
    print("tag --dry-run:\n" + out + r.stderr.decode())
    check(r.returncode == 0, "tag --dry-run exit %d" % r.returncode)
    check(out.count("would tag ") == 4 + 1, "dry run: want 4 'would tag' lines and a summary")
    check(all(digest(p) == before[p] for p in paths), "--dry-run changed a file")
    check("notes.txt" not in out, "non-audio file was not skipped")

    # --- a hand-set genre (no GENRED_CONFIDENCE) on the flac ---
    import mutagen
    flac = os.path.join(lib, "a/b/two.flac")
    f = mutagen.File(flac)
    f["genre"] = "Chiptune"
    f.save()

    r = g.run("tag", lib)
    out = r.stdout.decode()
    print("tag:\n" + out + r.stderr.decode())
    check(r.returncode == 0, "tag exit %d" % r.returncode)
    check(re.search(r"^tagged 3, unchanged 0, kept hand-set genre 1, failed 0", out, re.M),
          "tag summary")
    for p in paths:
        genre, conf, mid = tags(p)
        if p == flac:
            check(genre == "Chiptune" and conf is None, "hand-set genre not kept: %r" % genre)
            continue
        check((genre, conf) == tsv[p], "%s: tags %r, classify said %r" % (p, (genre, conf), tsv[p]))
        check(mid is not None and HEX12.match(mid), "%s: GENRED_MODEL %r" % (p, mid))

    r = g.run("tag", lib)
    out = r.stdout.decode()
    check(re.search(r"^tagged 0, unchanged 3, kept hand-set genre 1, failed 0", out, re.M),
          "second run should change nothing: " + out)

    r = g.run("tag", "--force", "--quiet", flac)
    check(r.returncode == 0 and r.stdout == b"", "tag --force --quiet: %d %r" % (r.returncode, r.stdout))
    check(tags(flac)[:2] == tsv[flac], "--force did not replace the hand-set genre: %r" % (tags(flac),))

    # --- one bad file: exit 1, the rest still tagged ---
    bad = os.path.join(lib, "a", "broken.mp3")
    with open(bad, "wb") as f:
        f.write(os.urandom(5000))
    r = g.run("tag", lib)
    err = r.stderr.decode()
    check(r.returncode == 1, "tag with a bad file: exit %d (want 1)" % r.returncode)
    check(("genred: %s: " % bad) in err, "no error line naming the bad file: %r" % err)
    check(re.search(r"^tagged 0, unchanged 4, kept hand-set genre 0, failed 1", r.stdout.decode(),
                    re.M), "summary with a bad file: " + r.stdout.decode())
    os.unlink(bad)

    # --- usage errors: 2 ---
    for args in (["tag", "--jobs", "0", lib], ["tag", "--batch", "x", lib], ["tag", "--bogus"],
                 ["classify"], ["classify", "--model", os.path.join(t, "none.safetensors"), paths[0]],
                 ["nosuchcommand"], []):
        r = g.run(*args)
        check(r.returncode == 2, "genred %s: exit %d (want 2)" % (" ".join(args), r.returncode))
    r = g.run("tag", "--jobs", "0", lib)
    check(r.stderr.decode() == "genred tag: --jobs wants a whole number from 1 to 1024, not '0'\n",
          "tag --jobs 0: %r" % r.stderr)
    r = g.run("tag", "--jobs")
    check(r.returncode == 2 and r.stderr.decode().startswith(
        "genred tag: option '--jobs' requires an argument\n"), "tag --jobs: %r" % r.stderr)
    # watch: a bad flag names the flag and the setting it stands for, before anything starts
    conf = os.path.join(t, "empty.conf")
    open(conf, "w").close()
    r = g.run("watch", "-c", conf, "--jobs", "3", "--print-config")
    check(r.returncode == 0 and re.search(rb"^jobs = 3;$", r.stdout, re.M) is not None,
          "watch --jobs 3 --print-config: %d %r" % (r.returncode, r.stdout[:300]))
    for args, want in ((["--jobs", "-3"], "--jobs (setting jobs): must be between 0 and 256, not -3"),
                       (["--min-confidence", "2"],
                        "--min-confidence (setting tag.min_confidence): must be between 0 and 1, not 2")):
        r = g.run("watch", "-c", conf, *args, "--print-config")
        check(r.returncode == 2 and r.stderr.decode() == "genred watch: " + want + "\n"
              and not r.stdout, "watch %s: %d %r" % (" ".join(args), r.returncode, r.stderr))
    # train/finetune: the one-line message names the option, whichever way its value came
    out = os.path.join(t, "never.safetensors")
    for args, want in ((["train", "--epochs", "0"], "genred train: bad value '0' for --epochs"),
                       (["train", "--lr=x"], "genred train: bad value 'x' for --lr"),
                       (["finetune", "--blend", "2"], "genred finetune: bad value '2' for --blend"),
                       (["train", "--from", paths[0]], "genred train: --from is for genred finetune only"),
                       (["train", "--retag"], "genred train: --retag is for genred finetune only")):
        r = g.run(*args, "-o", out)
        check(r.returncode == 2 and r.stderr.decode() == want + "\n" and not os.path.exists(out),
              "genred %s: exit %d, %r (want 2, %r)" % (" ".join(args), r.returncode, r.stderr, want))
    for args in (["--help"], ["--version"], ["help", "tag"], ["classify", "--help"],
                 ["tag", "--help"], ["mel", "--help"]):
        r = g.run(*args)
        check(r.returncode == 0 and r.stdout, "genred %s: exit %d" % (" ".join(args), r.returncode))
    # No model anywhere: a clear message (only checkable without a model in the source tree).
    if not any(os.path.exists(os.path.join(d, "genred.safetensors"))
               for d in (os.path.join(src, "models"), "/usr/local/share/genred", "/usr/share/genred")):
        r = Genred(genred).run("classify", paths[0])
        check(r.returncode == 2 and b"no model found; pass --model" in r.stderr,
              "no-model message: %r" % r.stderr)

    # --- no PATH: the demo library, copied into the cache, never the source ---
    demo_src = os.path.join(t, "demo-src")
    os.makedirs(demo_src)
    for i in range(2):
        ffmpeg("-i", wav1, "-c:a", "libvorbis", os.path.join(demo_src, "track%d.ogg" % i))
    src_digest = {n: digest(os.path.join(demo_src, n)) for n in os.listdir(demo_src)}
    cache = os.path.join(t, "cache")
    env = {"GENRED_DEMO_SOURCE": demo_src, "XDG_CACHE_HOME": cache}
    r = g.run("tag", env=env)
    print("tag (demo):\n" + r.stdout.decode() + r.stderr.decode())
    check(r.returncode == 0, "demo tag exit %d" % r.returncode)
    copy = os.path.join(cache, "genred", "demo-library")
    check(b"demo library" in r.stderr, "demo run does not say so")
    check(sorted(os.listdir(copy)) == ["track0.ogg", "track1.ogg"], "demo copy %r" % os.listdir(copy))
    check(all(tags(os.path.join(copy, n))[1] is not None for n in os.listdir(copy)), "demo copy not tagged")
    check(all(digest(os.path.join(demo_src, n)) == d for n, d in src_digest.items()),
          "demo source was modified")
    r = g.run("tag", env=env)
    check(r.returncode == 0 and re.search(r"^tagged 0, unchanged 2,", r.stdout.decode(), re.M),
          "second demo run should find the tagged copy unchanged: " + r.stdout.decode())
    r = g.run("tag", env={"GENRED_DEMO_SOURCE": os.path.join(t, "absent"), "XDG_CACHE_HOME": cache})
    check(r.returncode == 2 and b"apt-get install drascula-music" in r.stderr,
          "missing demo package message: %d %r" % (r.returncode, r.stderr))
    finish()


main()
