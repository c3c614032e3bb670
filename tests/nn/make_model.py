#!/usr/bin/python3
"""make_model: writes a genred model file (safetensors, DESIGN.md section 5) with fixed random
weights, for tests: `make_model.py --arch seed-cnn --seed 1 OUT.safetensors`.
--break KIND writes a deliberately broken file for the loader's refusal tests.
Also a tiny safetensors reader/writer (numpy + json only; the safetensors package is not
installed here) that twin.py imports. Not a trainer: the weights mean nothing."""
import argparse
import json
import struct
import sys

import numpy as np

GTZAN = "blues,classical,country,disco,hiphop,jazz,metal,pop,reggae,rock"
GTZAN_DISPLAY = "Blues,Classical,Country,Disco,Hip-Hop,Jazz,Metal,Pop,Reggae,Rock"
BREAKS = ["wrong-name", "wrong-shape", "missing-meta", "bad-meta", "bad-format", "truncated",
          "header-too-long", "dtype", "missing-tensor", "extra-tensor", "overlap", "nan",
          "bad-labels", "bad-json"]


def read_safetensors(path):
    """Returns (tensors: dict name -> float32 array, metadata: dict)."""
    data = open(path, "rb").read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    base = 8 + hlen
    out = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(t["shape"]).copy()
    return out, meta


def write_safetensors(path, tensors, meta, header_extra=None):
    """tensors: list of (name, array) in file order."""
    header = {"__metadata__": meta}
    blobs, off = [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if header_extra:
        header_extra(header)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def arch_tensors(arch, n_labels, n_mels, frames, channels, rng):
    """The tensor list of an architecture, in genred's file order, with random weights."""
    ts = []
    if arch == "seed-cnn":
        channels = [64, 32, 32]
    h, w, cin = n_mels, frames, 1
    for i, c in enumerate(channels, 1):
        ts.append((f"conv{i}.weight", rng.standard_normal((c, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))))
        ts.append((f"conv{i}.bias", rng.standard_normal(c) * 0.1))
        ts.append((f"bn{i}.weight", 1.0 + 0.1 * rng.standard_normal(c)))
        ts.append((f"bn{i}.bias", 0.1 * rng.standard_normal(c)))
        ts.append((f"bn{i}.running_mean", 0.1 * rng.standard_normal(c)))
        ts.append((f"bn{i}.running_var", rng.uniform(0.5, 1.5, c)))
        pad = 1 if arch == "fcn" else 0
        h, w, cin = (h + 2 * pad - 2) // 2, (w + 2 * pad - 2) // 2, c
    if arch == "seed-cnn":
        dims = [cin * h * w, 64, 32, 16, n_labels]
        for i in range(4):
            ts.append((f"fc{i + 1}.weight",
                       rng.standard_normal((dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i])))
            ts.append((f"fc{i + 1}.bias", rng.standard_normal(dims[i + 1]) * 0.1))
    else:
        ts.append(("fc.weight", rng.standard_normal((n_labels, cin)) * np.sqrt(1.0 / cin)))
        ts.append(("fc.bias", rng.standard_normal(n_labels) * 0.1))
    return [(n, a.astype(np.float32)) for n, a in ts]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", default="seed-cnn", choices=["seed-cnn", "fcn"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--labels", default=GTZAN)
    ap.add_argument("--display-names", default=None)
    ap.add_argument("--fcn-channels", default="32,64,128,128")
    ap.add_argument("--n-mels", type=int, default=64)
    ap.add_argument("--window-seconds", default="4")
    ap.add_argument("--bn-eps", default="0.001")
    ap.add_argument("--break", dest="brk", choices=BREAKS)
    ap.add_argument("out")
    a = ap.parse_args()
    labels = a.labels.split(",")
    display = a.display_names or (GTZAN_DISPLAY if a.labels == GTZAN else None)
    meta = {"format": "genred-1", "arch": a.arch, "labels": a.labels,
            "sample_rate": "22050", "n_fft": "2048", "hop_length": "512",
            "n_mels": str(a.n_mels), "window_seconds": a.window_seconds, "windows": "6",
            "input_scale": "0.0125", "input_shift": "40", "bn_eps": a.bn_eps,
            "command": "tests/nn/make_model.py " + " ".join(sys.argv[1:])}
    if display:
        meta["display_names"] = display
    channels = [int(c) for c in a.fcn_channels.split(",")]
    if a.arch == "fcn":
        meta["fcn_channels"] = a.fcn_channels
    frames = 1 + int(round(float(a.window_seconds) * 22050)) // 512
    rng = np.random.default_rng(a.seed)
    ts = arch_tensors(a.arch, len(labels), a.n_mels, frames, channels, rng)
    extra = None
    b = a.brk
    if b == "wrong-name":
        ts[0] = ("conv1.kernel", ts[0][1])
    elif b == "wrong-shape":
        ts[1] = (ts[1][0], np.zeros(ts[1][1].shape[0] + 1, np.float32))
    elif b == "missing-meta":
        del meta["n_mels"]
    elif b == "bad-meta":
        meta["hop_length"] = "512x"
    elif b == "bad-format":
        meta["format"] = "genred-0"
    elif b == "bad-labels":
        meta["labels"] = "rock,,pop"
    elif b == "missing-tensor":
        ts = [t for t in ts if t[0] != "bn2.running_var"]
    elif b == "extra-tensor":
        ts.append(("bn1.num_batches_tracked", np.zeros(1, np.float32)))
    elif b == "nan":
        ts[0][1].flat[3] = np.nan
    elif b == "dtype":
        def extra(h):
            h["conv1.bias"]["dtype"] = "F16"
    elif b == "overlap":
        def extra(h):
            h["conv1.bias"]["data_offsets"] = [0, h["conv1.bias"]["data_offsets"][1]
                                               - h["conv1.bias"]["data_offsets"][0]]
    write_safetensors(a.out, ts, meta, extra)
    if b == "truncated":
        data = open(a.out, "rb").read()
        open(a.out, "wb").write(data[:-100])
    elif b == "header-too-long":
        data = bytearray(open(a.out, "rb").read())
        data[:8] = struct.pack("<Q", len(data) + 10)
        open(a.out, "wb").write(bytes(data))
    elif b == "bad-json":
        data = bytearray(open(a.out, "rb").read())
        data[8] = ord("[")
        open(a.out, "wb").write(bytes(data))


if __name__ == "__main__":
    main()
