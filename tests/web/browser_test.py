"""The web page in a real browser (browser_test.mjs: Debian's chromium, headless, puppeteer-core
from tests/web/package-lock.json). A generated library is tagged by `genred tag`, `genred serve`
serves it; the browser records 5 s from a fake microphone playing a generated clip, uploads a
file through the file input, reads the library chart and corrects a genre. Checked here: both
clips got a genre of the model, the upload's is what `genred classify` says, the chart is
/api/stats, the corrected file's GENRE reads back with mutagen (no GENRED_CONFIDENCE), the page
logged no console error or failed request and fits a phone's width. Saves the screenshot as
OUT_DIR/web-page.png (docs/web-page.png is one of them, scaled down).
Usage: browser_test.py GENRED_BINARY SOURCE_DIR OUT_DIR"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import Genred, check, fail, finish, need_tools, skip, tmpdir  # noqa: E402
from webtest import Server, ffmpeg, make_library, music  # noqa: E402

binary, source, out_dir = sys.argv[1], sys.argv[2], sys.argv[3]
here = os.path.dirname(os.path.abspath(__file__))
chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not os.path.exists(chromium):
    skip("no chromium at %s (scripts/setup-deps.sh installs Debian's)" % chromium)
if not shutil.which("node"):
    skip("node is not installed (scripts/setup-deps.sh installs it)")
if not os.path.isdir(os.path.join(here, "node_modules", "puppeteer-core")):
    skip("tests/web/node_modules has no puppeteer-core: run `npm ci` in tests/web "
         "(scripts/setup-deps.sh does)")
try:
    import mutagen
except ImportError:
    skip("python3-mutagen is not installed")
need_tools("ffmpeg", "sox")
model = os.path.join(source, "models", "genred.safetensors")
if not os.path.exists(model):
    skip("no shipped model at %s" % model)

tmp = tmpdir()
lib = os.path.join(tmp, "lib")
tracks = make_library(lib, n_per_style=3)
db = os.path.join(tmp, "state.db")
conf = os.path.join(tmp, "genred.conf")
with open(conf, "w") as f:
    f.write('state = { path = "%s"; };\nhooks = { dir = "%s"; };\n' % (db, os.path.join(tmp, "none")))
g = Genred(binary, env={"XDG_CONFIG_HOME": os.path.join(tmp, "xdg")})
g.run("tag", "--quiet", "--config", conf, "--model", model, lib, timeout=300)

clip = os.path.join(tmp, "mic.wav")  # what the fake microphone plays
music(clip, seconds=8, rate=48000, channels=1, seed=1)
upload = os.path.join(tmp, "upload clip.ogg")
music(os.path.join(tmp, "up.wav"), seconds=20, seed=2)
ffmpeg("-i", os.path.join(tmp, "up.wav"), "-c:a", "libvorbis", upload)
cli = json.loads(g.run("classify", "--json", "--model", model, upload).stdout)

S = Server(binary, ["--config", conf, "--model", model], log=os.path.join(tmp, "serve.log"))
_, _, info = S.json("GET", "/api/info")
_, _, stats = S.json("GET", "/api/stats")  # the chart the page should draw
names = info["model"]["display_names"]
os.makedirs(out_dir, exist_ok=True)
new_genre = "Krautrock"
r = subprocess.run(["node", os.path.join(here, "browser_test.mjs"), S.url, clip, upload, new_genre,
                    out_dir], capture_output=True, timeout=240, cwd=here)
try:
    seen = json.loads(r.stdout.decode().strip().splitlines()[-1])
except (ValueError, IndexError):
    seen = {}
    fail("browser_test.mjs: exit %d\n%s\n%s" % (r.returncode, r.stdout.decode(errors="replace")[-2000:],
                                                r.stderr.decode(errors="replace")[-2000:]))
print(json.dumps(seen, indent=1)[:3000])
check(not seen.get("error"), "the browser run stopped: %s" % seen.get("error"))
check(seen.get("steps") == ["record", "upload", "correct"], "steps done: %r" % seen.get("steps"))
check(info["model"]["id"] in seen.get("model", ""), "model line %r" % seen.get("model"))
rec = seen.get("record", {})
check(rec.get("genre") in names and rec.get("bars") == len(names) and rec.get("windows", 0) >= 1,
      "recording: %r" % rec)
check(rec.get("loudest", 0) > 10, "the level meter never moved: %r" % rec.get("loudest"))
up = seen.get("upload", {})
check(up.get("genre") == cli["genre"] and up.get("meta", "").startswith("upload clip.ogg"),
      "upload: %r, genred classify says %s" % (up, cli["genre"]))
check(up.get("mel", [0])[0] > 400, "no mel picture: %r" % up.get("mel"))
check(seen.get("chart") == [[x["genre"], x["count"]] for x in stats["genres"]] and
      sum(n for _, n in seen.get("chart", [])) == len(tracks),
      "chart %r against /api/stats %r" % (seen.get("chart"), stats["genres"]))
c = seen.get("corrected", {})
check(c.get("after", "").startswith(new_genre) and "set by hand" in c.get("after", ""),
      "corrected row: %r" % c)
path = c.get("path", "")
if os.path.exists(path):
    f = mutagen.File(path)
    text = repr(f.tags)
    check(new_genre in text and "GENRED_CONFIDENCE" not in text.upper(),
          "%s after the correction: %s" % (path, text[:300]))
else:
    fail("corrected path %r is not a file" % path)
check(seen.get("problems") == [], "the page logged problems: %r" % seen.get("problems"))
check(seen.get("phone_overflow", 1) <= 0, "wider than a phone by %r px" % seen.get("phone_overflow"))
shot = os.path.join(out_dir, "web-page.png")
check(os.path.exists(shot) and os.path.getsize(shot) > 10000, "no screenshot at %s" % shot)
check(S.stop() == 0, "serve exit status")
rep = S.sanitizer_report()
if rep:
    fail("sanitizer report:\n" + rep)
finish()
