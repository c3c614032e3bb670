"""`genred tag` fires the hooks of the config, like the daemon (DESIGN.md §8, issue 4).
Generates a small library (mp3, flac, ogg; one name with spaces, quotes, $(...) and a newline;
one broken file), a hooks.d executable and a hooks.commands entry that each record their argv
and GENRED_* environment into one file per run, then checks: every file seen exactly once by
each hook with argv[1] == GENRED_PATH, the right event (tagged, then unchanged on a second run,
error for the broken file), genre/confidence/model matching the tags mutagen reads back, and
no hook at all with --no-hooks or --dry-run.
Usage: cli_tag_hooks.py GENRED_BINARY SOURCE_DIR"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import Genred, check, ffmpeg, finish, fail, skip, tmpdir  # noqa: E402

try:
    import mutagen
except ImportError:
    skip("python3-mutagen is not installed")

binary, source = sys.argv[1], sys.argv[2]
tmp = tmpdir()
lib = os.path.join(tmp, "lib")
os.makedirs(lib)
model = os.path.join(tmp, "m.safetensors")
import subprocess  # noqa: E402
subprocess.run([sys.executable, os.path.join(source, "tests/nn/make_model.py"), "--arch",
                "seed-cnn", "--seed", "3", model], check=True, stdout=subprocess.DEVNULL)

weird = "a 'quoted' \"song\" $(touch pwned)\nnew line.mp3"
tracks = {"one.mp3": ["-b:a", "64k"], "two.flac": [], "three.ogg": ["-c:a", "libvorbis"],
          weird: ["-b:a", "64k"]}
for i, (name, extra) in enumerate(tracks.items()):
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=%d:duration=5" % (220 * (i + 1)), "-ar", "22050",
           *extra, os.path.join(lib, name))
broken = os.path.join(lib, "broken.mp3")
with open(broken, "wb") as f:
    f.write(b"this is not audio at all" * 100)

out = os.path.join(tmp, "hookruns")
os.makedirs(out)
recorder = os.path.join(tmp, "record.py")
with open(recorder, "w") as f:
    f.write("""#!/usr/bin/python3
import json, os, sys, tempfile
fd, _ = tempfile.mkstemp(dir=%r, suffix=".json")
env = {k: os.environ[k] for k in os.environ if k.startswith("GENRED_") and k != "GENRED_MODEL_PATH"}
with os.fdopen(fd, "w") as f:
    json.dump({"argv": [os.fsdecode(a) for a in sys.argv[1:]], "env": env,
               "tag": os.environ.get("HOOK_TAG", "dir")}, f)
""" % out)
os.chmod(recorder, 0o755)
hooks_d = os.path.join(tmp, "hooks.d")
os.makedirs(hooks_d)
os.symlink(recorder, os.path.join(hooks_d, "10-record"))
conf = os.path.join(tmp, "genred.conf")
with open(conf, "w") as f:
    f.write('hooks = { dir = "%s"; commands = [ "/usr/bin/env HOOK_TAG=cmd %s" ];'
            ' max_running = 2; timeout_s = 20.0; };\n' % (hooks_d, recorder))

g = Genred(binary, env={"XDG_CONFIG_HOME": os.path.join(tmp, "xdg"),
                        "XDG_STATE_HOME": os.path.join(tmp, "xdg-state")})
audio = sorted(os.path.join(lib, n) for n in tracks)


def runs():
    found = []
    for n in sorted(os.listdir(out)):
        with open(os.path.join(out, n)) as f:
            found.append(json.load(f))
        os.unlink(os.path.join(out, n))
    return found


def check_round(found, event, what):
    for tag in ("dir", "cmd"):
        mine = [r for r in found if r["tag"] == tag]
        paths = sorted(r["env"].get("GENRED_PATH", "") for r in mine)
        check(paths == sorted(audio + [broken]),
              "%s: %s hook saw %r, expected each file once" % (what, tag, paths))
        for r in mine:
            p = r["env"].get("GENRED_PATH", "")
            check(r["argv"] == [p], "%s: %s hook argv %r is not [GENRED_PATH]" % (what, tag, r["argv"]))
            ev = r["env"].get("GENRED_EVENT")
            if p == broken:
                check(ev == "error", "%s: broken file event %r, expected error" % (what, ev))
                continue
            check(ev == event, "%s: %s event %r, expected %s" % (what, p, ev, event))
            tags = mutagen.File(p, easy=False)
            fields = {}
            for k, v in (tags.tags.items() if tags and tags.tags else []):
                fields[str(k).upper()] = str(v[0] if isinstance(v, list) else v)
            text = " ".join("%s=%s" % kv for kv in fields.items())
            genre = r["env"].get("GENRED_GENRE", "")
            check(genre and genre in text, "%s: GENRED_GENRE %r not in the file's tags %s"
                  % (what, genre, text[:300]))
            conf_v = r["env"].get("GENRED_CONFIDENCE", "")
            check(conf_v and conf_v in text, "%s: GENRED_CONFIDENCE %r not in the tags" % (what, conf_v))
            mid = r["env"].get("GENRED_MODEL", "")
            check(len(mid) == 12 and mid in text, "%s: GENRED_MODEL %r not in the tags" % (what, mid))
            top = r["env"].get("GENRED_TOP", "")
            check(top.count(":") == 3 and top.count(",") == 2,
                  "%s: GENRED_TOP %r is not three label:prob pairs" % (what, top))
            check(r["env"].get("GENRED_PREVIOUS_GENRE", None) == "",
                  "%s: GENRED_PREVIOUS_GENRE %r, the files had no genre"
                  % (what, r["env"].get("GENRED_PREVIOUS_GENRE")))


r = g.run("tag", "--config", conf, "--model", model, "--dry-run", lib)
check(runs() == [], "--dry-run fired hooks")
r = g.run("tag", "--config", conf, "--model", model, "--no-hooks", "--dry-run", lib)
check(runs() == [], "--no-hooks fired hooks")

r = g.run("tag", "--config", conf, "--model", model, lib)
check(r.returncode == 1, "first run: exit %d, expected 1 (one broken file)" % r.returncode)
check(not os.path.exists(os.path.join(lib, "pwned")) and not os.path.exists("pwned"),
      "a shell ran $(touch pwned)")
check_round(runs(), "tagged", "first run")

r = g.run("tag", "--config", conf, "--model", model, lib)
check_round(runs(), "unchanged", "second run")

r = g.run("tag", "--config", conf, "--model", model, "--no-hooks", "--force", lib)
check(runs() == [], "--no-hooks fired hooks")

# A failing hook is reported but changes neither the tags nor the exit status of the tags.
with open(os.path.join(hooks_d, "20-fail"), "w") as f:
    f.write("#!/bin/sh\nexit 3\n")
os.chmod(os.path.join(hooks_d, "20-fail"), 0o755)
r = g.run("tag", "--config", conf, "--model", model, *audio)
check(r.returncode == 0, "a failing hook changed the exit status to %d" % r.returncode)
check(b"hooks: 4 of 12 failed" in r.stderr,
      "no summary of the failing hook runs: %s" % r.stderr.decode(errors="replace")[-400:])
found = runs()
check(len(found) == 8, "with a failing hook: %d recorder runs, expected 8" % len(found))

bad = os.path.join(tmp, "bad.conf")
with open(bad, "w") as f:
    f.write("hooks = { no_such_key = 1; };\n")
r = g.run("tag", "--config", bad, "--model", model, lib)
check(r.returncode == 2 and b"bad.conf:1" in r.stderr,
      "a bad config: exit %d, %s" % (r.returncode, r.stderr.decode(errors="replace")[-300:]))
finish()
