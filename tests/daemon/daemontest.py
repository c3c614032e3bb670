"""daemontest: helpers for the end-to-end tests of `genred watch` (tests/daemon/*.py).
Generates short tracks with ffmpeg, writes a temp config and a model, starts and stops the real
daemon, and reads the state database (sqlite3) and the tags (mutagen) back. Exits 77 to skip."""
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

GENRED = os.environ.get("GENRED_BIN", "")
SRC = os.environ.get("GENRED_SOURCE_DIR", "")
FAILS = []


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


def done():
    if FAILS:
        print(f"{len(FAILS)} checks failed")
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def need_tools():
    if not GENRED or not os.path.exists(GENRED):
        skip("genred binary not given (GENRED_BIN)")
    if not shutil.which("ffmpeg"):
        skip("ffmpeg not installed")
    try:
        import mutagen  # noqa: F401
    except ImportError:
        skip("python3-mutagen not installed")


def tone(path, seconds=5.0, freq=440, fmt_args=()):
    """A short generated track; the format follows the file name's extension."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"sine=frequency={freq}:duration={seconds}",
           "-ar", "48000" if path.endswith(".opus") else "22050", *fmt_args, path]
    subprocess.run(cmd, check=True)


class Lib:
    """A temp directory with lib/, a model, a config, a hook log and the state database."""

    def __init__(self, name, debounce_ms=300, max_tracks=16, max_wait_ms=200, extra_conf="",
                 hooks=True):
        self.tmp = tempfile.mkdtemp(prefix=f"genred-{name}-")
        self.lib = os.path.join(self.tmp, "lib")
        os.makedirs(self.lib)
        self.model = os.path.join(self.tmp, "m.safetensors")
        subprocess.run(["/usr/bin/python3", os.path.join(SRC, "tests/nn/make_model.py"), "--arch",
                        "seed-cnn", "--seed", "1", self.model], check=True,
                       stdout=subprocess.DEVNULL)
        self.state = os.path.join(self.tmp, "state.db")
        self.hooklog = os.path.join(self.tmp, "hooks.log")
        self.m3u = os.path.join(self.tmp, "playlists")
        self.conf = os.path.join(self.tmp, "genred.conf")
        self.log = os.path.join(self.tmp, "daemon.log")
        hookdir = os.path.join(self.tmp, "hooks.d")
        os.makedirs(hookdir)
        if hooks:
            # Records every run: event, then the path as argv[1], NUL-terminated (names may hold
            # newlines). One printf = one write(2) on an O_APPEND file.
            h = os.path.join(hookdir, "10-log")
            with open(h, "w") as f:
                f.write('#!/bin/sh\nprintf \'%s\\t%s\\0\' "$GENRED_EVENT" "$1" >> "$HOOK_LOG"\n')
            os.chmod(h, 0o755)
        m3u_hook = os.path.join(SRC, "contrib/hooks/m3u-playlist")
        self.base_conf = (
            f'libraries = [ "{self.lib}" ];\n'
            f"debounce_ms = {debounce_ms};\n"
            f"batch = {{ max_tracks = {max_tracks}; max_wait_ms = {max_wait_ms}; }};\n"
            "jobs = 2;\n"
            f'hooks = {{ dir = "{hookdir}"; max_running = 2;\n'
            f'  commands = ( {"[ " + chr(34) + m3u_hook + chr(34) + " ]" if hooks else ""} ); }};\n'
            f'state = {{ path = "{self.state}"; }};\n')
        self.write_conf(extra_conf)
        self.proc = None

    def write_conf(self, extra=""):
        with open(self.conf, "w") as f:
            f.write(self.base_conf + extra)

    def env(self):
        e = dict(os.environ)
        e.update(HOOK_LOG=self.hooklog, GENRED_M3U_DIR=self.m3u, GENRED_DEBUG_SIGNALS="1")
        return e

    def start(self, *args, env=None, model_flag=True):
        """model_flag=False: no --model, the config's `model` is used (and re-read on SIGHUP)."""
        logf = open(self.log, "ab")
        model = ["--model", self.model] if model_flag else []
        self.proc = subprocess.Popen(
            [GENRED, "watch", "--config", self.conf, *model, "--log-level", "debug", *args],
            stdout=logf, stderr=logf, env=env or self.env())
        logf.close()
        self.wait_log("ready:", 30)
        return self.proc

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, timeout, count=1):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.log_text().count(needle) >= count:
                return True
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        print(self.log_text()[-3000:])
        raise SystemExit(f"FAIL: '{needle}' x{count} not in the daemon log after {timeout} s")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def rows(self):
        """path (bytes) -> (status, genre, runs, model)."""
        if not os.path.exists(self.state):
            return {}
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True, timeout=10)
        try:
            return {bytes(p) if not isinstance(p, bytes) else p: (s, g, r, m)
                    for p, s, g, r, m in db.execute(
                        "SELECT path, status, genre, runs, model FROM tracks")}
        finally:
            db.close()

    def wait_rows(self, paths, timeout):
        want = {os.fsencode(p) for p in paths}
        t0 = time.time()
        while time.time() - t0 < timeout:
            have = set(self.rows())
            if want <= have:
                return True
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.25)
        missing = want - set(self.rows())
        print(self.log_text()[-3000:])
        check(False, f"{len(missing)} files never recorded, e.g. {sorted(missing)[:3]}")
        return False

    def hook_runs(self):
        if not os.path.exists(self.hooklog):
            return []
        with open(self.hooklog, "rb") as f:
            data = f.read()
        out = []
        for rec in data.split(b"\0"):
            if rec:
                ev, _, path = rec.partition(b"\t")
                out.append((ev.decode(), path))
        return out

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not FAILS:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("kept", self.tmp)


def genred_tags(path):
    """(genre, confidence, model) as mutagen reads them from any container, or None."""
    import mutagen
    f = mutagen.File(path)
    if f is None or f.tags is None:
        return None
    genre = conf = model = None
    for k, v in f.tags.items():
        key = str(k)
        val = v
        if hasattr(v, "text"):
            val = v.text
        if isinstance(val, list):
            val = val[0] if val else ""
        if isinstance(val, bytes):
            val = val.decode()
        if hasattr(val, "decode") and not isinstance(val, str):  # MP4FreeForm
            val = bytes(val).decode()
        val = str(val)
        u = key.upper()
        if u in ("TCON", "GENRE", "\xa9GEN"):
            genre = val
        elif u.endswith("GENRED_CONFIDENCE"):
            conf = val
        elif u.endswith("GENRED_MODEL"):
            model = val
    return genre, conf, model


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of pid (idle checks)."""
    total = 0
    for st in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            for line in open(st):
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total
