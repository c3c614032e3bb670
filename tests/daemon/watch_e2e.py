#!/usr/bin/python3
"""End-to-end: the real `genred watch` on a temp library. Files already there (start-up
catch-up), several formats copied in, one written slowly in pieces, a folder moved in with files
inside, N_MANY tiny files at once, and a file whose name holds spaces, quotes, $(...), a newline
and a non-UTF-8 byte. Every file must get GENRE + GENRED_* tags (mutagen), be recorded once
(state runs = 1), run the hooks once, and land in the m3u playlist of its genre. A restart does
no work again. Then SIGTERM: exit 0."""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402

N_MANY = int(os.environ.get("GENRED_E2E_MANY", "500"))

dt.need_tools()
L = dt.Lib("e2e", debounce_ms=300, max_tracks=32, max_wait_ms=300)
try:
    src = os.path.join(L.tmp, "src")
    os.makedirs(src)
    formats = ["mp3", "flac", "ogg", "opus", "m4a", "wav"]
    for i, ext in enumerate(formats):
        dt.tone(os.path.join(src, f"t{i}.{ext}"), 5.0, 220 + 110 * i)
    tiny = os.path.join(src, "tiny.mp3")
    dt.tone(tiny, 1.0, 330)
    expected = []

    # Already there before the daemon starts: found by the start-up scan.
    for ext in ("mp3", "flac"):
        p = os.path.join(L.lib, f"before.{ext}")
        shutil.copy(os.path.join(src, f"t{formats.index(ext)}.{ext}"), p)
        expected.append(p)
    with open(os.path.join(L.lib, "notes.txt"), "w") as f:
        f.write("not audio\n")

    L.start()
    dt.check("2 files queued" in L.log_text(), "start-up scan queued the 2 files already there")

    # Several formats copied in.
    for i, ext in enumerate(formats):
        p = os.path.join(L.lib, f"copied {i}.{ext}")
        shutil.copy(os.path.join(src, f"t{i}.{ext}"), p)
        expected.append(p)

    # A folder moved in with files inside (made outside the library, then renamed in).
    album = os.path.join(L.tmp, "Album X")
    os.makedirs(os.path.join(album, "CD1"))
    for i in range(3):
        shutil.copy(os.path.join(src, "t0.mp3"), os.path.join(album, "CD1", f"{i}.mp3"))
    os.rename(album, os.path.join(L.lib, "Album X"))
    expected += [os.path.join(L.lib, "Album X", "CD1", f"{i}.mp3") for i in range(3)]

    # A nasty name: spaces, quotes, $(...), a newline and a byte that is not UTF-8.
    nasty = os.fsdecode(b"we ird 'q' \"dq\" $(touch PWNED) \nline2 \xff.ogg")
    nasty = os.path.join(L.lib, nasty)
    shutil.copy(os.path.join(src, "t2.ogg"), nasty)
    expected.append(nasty)

    # Written slowly in pieces through one descriptor, with pauses longer than the debounce:
    # it must not be read before it is complete (a partial read would record an error or a
    # second run).
    slow = os.path.join(L.lib, "slow.flac")
    data = open(os.path.join(src, "t1.flac"), "rb").read()
    with open(slow, "wb") as f:
        step = len(data) // 5 + 1
        for k in range(0, len(data), step):
            f.write(data[k:k + step])
            f.flush()
            time.sleep(0.5)
    expected.append(slow)

    # Many files at once.
    many = os.path.join(L.lib, "many")
    os.makedirs(many)
    t_many = time.time()
    for i in range(N_MANY):
        p = os.path.join(many, f"{i:04d}.mp3")
        shutil.copy(tiny, p)
        expected.append(p)

    dt.check(L.wait_rows(expected, 240), "every file recorded in the state database")
    print(f"{len(expected)} files recorded; the {N_MANY} took {time.time() - t_many:.1f} s",
          flush=True)
    # Let the last hooks finish.
    t0 = time.time()
    while len(L.hook_runs()) < len(expected) and time.time() - t0 < 60:
        time.sleep(0.2)
    time.sleep(1.0)

    rows = L.rows()
    model_id = None
    for p in expected:
        r = rows.get(os.fsencode(p))
        if not dt.check(r is not None, f"row for {p!r}"):
            continue
        status, genre, runs, model = r
        model_id = model
        dt.check(status == 0, f"{p!r} recorded ok (status {status})")
        dt.check(runs == 1, f"{p!r} recorded once (runs {runs})")
        tags = dt.genred_tags(p)
        dt.check(tags is not None and tags[0] == genre and tags[1] and tags[2] == model,
                 f"{p!r} tags {tags} match the state ({genre}, {model})")
    dt.check(os.fsencode(os.path.join(L.lib, "notes.txt")) not in rows, "non-audio ignored")
    dt.check(len(rows) == len(expected), f"{len(rows)} rows for {len(expected)} files")

    runs = L.hook_runs()
    per_path = {}
    for ev, path in runs:
        per_path.setdefault(path, []).append(ev)
    for p in expected:
        evs = per_path.get(os.fsencode(p), [])
        dt.check(evs == ["tagged"], f"hooks ran once with tagged for {p!r}: {evs}")
    dt.check(not os.path.exists(os.path.join(L.lib, "PWNED")) and not os.path.exists("PWNED"),
             "no shell ever ran $(...) from a file name")

    # m3u playlists: every track (but the one with a newline in its name) in its genre's list,
    # once; nothing else.
    listed = {}
    for name in os.listdir(L.m3u):
        lines = open(os.path.join(L.m3u, name), "rb").read().split(b"\n")
        dt.check(lines[0] == b"#EXTM3U", f"{name} starts with #EXTM3U")
        for ln in lines[1:]:
            if ln:
                dt.check(ln not in listed, f"{ln!r} listed once")
                listed[ln] = name[:-4]
    for p in expected:
        b = os.fsencode(p)
        if b"\n" in b:
            dt.check(b not in listed, "name with a newline left out of the m3u")
            continue
        dt.check(listed.get(b) == rows[b][1], f"{p!r} in playlist {rows[b][1]}.m3u")
    dt.check(len(listed) == len(expected) - 1, f"{len(listed)} playlist entries")

    # Our own tag writes caused inotify events; none of them may have queued work again.
    dt.check("tagged" in L.log_text(), "log has results")
    rc = L.stop()
    dt.check(rc == 0, f"SIGTERM: exit status {rc}")

    # Restart: nothing needs work.
    L.start()
    time.sleep(1.5)
    rows2 = L.rows()
    dt.check(all(rows2[k][2] == 1 for k in rows2), "restart re-did no file")
    dt.check("ready: 0 files queued" in L.log_text(), "restart queued nothing")
    rc = L.stop()
    dt.check(rc == 0, f"second SIGTERM: exit status {rc}")

    # genred status and untag on one file.
    st = subprocess.run([dt.GENRED, "status", "--state", L.state, "--json"], capture_output=True)
    import json
    j = json.loads(st.stdout)
    dt.check(j["total"] == len(expected) and j["errors"] == 0, f"status counts {j['total']}")
    one = expected[0]
    u = subprocess.run([dt.GENRED, "untag", "--state", L.state, one], capture_output=True)
    dt.check(u.returncode == 0, f"untag: {u.stderr!r}")
    tags = dt.genred_tags(one)
    dt.check(tags is None or (not tags[0] and not tags[1]), f"untag removed genred's tags: {tags}")
    row = L.rows().get(os.fsencode(one))
    dt.check(row is not None and row[1] is None, f"untag did not mark the row untagged: {row}")
    st = subprocess.run([dt.GENRED, "status", "--state", L.state, "--json"], capture_output=True)
    dt.check(json.loads(st.stdout).get("untagged") == 1, "status does not count the untagged file")
finally:
    L.cleanup()
dt.done()
