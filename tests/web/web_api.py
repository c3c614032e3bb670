"""`genred serve` over real HTTP: every route, every bad input of issue 18, the token and CSRF
rules, 413, path tricks, concurrent uploads, corrections read back with mutagen and undone by
`genred untag`, the hooks of a correction, a model file replaced under a running server.
A library is generated (sox/ffmpeg) and tagged with `genred tag` into a scratch state database;
the shipped model classifies. After every bad request the server must still answer, and it must
stop cleanly on SIGTERM with no sanitizer report.
Usage: web_api.py GENRED_BINARY SOURCE_DIR"""
import json
import os
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import Genred, check, fail, finish, need_tools, skip, tmpdir  # noqa: E402
from webtest import Server, ffmpeg, make_library, multipart, music  # noqa: E402

try:
    import mutagen
    import mutagen.flac
except ImportError:
    skip("python3-mutagen is not installed")
need_tools("ffmpeg", "sox")

binary, source = sys.argv[1], sys.argv[2]
model = os.path.join(source, "models", "genred.safetensors")
if not os.path.exists(model):
    skip("no shipped model at %s" % model)
tmp = tmpdir()
lib = os.path.join(tmp, "lib")
tracks = make_library(lib)
db = os.path.join(tmp, "state.db")
hooks_d = os.path.join(tmp, "hooks.d")
hook_out = os.path.join(tmp, "hook-runs")
os.makedirs(hooks_d)
os.makedirs(hook_out)
with open(os.path.join(hooks_d, "10-record"), "w") as f:
    f.write("#!/bin/sh\nenv | grep '^GENRED_' | sort > \"%s/$(date +%%s%%N)\"\n" % hook_out)
os.chmod(os.path.join(hooks_d, "10-record"), 0o755)
conf = os.path.join(tmp, "genred.conf")
with open(conf, "w") as f:
    f.write('hooks = { dir = "%s"; };\nstate = { path = "%s"; };\n' % (hooks_d, db))

g = Genred(binary, env={"XDG_CONFIG_HOME": os.path.join(tmp, "xdg")})
r = g.run("tag", "--quiet", "--config", conf, "--no-hooks", "--model", model, lib, timeout=300)
check(r.returncode == 1, "genred tag of the library: exit %d (want 1: one broken file): %s"
      % (r.returncode, r.stderr.decode(errors="replace")[-300:]))

servers = []


def start(*args, env=None, name="serve"):
    s = Server(binary, ["--config", conf, "--model", model] + list(args), env=env,
               log=os.path.join(tmp, name + ".log"))
    servers.append(s)
    return s


def alive(s, what):
    st, _, j = s.json("GET", "/api/info", timeout=30)
    check(s.alive() and st == 200 and j.get("model"), "server not answering after %s" % what)


def expect(st, want, j, what, contains=None):
    ok = st == want and isinstance(j, dict) and (want < 400 or isinstance(j.get("error"), str))
    if contains and ok:
        ok = contains in json.dumps(j)
    return check(ok, "%s: status %s %r, want %d%s" % (what, st, j, want,
                                                      " with %r" % contains if contains else ""))


S = start()

# ---- the page and its files ----
st, h, page = S.request("GET", "/")
html = page.decode()
check(st == 200 and h.get("content-type", "").startswith("text/html"), "GET /: %s %s" % (st, h))
csp = h.get("content-security-policy", "")
check("script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp,
      "CSP %r" % csp)
check(h.get("x-content-type-options") == "nosniff", "no nosniff")
import re  # noqa: E402
tok = re.search(r'name="csrf-token" content="([0-9a-f]{64})"', html)
check(tok, "no CSRF token in the page")
check(not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html and " on" + "click" not in html,
      "inline script or style in the page")
check("http://" not in html.replace("http://www.w3.org", "") and "https://" not in html,
      "the page names an external resource")
_, _, page2 = S.request("GET", "/")
tok2 = re.search(rb'content="([0-9a-f]{64})"', page2)
check(tok and tok2 and tok.group(1).encode() != tok2.group(1), "the CSRF token is not per page")
for path, ctype in (("/app.js", "text/javascript"), ("/app.css", "text/css"),
                    ("/favicon.svg", "image/svg+xml")):
    st, h, body = S.request("GET", path)
    check(st == 200 and h.get("content-type", "").startswith(ctype) and len(body) > 100,
          "GET %s: %s %s" % (path, st, h.get("content-type")))
    with open(os.path.join(source, "web", path[1:]), "rb") as f:
        check(body == f.read(), "%s differs from web/%s" % (path, path[1:]))
st, h, _ = S.request("HEAD", "/api/info")
check(st == 200, "HEAD /api/info: %s" % st)

# ---- /api/info: the model's own settings ----
st, _, info = S.json("GET", "/api/info")
with open(model, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n))["__metadata__"]
m = info.get("model", {})
check(st == 200 and m.get("labels") == meta["labels"].split(",") and
      m.get("sample_rate") == int(meta["sample_rate"]) and m.get("n_mels") == int(meta["n_mels"]) and
      len(m.get("id", "")) == 12 and info.get("library") is True and info.get("max_upload_mb") == 50,
      "/api/info %r" % info)
labels = m.get("labels", [])

# ---- classify: the object `genred classify --json` prints ----
clip = os.path.join(tmp, "clip.mp3")
music(os.path.join(tmp, "clip.wav"), seconds=30, seed=4)
ffmpeg("-i", os.path.join(tmp, "clip.wav"), "-b:a", "128k", clip)
cli = json.loads(g.run("classify", "--json", "--model", model, clip).stdout)
data = open(clip, "rb").read()
st, h, j = S.post("/api/classify?name=clip.mp3", data, "audio/mpeg")
check(st == 200 and h.get("content-type") == "application/json", "classify: %s %r" % (st, j))
check(j == dict(cli, path="clip.mp3"), "classify answer differs from classify --json:\n%r\n%r"
      % (j, cli))
check("classify;dur=" in h.get("server-timing", ""), "no Server-Timing: %r" % h)
body, ctype = multipart("audio", "my song.mp3", data, "audio/mpeg", extra=[("other", "x")])
st, h, j = S.post("/api/classify?mel=1", body, ctype)
check(st == 200 and j == dict(cli, path="my song.mp3"), "multipart classify: %s %r" % (st, j))
mel = h.get("x-genred-mel", "")
check(re.fullmatch(r"/api/mel/[0-9a-f]{32}", mel), "no mel picture: %r" % h)
st, h, png = S.request("GET", mel)
check(st == 200 and png[:8] == b"\x89PNG\r\n\x1a\n" and h.get("content-type") == "image/png",
      "mel picture: %s %r" % (st, png[:16]))
st, _, j = S.json("GET", "/api/mel/" + "0" * 32)
expect(st, 404, j, "unknown mel picture")

# a short recording as a browser makes it: webm/opus without a duration, as the raw body
rec = os.path.join(tmp, "rec.webm")
music(os.path.join(tmp, "rec.wav"), seconds=5, seed=2)
ffmpeg("-i", os.path.join(tmp, "rec.wav"), "-c:a", "libopus", "-live", "1", rec)
st, _, j = S.post("/api/classify?name=recording.webm", open(rec, "rb").read(), "audio/webm")
check(st == 200 and j.get("label") in labels and len(j.get("windows", [])) >= 1,
      "recording: %s %r" % (st, j))

# ---- bad uploads: a clear error, and the server goes on ----
rng = __import__("random").Random(5)
video = os.path.join(tmp, "video.mkv")
ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:d=2", "-c:v", "ffv1", video)
video_audio = os.path.join(tmp, "video_audio.mp4")
ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:d=8", "-i", os.path.join(tmp, "clip.wav"), "-t", "8",
       "-c:v", "mpeg4", "-c:a", "aac", video_audio)
# two hours of 1 kHz 8-bit mono (7.2 MB): a wav that says how long it is, and one that does not
import numpy as np  # noqa: E402
import wave  # noqa: E402
two_h = os.path.join(tmp, "2h.wav")
with wave.open(two_h, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(1)
    w.setframerate(1000)
    t = np.arange(7200 * 1000)
    w.writeframes((128 + 60 * np.sin(2 * np.pi * 97 * t / 1000)).astype(np.uint8).tobytes())
two_h_data = open(two_h, "rb").read()
stream = bytearray(two_h_data)
stream[4:8] = struct.pack("<I", 0xFFFFFFFF)
i = stream.find(b"data")
stream[i + 4:i + 8] = struct.pack("<I", 0xFFFFFFFF)
bad = [
    ("empty", b"", 400, "empty upload"),
    ("random bytes", bytes(rng.getrandbits(8) for _ in range(200000)), 422, "not a recognised audio format"),
    ("text", b"hello, this is not audio\n" * 100, 422, "not a recognised audio format"),
    ("truncated", data[:300], 422, None),
    ("video only", open(video, "rb").read(), 422, "no audio stream"),
    ("2 hours without a duration", bytes(stream), 422, "too long to decode without seeking"),
]
for what, body, want, msg in bad:
    st, _, j = S.post("/api/classify", body)
    expect(st, want, j, what, msg)
    alive(S, what)
body, ctype = multipart("wrong_field", "x.mp3", data)
st, _, j = S.post("/api/classify", body, ctype)
expect(st, 400, j, "multipart without an audio field", "audio")
st, _, j = S.post("/api/classify", b"--x\r\nbroken", "multipart/form-data")
check(st == 400, "multipart without a boundary: %s %r" % (st, j))
t0 = time.time()
st, _, j = S.post("/api/classify", two_h_data)
check(st == 200 and j.get("label") in labels, "2 hours with a duration: %s %r" % (st, j))
print("2-hour wav classified in %.2f s" % (time.time() - t0))
st, _, j = S.post("/api/classify", open(video_audio, "rb").read(), "video/mp4")
check(st == 200 and j.get("label") in labels, "video with audio: %s %r" % (st, j))

# 413 before the body is read: headers announce 60 MB, none of it is sent
sock = socket.create_connection((S.host, S.port), timeout=10)
sock.sendall(("POST /api/classify HTTP/1.1\r\nHost: %s:%d\r\nX-CSRF-Token: %s\r\n"
              "Content-Type: audio/mpeg\r\nContent-Length: %d\r\n\r\n"
              % (S.host, S.port, S.csrf(), 60 << 20)).encode())
t0 = time.time()
resp = sock.recv(4096)
sock.close()
check(resp.startswith(b"HTTP/1.1 413") and b"web.max_upload_mb" in resp and time.time() - t0 < 5,
      "oversize upload: %r" % resp[:200])
alive(S, "an oversize upload")

# a slow client: half a body, then silence; others are served meanwhile
slow = socket.create_connection((S.host, S.port), timeout=30)
slow.sendall(("POST /api/classify HTTP/1.1\r\nHost: %s:%d\r\nX-CSRF-Token: %s\r\n"
              "Content-Length: %d\r\n\r\n" % (S.host, S.port, S.csrf(), len(data))).encode() +
             data[:len(data) // 2])
stalled = socket.create_connection((S.host, S.port), timeout=30)
stalled.sendall(b"GET /api/in")  # half a request line
t0 = time.time()
alive(S, "a slow client")
check(time.time() - t0 < 5, "a slow client held up another request")
time.sleep(1)
slow.sendall(data[len(data) // 2:])
resp = b""
while b"\r\n\r\n" not in resp:
    chunk = slow.recv(65536)
    if not chunk:
        break
    resp += chunk
check(resp.startswith(b"HTTP/1.1 200"), "slow client's upload: %r" % resp[:100])
slow.close()
stalled.close()

# garbage on the socket
for junk in (b"\x00\xff" * 3000 + b"\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\r\n\r\n\r\n",
             b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
             b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n"):
    out = S.raw(junk, timeout=5)
    check(not out or out.startswith(b"HTTP/1.") and b" 200 " not in out[:20],
          "junk %r answered %r" % (junk[:20], out[:80]))
    alive(S, "junk %r" % junk[:20])

# ---- CSRF, Origin, Host ----
st, _, j = S.json("POST", "/api/classify", data, {"Content-Type": "audio/mpeg"})
expect(st, 403, j, "POST without a CSRF token", "CSRF")
forged = S.csrf()[:32] + ("0" if S.csrf()[32] != "0" else "1") + S.csrf()[33:]
st, _, j = S.json("POST", "/api/classify", data, {"X-CSRF-Token": forged})
expect(st, 403, j, "a forged CSRF token", "CSRF")
st, _, j = S.post("/api/classify", data, headers={"Origin": "http://evil.example"})
expect(st, 403, j, "a cross-origin POST", "cross-origin")
st, _, j = S.post("/api/classify", data, headers={"Origin": "http://%s:%d" % (S.host, S.port)})
check(st == 200, "a same-origin POST: %s %r" % (st, j))
for host in ("evil.example", "evil.example:%d" % S.port, "127.0.0.1.evil.example", "10.1.2.3"):
    st, _, j = S.json("GET", "/api/tracks", headers={"Host": host})
    expect(st, 403, j, "Host: %s (DNS rebinding)" % host, "Host")
for host in ("localhost:%d" % S.port, "127.0.0.1:%d" % S.port, "[::1]:%d" % S.port):
    st, _, j = S.json("GET", "/api/info", headers={"Host": host})
    check(st == 200, "Host: %s refused: %s" % (host, st))

# ---- methods and path tricks: nothing from the filesystem, ever ----
st, h, j = S.json("GET", "/api/classify")
expect(st, 405, j, "GET /api/classify")
check(h.get("allow") == "POST", "405 without Allow: %r" % h)
st, h, j = S.json("DELETE", "/")
expect(st, 405, j, "DELETE /")
secret = os.path.join(tmp, "secret.txt")
with open(secret, "w") as f:
    f.write("TOP SECRET CONTENT")
tricks = ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
          "/etc/passwd", "/api/tracks/../../../etc/passwd", "/api/tracks/%2e%2e%2f%2e%2e",
          "/app.js/../../../etc/passwd", "/api/mel/../../../../etc/passwd", "/..%2f..%2fetc%2fpasswd",
          "/api/tracks/1/../../../etc/passwd", "/index.html%00.js", "/web/app.js",
          "/api/tracks/-1", "/api/tracks/1e3", "/api/tracks/99999999999999999999",
          secret, "/" + os.path.relpath(secret, "/"), "/api/classify/../../etc/passwd"]
for t in tricks:
    out = S.raw(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                 % (t, S.port)).encode())
    status_line = out.split(b"\r\n", 1)[0]
    check(status_line in (b"HTTP/1.1 404 Not Found", b"HTTP/1.1 400 Bad Request") and
          b"root:" not in out and b"TOP SECRET" not in out,
          "%s: %r" % (t, out[:120]))
out = S.raw(("GET http://127.0.0.1:%d/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
             % (S.port, S.port)).encode())
check(b"root:" not in out and b" 200 " not in out.split(b"\r\n")[0], "absolute URI: %r" % out[:100])

# ---- the library ----
st, _, stats = S.json("GET", "/api/stats")
check(st == 200 and stats.get("total") == len(tracks) + 1 and stats.get("ok") == len(tracks) and
      stats.get("errors") == 1 and sum(x["count"] for x in stats.get("genres", [])) == len(tracks),
      "/api/stats %r" % stats)
seen = []
after = None
for _ in range(20):
    q = "/api/tracks?limit=2&total=1" + ("&after=" + after if after else "")
    st, _, page = S.json("GET", q)
    check(st == 200, "%s: %s %r" % (q, st, page))
    seen += page.get("tracks", [])
    after = page.get("next")
    if not after:
        break
confs = [t["confidence"] for t in seen]
check(len(seen) == len(tracks) and confs == sorted(confs) and len({t["id"] for t in seen}) == len(seen),
      "paging least sure first: %r" % [(t["id"], t["confidence"]) for t in seen])
byname = {os.path.basename(t["path"]): t for t in seen}
first = byname.get(os.path.basename(tracks[0]), {})
check(first.get("artist") == "The Sine Waves" and first.get("status") == "ok",
      "artist of the first track: %r" % first)
st, _, j = S.json("GET", "/api/tracks?q=sine%20WAVES&filter=all")
check([t["path"] for t in j.get("tracks", [])] == [os.path.realpath(tracks[0])],
      "search by artist: %r" % j)
st, _, j = S.json("GET", "/api/tracks?q=Track%2003")
check(len(j.get("tracks", [])) == 1, "search by path: %r" % j)
g0 = stats["genres"][0]["genre"]
st, _, j = S.json("GET", "/api/tracks?genre=" + g0.replace(" ", "%20"))
check(len(j.get("tracks", [])) == stats["genres"][0]["count"] and
      all(t["genre"] == g0 for t in j["tracks"]), "genre filter: %r" % j)
st, _, j = S.json("GET", "/api/tracks?filter=error")
check([os.path.basename(t["path"]) for t in j.get("tracks", [])] == ["broken.mp3"] and
      j["tracks"][0]["error"], "errors: %r" % j)
st, _, j = S.json("GET", "/api/tracks?sort=recent&filter=all&limit=100")
times = [t["time"] for t in j.get("tracks", [])]
check(len(times) == len(tracks) + 1 and times == sorted(times, reverse=True), "recent: %r" % times)
for q, what in (("filter=bogus", "filter"), ("sort=x", "sort"), ("limit=0", "limit"),
                ("limit=9999", "limit"), ("after=x", "after"), ("after=0.5:abc", "after"),
                ("q=" + "x" * 300, "q")):
    st, _, j = S.json("GET", "/api/tracks?" + q)
    expect(st, 400, j, "tracks?%s" % q[:30], what)
st, _, detail = S.json("GET", "/api/tracks/%d" % first.get("id", 0))
check(st == 200 and set(detail.get("probabilities", {})) == set(labels) and
      detail.get("previous_genre") == "Polka", "track detail: %r" % detail)
st, _, j = S.json("GET", "/api/tracks/999999")
expect(st, 404, j, "an unknown track", "no track")

# ---- corrections ----
target = byname.get(os.path.basename(tracks[1]), {})  # tagged by genred, no genre before
new = next(lab for lab in ("Jazz", "Blues", "Rock") if lab != target.get("genre"))
st, _, j = S.post("/api/tracks/%d/genre" % target["id"], json.dumps({"genre": "  %s " % new}),
                  "application/json")
check(st == 200 and j.get("genre") == new and j.get("corrected") is True and
      j.get("model_genre") == target["genre"], "correction: %s %r" % (st, j))
tags = mutagen.File(tracks[1])
text = " ".join("%s=%s" % (k, v) for k, v in (tags.tags.items() if tags.tags else []))
check(re.search(r"TCON=%s\b|GENRE=%s\b|genre=\[?'?%s" % (new, new, new), text) and
      "GENRED_CONFIDENCE" not in text.upper(), "the file after the correction: %s" % text[:400])
time.sleep(0.5)
runs = [open(os.path.join(hook_out, n)).read() for n in sorted(os.listdir(hook_out))]
check(len(runs) == 1 and "GENRED_EVENT=corrected" in runs[0] and "GENRED_GENRE=%s\n" % new in runs[0] and
      "GENRED_PREVIOUS_GENRE=%s\n" % target["genre"] in runs[0] and
      "GENRED_PATH=%s\n" % os.path.realpath(tracks[1]) in runs[0] and "GENRED_CONFIDENCE=\n" in runs[0],
      "hooks of the correction: %r" % runs)
st, _, j = S.json("GET", "/api/tracks?filter=corrected")
check([t["id"] for t in j.get("tracks", [])] == [target["id"]], "corrected filter: %r" % j)
st, _, stats2 = S.json("GET", "/api/stats")
check(any(x["genre"] == new for x in stats2.get("genres", [])), "stats after the correction")
# the Polka track: hand-set before genred; corrected, then untagged: Polka again
polka = first
st, _, j = S.post("/api/tracks/%d/genre" % polka["id"], json.dumps({"genre": "Ska"}), "application/json")
check(st == 200 and j.get("genre") == "Ska", "correcting the Polka track: %r" % j)
check(mutagen.flac.FLAC(tracks[0]).get("GENRE") == ["Ska"], "Ska not written")
for what, body, want in (("not JSON", b"genre=Jazz", 400), ("no genre", b"{}", 400),
                         ("an empty genre", b'{"genre": "  "}', 400),
                         ("a number", b'{"genre": 5}', 400),
                         ("a control character", b'{"genre": "Ja\\u0007zz"}', 400),
                         ("a NUL", b'{"genre": "Ja\\u0000zz"}', 400),
                         ("a long genre", json.dumps({"genre": "x" * 300}).encode(), 400),
                         ("a large body", json.dumps({"genre": "x", "pad": "y" * 5000}).encode(), 413)):
    st, _, j = S.post("/api/tracks/%d/genre" % target["id"], body, "application/json")
    expect(st, want, j, "correction with %s" % what)
st, _, j = S.post("/api/tracks/999999/genre", b'{"genre": "Jazz"}', "application/json")
expect(st, 404, j, "correcting an unknown track")
gone = byname.get(os.path.basename(tracks[2]), {})
moved = tracks[2] + ".moved"
os.rename(tracks[2], moved)
st, _, j = S.post("/api/tracks/%d/genre" % gone["id"], b'{"genre": "Jazz"}', "application/json")
check(st == 422 and "error" in j, "correcting a vanished file: %s %r" % (st, j))
os.rename(moved, tracks[2])
st, _, j = S.json("POST", "/api/tracks/%d/genre" % target["id"], b'{"genre": "Pop"}',
                  {"Content-Type": "application/json"})
expect(st, 403, j, "a correction without a CSRF token", "CSRF")
check(mutagen.File(tracks[1]) and new in str(mutagen.File(tracks[1]).tags), "a refused correction wrote")
# untag: genred's doing is undone, the genre from before genred comes back
r = g.run("untag", "--config", conf, tracks[0], tracks[1])
check(r.returncode == 0, "untag: %s" % r.stderr.decode(errors="replace"))
check(mutagen.flac.FLAC(tracks[0]).get("GENRE") == ["Polka"], "untag did not restore Polka: %r"
      % mutagen.flac.FLAC(tracks[0]).get("GENRE"))
t1 = mutagen.File(tracks[1])
check(new not in str(t1.tags), "untag left the corrected genre: %r" % t1.tags)

# ---- concurrent uploads ----
short = os.path.join(tmp, "short.wav")
music(short, seconds=6, seed=1)
sdata = open(short, "rb").read()
results = []


def upload(server):
    try:
        results.append(server.post("/api/classify", sdata, "audio/wav", timeout=120)[:2])
    except Exception as e:  # noqa: BLE001
        results.append((0, {"exception": repr(e)}))


threads = [threading.Thread(target=upload, args=(S,)) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
codes = sorted(st for st, _ in results)
check(all(c in (200, 503) for c in codes) and codes.count(200) >= 2 and
      all(h.get("retry-after") for st, h in results if st == 503),
      "6 concurrent uploads: %r" % codes)
print("6 concurrent uploads (web.max_jobs 2):", codes)
# held classifications (GENRED_WEB_DEBUG_DELAY_MS): exactly max_jobs run, the rest get 503
H = start("--max-jobs", "2", env={"GENRED_WEB_DEBUG_DELAY_MS": "2000"}, name="held")
results = []
threads = [threading.Thread(target=upload, args=(H,)) for _ in range(5)]
for t in threads:
    t.start()
    time.sleep(0.1)
for t in threads:
    t.join()
codes = sorted(st for st, _ in results)
check(codes == [200, 200, 503, 503, 503] and
      all(h.get("retry-after") == "2" for st, h in results if st == 503),
      "5 uploads with 2 held slots: %r" % results)
alive(H, "busy uploads")
check(H.stop() == 0, "held server exit status")

# ---- a model replaced under the running server ----
mcopy = os.path.join(tmp, "model.safetensors")
shutil.copy(model, mcopy)
M = Server(binary, ["--config", conf, "--model", mcopy, "--max-upload-mb", "1"],
           log=os.path.join(tmp, "reload.log"))
servers.append(M)
st, _, j = M.post("/api/classify", data, "audio/mpeg")
other = os.path.join(source, "models", "genred-train-only.safetensors")
if os.path.exists(other):
    shutil.copy(other, mcopy + ".new")
    os.replace(mcopy + ".new", mcopy)
    st, _, j2 = M.post("/api/classify", data, "audio/mpeg")
    check(st == 200 and j2.get("model") != j.get("model") and len(j2.get("model", "")) == 12,
          "model not reloaded: %r -> %r" % (j.get("model"), j2.get("model")))
# a chunked upload (no Content-Length): refused before its body, 411
sock = socket.create_connection((M.host, M.port), timeout=10)
sock.sendall(("POST /api/classify HTTP/1.1\r\nHost: %s:%d\r\nX-CSRF-Token: %s\r\n"
              "Transfer-Encoding: chunked\r\n\r\n" % (M.host, M.port, M.csrf())).encode())
resp = sock.recv(4096)
sock.close()
check(resp.startswith(b"HTTP/1.1 411") and b"Content-Length" in resp, "chunked upload: %r" % resp[:200])
# over --max-upload-mb 1 by its Content-Length: 413, body unread
st, _, j = M.json("POST", "/api/classify", b"x" * 100,
                  {"X-CSRF-Token": M.csrf(), "Content-Length": str((1 << 20) + 1)})
expect(st, 413, j, "an upload over --max-upload-mb 1", "at most 1 MB")
alive(M, "a chunked upload")
check(M.stop() == 0, "reload server exit status")

# ---- tokens ----
tokfile = os.path.join(tmp, "token")
with open(tokfile, "w") as f:
    f.write("correct-horse-battery-staple\n")
T = start("--token-file", tokfile, name="token")
st, h, j = T.json("GET", "/api/info")
expect(st, 401, j, "no token", "token")
check("bearer" in h.get("www-authenticate", "").lower(), "401 without WWW-Authenticate: %r" % h)
st, _, j = T.json("GET", "/api/info", headers={"Authorization": "Bearer correct-horse-battery-stapl"})
expect(st, 401, j, "a wrong token")
st, _, j = T.json("GET", "/api/info", headers={"Authorization": "Bearer correct-horse-battery-staple"})
check(st == 200, "the right token: %s %r" % (st, j))
st, _, j = T.json("GET", "/api/tracks", headers={"Host": "music.example:80",
                                                 "Authorization": "Bearer correct-horse-battery-staple"})
check(st == 200, "with a token any Host is served (a proxy's name): %s" % st)
st, h, _ = T.request("GET", "/?token=correct-horse-battery-staple")
cookie = h.get("set-cookie", "")
check(st == 303 and h.get("location") == "/" and "HttpOnly" in cookie and "SameSite=Strict" in cookie,
      "/?token=: %s %r" % (st, h))
st, _, page = T.request("GET", "/", headers={"Cookie": cookie.split(";")[0]})
check(st == 200 and b"csrf-token" in page, "the page with the token cookie: %s" % st)
st, _, j = T.json("GET", "/api/info?token=correct-horse-battery-staple")
expect(st, 401, j, "the token in an API URL")
st, _, j = T.json("POST", "/api/classify", b"x" * 100,
                  {"Authorization": "Bearer correct-horse-battery-staple"})
expect(st, 403, j, "a token but no CSRF token", "CSRF")
check(T.stop() == 0, "token server exit status")
with open(tokfile, "w") as f:
    f.write("short\n")
r = g.run("serve", "--config", conf, "--model", model, "--listen", "127.0.0.1:0", "--token-file",
          tokfile, timeout=30)
check(r.returncode == 1 and b"at least 16" in r.stderr, "a short token: %r" % r.stderr)
r = g.run("serve", "--config", conf, "--model", model, "--listen", "0.0.0.0:0", timeout=30)
check(r.returncode == 1 and b"not a loopback address" in r.stderr and b"web.token" in r.stderr,
      "0.0.0.0 without a token: %d %r" % (r.returncode, r.stderr))
for bad_listen in ("nonsense", "127.0.0.1:99999", "127.0.0.1:x", "[::1:80"):
    r = g.run("serve", "--config", conf, "--model", model, "--listen", bad_listen, timeout=30)
    check(r.returncode == 1 and b"web.listen" in r.stderr, "--listen %s: %d %r"
          % (bad_listen, r.returncode, r.stderr))
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
r = g.run("serve", "--config", conf, "--model", model, "--listen", "127.0.0.1:%d" % busy.getsockname()[1],
          timeout=30)
check(r.returncode == 1 and b"in use" in r.stderr, "a port in use: %r" % r.stderr)
busy.close()
r = g.run("serve", "--config", conf, "--model", os.path.join(tmp, "nope.safetensors"), timeout=30)
check(r.returncode == 1 and b"nope.safetensors" in r.stderr, "a missing model: %r" % r.stderr)
r = g.run("serve", "--bogus")
check(r.returncode == 2, "an unknown option: %d" % r.returncode)
r = g.run("serve", "--max-jobs", "0")
check(r.returncode == 2 and b"--max-jobs" in r.stderr, "--max-jobs 0: %r" % r.stderr)

# ---- no library yet: the page still classifies ----
N = start("--state", os.path.join(tmp, "none", "state.db"), name="nolib")
st, _, j = N.json("GET", "/api/info")
check(st == 200 and j.get("library") is False, "info without a library: %r" % j)
st, _, j = N.json("GET", "/api/stats")
expect(st, 404, j, "stats without a library", "no state database")
check(not os.path.exists(os.path.join(tmp, "none")), "serve created a state database")
check(N.stop() == 0, "nolib exit status")

alive(S, "everything")
code = S.stop()
check(code == 0, "serve exit status after SIGTERM: %r" % code)
for s in servers:
    s.stop()
    rep = s.sanitizer_report()
    if rep:
        fail("sanitizer report from %s:\n%s" % (s.log_path, rep))
finish()
