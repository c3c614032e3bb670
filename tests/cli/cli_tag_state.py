"""`genred tag` records what it did in the state database, as the daemon does (so `genred status`,
`untag` and the web page know it): one row per file under its absolute path, with the genre,
confidence, model, the ARTIST read from the file, the genre from before genred when it was
hand-set, and a row for a file that failed. A dry run and --no-state record nothing;
--state FILE picks the database. Rows are read back with Python's sqlite3 and `genred status`.
Usage: cli_tag_state.py GENRED_BINARY SOURCE_DIR"""
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import Genred, check, ffmpeg, finish, skip, tmpdir  # noqa: E402

try:
    import mutagen.flac
except ImportError:
    skip("python3-mutagen is not installed")

binary, source = sys.argv[1], sys.argv[2]
tmp = tmpdir()
lib = os.path.join(tmp, "lib")
os.makedirs(lib)
model = os.path.join(tmp, "m.safetensors")
subprocess.run([sys.executable, os.path.join(source, "tests/nn/make_model.py"), "--arch",
                "seed-cnn", "--seed", "3", model], check=True, stdout=subprocess.DEVNULL)
for i, name in enumerate(("a.flac", "b.flac", "c.mp3")):
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=%d:duration=5" % (220 * (i + 1)), "-ar", "22050",
           os.path.join(lib, name))
f = mutagen.flac.FLAC(os.path.join(lib, "a.flac"))
f["ARTIST"] = "The Sine Waves"
f.save()
f = mutagen.flac.FLAC(os.path.join(lib, "b.flac"))
f["GENRE"] = "Polka"  # hand-set: kept, and what untag would restore
f.save()
with open(os.path.join(lib, "broken.mp3"), "wb") as fh:
    fh.write(b"not audio " * 300)

state_home = os.path.join(tmp, "xdg-state")
g = Genred(binary, env={"XDG_STATE_HOME": state_home, "XDG_CONFIG_HOME": os.path.join(tmp, "c")})
db = os.path.join(state_home, "genred", "state.db")

g.run("tag", "--model", model, "--dry-run", lib)
check(not os.path.exists(db), "a dry run created the state database")
solo = os.path.join(tmp, "solo.mp3")
ffmpeg("-f", "lavfi", "-i", "sine=frequency=500:duration=5", solo)
r = g.run("tag", "--model", model, "--no-state", solo)
check(r.returncode == 0 and "GENRED_CONFIDENCE" in str(mutagen.File(solo).tags),
      "--no-state did not tag")
check(not os.path.exists(db), "--no-state created the state database")
os.chdir(tmp)
r = g.run("tag", "--model", model, "lib")  # relative: rows are keyed by absolute paths
check(r.returncode == 1, "tag: exit %d, expected 1 for the broken file" % r.returncode)
check(os.path.exists(db), "no state database at %s" % db)
rows = {}
if os.path.exists(db):
    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    for row in c.execute("SELECT * FROM tracks"):
        rows[bytes(row["path"]).decode()] = dict(row)
    c.close()
real = os.path.realpath(lib)
check(sorted(rows) == sorted(os.path.join(real, n) for n in ("a.flac", "b.flac", "c.mp3",
                                                              "broken.mp3")),
      "rows %r" % sorted(rows))
a = rows.get(os.path.join(real, "a.flac"), {})
check(a.get("artist") == "The Sine Waves", "artist %r" % a.get("artist"))
tags = mutagen.flac.FLAC(os.path.join(lib, "a.flac"))
check(a.get("genre") == tags.get("GENRE", [""])[0] and a.get("status") == 0 and
      abs(a.get("confidence", -1) - float(tags["GENRED_CONFIDENCE"][0])) < 1e-3 and
      a.get("model") == tags["GENRED_MODEL"][0] and a.get("previous_known") == 1 and
      a.get("previous_genre") == "",
      "a.flac row %r against tags %r" % (a, dict(tags)))
st = os.stat(os.path.join(lib, "a.flac"))
check(a.get("size") == st.st_size and a.get("mtime_ns") == st.st_mtime_ns,
      "the row has not the size/mtime after the write")
b = rows.get(os.path.join(real, "b.flac"), {})
check(b.get("previous_known") == 1 and b.get("previous_genre") == "Polka" and not b.get("artist"),
      "b.flac (hand-set Polka) row %r" % b)
check(mutagen.flac.FLAC(os.path.join(lib, "b.flac"))["GENRE"] == ["Polka"], "hand-set genre lost")
bad = rows.get(os.path.join(real, "broken.mp3"), {})
check(bad.get("status") == 1 and bad.get("error"), "broken file row %r" % bad)

r = g.run("status", "--json", "--all")
s = json.loads(r.stdout or b"{}")
check(s.get("total") == 4 and s.get("ok") == 3 and s.get("errors") == 1, "status %r" % s)

# a second run: the same rows, one more run each
g.run("tag", "--model", model, lib)
c = sqlite3.connect(db)
check(c.execute("SELECT count(*), min(runs), max(runs) FROM tracks").fetchone() == (4, 2, 2),
      "second run: rows %r" % (c.execute("SELECT count(*), min(runs), max(runs) FROM tracks")
                               .fetchone(),))
c.close()

other = os.path.join(tmp, "other.db")
g.run("tag", "--model", model, "--state", other, os.path.join(lib, "c.mp3"))
c = sqlite3.connect(other)
check(c.execute("SELECT count(*) FROM tracks").fetchone() == (1,), "--state FILE not used")
c.close()
finish()
