"""Helpers for the tests of `genred serve` (web_api.py, browser_test.py) and bench/web_bench.py:
a server started on a free port (--listen 127.0.0.1:0, its address read from its stderr),
plain HTTP requests with http.client, raw bytes over a socket, and a library made with sox and
ffmpeg and tagged by `genred tag`. Nothing here is a test by itself."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import SANITIZER_MARKS, ffmpeg, music  # noqa: E402,F401

GENRES_DEMO = ("Polka", "Jazz")


class Server:
    """`genred serve ARGS` on a free port until stop()."""

    def __init__(self, binary, args, env=None, log=None, wait=60):
        self.log_path = log
        self.env = dict(os.environ)
        self.env.pop("GENRED_MODEL", None)
        if env:
            self.env.update(env)
        self.logf = open(log, "w+b")
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"] + list(args),
                                     stdout=self.logf, stderr=self.logf, env=self.env)
        self.url = None
        t = time.time()
        while time.time() - t < wait:
            m = re.search(rb"listening on (http://([\d.]+):(\d+)/)", self.log())
            if m:
                self.url = m.group(1).decode()
                self.host = m.group(2).decode()
                self.port = int(m.group(3))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            raise RuntimeError("genred serve did not start: %s" % self.log().decode(errors="replace"))
        self._csrf = None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=120):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None, timeout=120):
        status, h, data = self.request(method, path, body, headers, timeout)
        try:
            return status, h, json.loads(data)
        except ValueError:
            return status, h, {"not json": data[:200].decode(errors="replace")}

    def csrf(self):
        if not self._csrf:
            _, _, j = self.json("GET", "/api/session")
            self._csrf = j["csrf"]
        return self._csrf

    def post(self, path, body, ctype="application/octet-stream", headers=None, timeout=120):
        h = {"X-CSRF-Token": self.csrf(), "Content-Type": ctype}
        h.update(headers or {})
        return self.json("POST", path, body, h, timeout)

    def raw(self, data, timeout=10):
        """Sends bytes as they are; returns what comes back until the server closes or
        the timeout passes."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        out = b""
        try:
            s.sendall(data)
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"content-length:" in out.lower():
                    head, _, rest = out.partition(b"\r\n\r\n")
                    m = re.search(rb"content-length: *(\d+)", head.lower())
                    if m and len(rest) >= int(m.group(1)):
                        break
        finally:
            s.close()
        return out

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM; returns the exit status (None when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        self.logf.close()
        return self.proc.returncode

    def sanitizer_report(self):
        log = self.log().decode(errors="replace")
        for mark in SANITIZER_MARKS:
            if mark in log:
                return log[-3000:]
        return None


def multipart(field, filename, data, ctype="application/octet-stream", extra=()):
    """A multipart/form-data body with one file field (and (name, value) text fields)."""
    b = "----genred%d" % (time.time_ns() % 10**9)
    parts = []
    for name, value in extra:
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                      % (b, name, value)).encode())
    parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                  "Content-Type: %s\r\n\r\n" % (b, field, filename, ctype)).encode() + data + b"\r\n")
    body = b"".join(parts) + ("--%s--\r\n" % b).encode()
    return body, "multipart/form-data; boundary=%s" % b


# sox recipes that the shipped model hears as different genres (disco, hip-hop, jazz), so a
# generated library has more than one bar in its chart; music() is mostly classical to it.
STYLES = (
    None,  # music()
    ["synth", "{s}", "sawtooth", "110", "sawtooth", "165", "overdrive", "30", "tremolo", "8", "80",
     "gain", "-6"],
    ["synth", "{s}", "whitenoise", "tremolo", "8", "100", "highpass", "3000", "gain", "-10", ":",
     "synth", "{s}", "square", "55", "tremolo", "2", "100"],
    ["synth", "{s}", "sine", "440", "sine", "554"],
)


def make_library(root, n_per_style=2):
    """A small library of generated tracks in a few formats and styles, all with ARTIST tags,
    one with a hand-set genre (Polka, kept by genred, what untag restores), and one broken
    file. Returns the list of audio paths (not the broken one)."""
    import mutagen.flac
    os.makedirs(root, exist_ok=True)
    paths = []
    for i in range(n_per_style * 3):
        wav = os.path.join(root, ".src%d.wav" % i)
        seconds = 10 + 3 * i
        style = STYLES[i % len(STYLES)]
        if style is None:
            music(wav, seconds=seconds, seed=i)
        else:
            subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", wav] +
                           [a.replace("{s}", str(seconds)) for a in style],
                           check=True, capture_output=True)
        ext = ("flac", "mp3", "ogg")[i % 3]
        out = os.path.join(root, "Artist %d - Track %02d.%s" % (i % 2, i, ext))
        args = {"flac": [], "mp3": ["-b:a", "96k"], "ogg": ["-c:a", "libvorbis"]}[ext]
        ffmpeg("-i", wav, *args, "-metadata", "artist=Artist %d" % (i % 2), out)
        os.unlink(wav)
        paths.append(out)
    f = mutagen.flac.FLAC(paths[0])
    f["ARTIST"] = "The Sine Waves"
    f["GENRE"] = "Polka"  # set by hand before genred: kept, and what untag restores
    f.save()
    with open(os.path.join(root, "broken.mp3"), "wb") as fh:
        fh.write(b"this is not an mp3 " * 500)
    return paths
