#!/usr/bin/python3
"""The contrib MPD hook against a real MPD: mpd is started on a loopback port with a temp config
whose music_directory is the library; `genred watch` runs contrib/hooks/mpd-playlist for each
result; `mpc playlist GENRE` must then list each tagged track once, in its genre's playlist.
Skips (77) when mpd or mpc is not installed."""
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import daemontest as dt  # noqa: E402

dt.need_tools()
MPD = shutil.which("mpd") or ("/usr/bin/mpd" if os.path.exists("/usr/bin/mpd") else None)
if not MPD or not shutil.which("mpc"):
    dt.skip("mpd or mpc not installed (apt-get install mpd mpc)")

L = dt.Lib("mpd", debounce_ms=200, max_tracks=8, max_wait_ms=200, hooks=False)
mpd = None
try:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    mdir = os.path.join(L.tmp, "mpd")
    os.makedirs(os.path.join(mdir, "playlists"))
    conf = os.path.join(mdir, "mpd.conf")
    with open(conf, "w") as f:
        f.write(f'music_directory "{L.lib}"\nplaylist_directory "{mdir}/playlists"\n'
                f'db_file "{mdir}/db"\nlog_file "{mdir}/log"\nbind_to_address "127.0.0.1"\n'
                f'port "{port}"\nauto_update "no"\n'
                'audio_output {\n type "null"\n name "null"\n}\n')
    mpd = subprocess.Popen([MPD, "--no-daemon", conf], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    env = dict(L.env(), MPD_HOST="127.0.0.1", MPD_PORT=str(port), GENRED_MPD_MUSIC_DIR=L.lib)
    t0 = time.time()
    while subprocess.run(["mpc", "-q", "status"], env=env, capture_output=True).returncode != 0:
        if time.time() - t0 > 20 or mpd.poll() is not None:
            dt.skip("mpd did not start here (see its log)")
        time.sleep(0.2)
    L.base_conf = L.base_conf.replace(
        "commands = (  )",
        f'commands = ( [ "{os.path.join(dt.SRC, "contrib/hooks/mpd-playlist")}" ] )')
    L.write_conf()
    L.start(env=env)
    files = []
    os.makedirs(os.path.join(L.lib, "Artist", "Album"))
    for i, ext in enumerate(["mp3", "flac", "ogg"]):
        p = os.path.join(L.lib, "Artist", "Album", f"{i} song.{ext}")
        dt.tone(os.path.join(L.tmp, f"x.{ext}"), 5.0, 300 + 200 * i)
        shutil.copy(os.path.join(L.tmp, f"x.{ext}"), p)
        files.append(p)
    dt.check(L.wait_rows(files, 60), "tracks recorded")
    rows = L.rows()
    want = {}
    for p in files:
        want.setdefault(rows[os.fsencode(p)][1], []).append(os.path.relpath(p, L.lib))
    t0 = time.time()
    got = {}
    while time.time() - t0 < 30:
        got = {}
        for g in want:
            r = subprocess.run(["mpc", "-f", "%file%", "playlist", "--", g], env=env,
                               capture_output=True, text=True)
            got[g] = sorted(r.stdout.split("\n")[:-1]) if r.returncode == 0 else []
        if all(got[g] == sorted(want[g]) for g in want):
            break
        time.sleep(0.5)
    for g in want:
        dt.check(got.get(g) == sorted(want[g]), f"MPD playlist {g}: {got.get(g)} != {want[g]}")
    dt.check(L.stop() == 0, "SIGTERM exit 0")
finally:
    if mpd:
        mpd.terminate()
        mpd.wait()
    L.cleanup()
dt.done()
