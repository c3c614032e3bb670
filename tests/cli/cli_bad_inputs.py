#!/usr/bin/python3
"""A corpus of bad inputs through `genred classify` and `genred tag`: zero bytes, truncated
mp3 and flac, random bytes named .mp3, a text file named .mp3, a folder named x.mp3, a missing
file, an unreadable file (skipped as root, where chmod 000 does not stop reads), a 2-hour file
and a 0.1 s file. Each gives a one-line error naming the file, or a correct result; never a
crash or a sanitizer report (run it in a -DGENRED_SANITIZE=ON build for ASan/UBSan).
    cli_bad_inputs.py GENRED SOURCE_DIR"""
import os
import re
import sys

from clitest import Genred, check, ffmpeg, finish, make_model, music, need_tools, sh, tmpdir


def put_in(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    return os.path.join(d, name)


def main():
    genred, src = sys.argv[1], sys.argv[2]
    need_tools("sox", "ffmpeg")
    t = tmpdir()
    model = make_model(src, os.path.join(t, "seed.safetensors"))
    g = Genred(genred, env={"GENRED_MODEL": model})
    c = os.path.join(t, "corpus")
    os.makedirs(c)
    good = music(os.path.join(t, "good.wav"), seconds=20)
    ffmpeg("-i", good, "-c:a", "libmp3lame", "-b:a", "128k", os.path.join(t, "good.mp3"))
    ffmpeg("-i", good, "-c:a", "flac", os.path.join(t, "good.flac"))
    mp3 = open(os.path.join(t, "good.mp3"), "rb").read()
    flac = open(os.path.join(t, "good.flac"), "rb").read()

    def put(name, data):
        with open(os.path.join(c, name), "wb") as f:
            f.write(data)
        return os.path.join(c, name)

    must_fail = [
        put("zero.mp3", b""),
        put("random.mp3", os.urandom(20000)),
        put("text.mp3", b"Dear diary, this is not an mp3 file.\n" * 50),
        put("header-only.flac", flac[:200]),
    ]
    os.makedirs(os.path.join(c, "x.mp3"))
    may_fail = [  # decodable in part: a result or a clear error are both right
        put("truncated.mp3", mp3[: len(mp3) // 3]),
        put("truncated.flac", flac[: len(flac) // 3]),
    ]
    # 2 hours at 8 kHz mono: a few seconds to make (ffmpeg; sox takes far longer), long to
    # decode without seeking.
    long = os.path.join(c, "long.flac")
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=8000:d=7200", "-c:a", "flac", long)
    tiny = os.path.join(c, "tiny.wav")
    sh(["sox", "-n", "-r", "44100", "-c", "2", tiny, "synth", "0.1", "sine", "440"])
    good_ok = [long, tiny, os.path.join(t, "good.mp3")]
    missing = os.path.join(c, "missing.mp3")
    unreadable = []
    if os.geteuid() != 0:
        p = put("unreadable.mp3", mp3)
        os.chmod(p, 0)
        unreadable.append(p)
    else:
        print("note: running as root, chmod 000 does not stop reads; unreadable case is the "
              "missing file only")

    # classify, one call with everything, in order.
    args = must_fail + [os.path.join(c, "x.mp3"), missing] + unreadable + may_fail + good_ok
    r = g.run("classify", *args, timeout=300)
    out, err = r.stdout.decode(), r.stderr.decode()
    print("stdout:\n" + out + "stderr:\n" + err)
    check(r.returncode == 1, "classify exit %d (want 1)" % r.returncode)
    errs = [l for l in err.splitlines() if l.startswith("genred: ")]
    oks = {l.split("\t")[0]: l for l in out.splitlines()}
    for p in must_fail + [os.path.join(c, "x.mp3"), missing] + unreadable:
        line = [l for l in errs if l.startswith("genred: %s: " % p)]
        check(len(line) == 1 and len(line[0]) > len("genred: %s: " % p) + 3,
              "%s: want one error line with a reason, got %r" % (p, line))
        check(p not in oks, "%s: got a result" % p)
    for p in may_fail:
        n = (p in oks) + len([l for l in errs if l.startswith("genred: %s: " % p)])
        check(n == 1, "%s: want a result or an error line, got %d" % (p, n))
    for p in good_ok:
        check(p in oks, "%s: no result" % p)
        if p in oks:
            check(re.match(r"^.*\t\S.*\t[01]\.\d{3}$", oks[p]) is not None, "result line %r" % oks[p])
    for l in err.splitlines():
        check(l.startswith("genred: "), "stray stderr line: %r" % l)

    # --json on the same set: every stdout line is one JSON object.
    import json
    r = g.run("classify", "--json", *args, timeout=300)
    for l in r.stdout.decode().splitlines():
        try:
            json.loads(l)
        except ValueError:
            fail_line = l
            check(False, "--json line is not JSON: %r" % fail_line)

    # tag the corpus folder: keeps going, counts failures, exit 1.
    r = g.run("tag", "--jobs", "2", c, timeout=300)
    out, err = r.stdout.decode(), r.stderr.decode()
    print("tag stdout:\n" + out + "tag stderr:\n" + err)
    check(r.returncode == 1, "tag exit %d (want 1)" % r.returncode)
    for p in must_fail + unreadable:
        check(("genred: %s: " % p) in err, "tag: no error for %s" % p)
    for p in (long, tiny):
        check(re.search(r"^tagged %s \S" % re.escape(p), out, re.M), "tag: %s not tagged" % p)
    m = re.search(r"^tagged (\d+), unchanged (\d+), kept hand-set genre (\d+), failed (\d+)", out, re.M)
    if check(m is not None, "tag: no summary"):
        check(int(m.group(4)) >= len(must_fail) + len(unreadable), "tag: failed count %s" % m.group(4))

    # Control characters in names: a newline in a bad file's name must not split its error
    # line, nor a tab in a good one add a column to classify's tab-separated result.
    odd = os.path.join(t, "odd")
    os.makedirs(odd)
    bad_nl = put_in(odd, "bad\nname.mp3", os.urandom(5000))
    good_tab = os.path.join(odd, "good\tname.flac")
    sh(["sox", "-n", "-r", "22050", "-c", "1", good_tab, "synth", "5", "sine", "330"])
    shown_bad = bad_nl.replace("\n", "\\n")
    shown_good = good_tab.replace("\t", "\\t")
    r = g.run("classify", bad_nl, good_tab)
    out, err = r.stdout.decode(), r.stderr.decode()
    check(r.returncode == 1, "classify odd names: exit %d (want 1)" % r.returncode)
    lines = err.split("\n")
    check(len(lines) == 2 and lines[1] == "" and lines[0].startswith("genred: %s: " % shown_bad),
          "error for a name with a newline: %r" % err)
    cols = out.split("\n")[0].split("\t")
    check(out.count("\n") == 1 and len(cols) == 3 and cols[0] == shown_good,
          "result for a name with a tab: %r" % out)
    r = g.run("tag", odd)
    out = r.stdout.decode()
    check(re.search(r"^tagged %s \S+ [01]\.\d{3}$" % re.escape(shown_good), out, re.M) is not None
          and len(out.splitlines()) == 2, "tag odd names: %r" % out)
    probe = sh(["ffprobe", "-v", "error", "-show_entries", "format_tags", "-of", "json", good_tab])
    check(b"GENRED_CONFIDENCE" in probe.stdout.upper(),
          "the file with a tab was not tagged: %r" % probe.stdout)
    db = os.path.join(t, "state.db")
    r = g.run("untag", "--state", db, good_tab)
    out = r.stdout.decode()
    check(r.returncode == 0 and re.fullmatch(r"untagged %s: genre \S+ removed\n" % re.escape(shown_good),
                                             out) is not None, "untag odd name: %r" % out)
    r = g.run("status", "--state", db, "--all")
    line = [l for l in r.stdout.decode().split("\n") if "(untagged)" in l]
    check(r.returncode == 0 and len(line) == 1 and line[0].endswith("  " + shown_good),
          "status odd name: %r" % r.stdout)
    finish()


main()
