#!/usr/bin/python3
"""musicnn_twin: a PyTorch twin of the musicnn backbone that reads the tf.keras port's HDF5 file
directly (../shared/pretrained/musicnn/*.h5), and a float64 numpy reference of its input recipe.
It shares no code with genred's C implementation or with the converter: the layers are mapped from
the Keras graph stored in the file (model_config), so the twin checks the converter too.

As a module:
  m = MusicnnTwin.from_h5(path)      torch module, eval mode, float32
  out = m(x)                         x: (batch, frames, 96) log-mel; out: dict of tensors
      logits (B, 50), probs (sigmoid), embedding (B, 200: bn_dense), pooled (B, 1506: max/mean
      interleaved), penultimate (B, 200: dense after ReLU, before bn_dense), front (B, T, 561),
      midend (B, T, 753)
  musicnn_mel(x16k)                  (frames, 96) float64: librosa 0.7 melspectrogram (n_fft 512,
      hop 256, 96 Slaney bands, fmax 8000, centred with reflect padding, power 2), then
      log10(1 + 10000 S); float16=True rounds S to float16 first as the original extractor did
  labels(h5_path)                    the 50 tag names in output order, read from
      reference/configuration.py beside the weights (MSD_LABELS or MTT_LABELS by file name)
As a script:
  musicnn_twin.py tags H5 AUDIO [--patch 187]
      decodes AUDIO to 16 kHz mono with ffmpeg, cuts patches without overlap as the original
      extractor did, and prints the five tags with the highest mean probability.
Exits 77 when torch, h5py or the weights are missing.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "features"))

try:
    import torch
    import torch.nn.functional as F
    import h5py
except ImportError as exc:  # pragma: no cover - depends on the machine
    torch = None
    IMPORT_ERROR = str(exc)

SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96
EPS = 1e-3


def musicnn_mel(x, float16=False):
    """(frames, 96) log-compressed power mel of 16 kHz mono samples, float64."""
    from mel_ref import mel_filter_bank
    x = np.asarray(x, dtype=np.float64)
    xp = np.pad(x, N_FFT // 2, mode="reflect")
    frames = 1 + (len(xp) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    spec = np.fft.rfft(xp[idx] * window, axis=1)
    power = spec.real ** 2 + spec.imag ** 2  # (frames, 257)
    s = power @ mel_filter_bank(SR, N_FFT, N_MELS).T
    if float16:
        s = s.astype(np.float16).astype(np.float64)
    return np.log10(10000.0 * s + 1.0)


def labels(h5_path):
    conf = os.path.join(os.path.dirname(os.path.abspath(h5_path)), "reference", "configuration.py")
    name = "MTT_LABELS" if os.path.basename(h5_path).startswith("MTT") else "MSD_LABELS"
    with open(conf, encoding="utf-8") as f:
        m = re.search(r"^%s\s*=\s*(\[.*?\])\s*$" % name, f.read(), re.M | re.S)
    return json.loads(m.group(1).replace("'", '"'))


def _graph(f):
    """{layer name: (class, config, [inbound layer names])} from the Keras model_config."""
    cfg = json.loads(f.attrs["model_config"])
    g = {}
    for layer in cfg["config"]["layers"]:
        nodes = layer["inbound_nodes"]
        ins = [n[0] for n in nodes[0]] if nodes else []
        g[layer["name"]] = (layer["class_name"], layer["config"], ins)
    return g


def _weights(f, layer):
    """{'kernel': array, ...} for one Keras layer (names lose their ':0' and '_1' suffixes)."""
    out = {}
    grp = f["model_weights"][layer][layer]
    for k, v in grp.items():
        out[re.sub(r"(_\d+)?:0$", "", k)] = np.array(v, dtype=np.float32)
    return out


class MusicnnTwin(torch.nn.Module if torch else object):
    def __init__(self, w):
        super().__init__()
        self.w = {k: {n: torch.from_numpy(a) for n, a in d.items()} for k, d in w.items()}

    @classmethod
    def from_h5(cls, path):
        with h5py.File(path, "r") as f:
            g = _graph(f)
            convs = [n for n, (c, _, _) in g.items() if c == "Conv2D"]
            bns = [n for n, (c, _, _) in g.items() if c == "BatchNormalization"]
            dens = [n for n, (c, _, _) in g.items() if c == "Dense"]
            w = {}
            # the BN right after the input, the BN after each conv (front and mid end), the dense layers
            inp = [n for n, (c, _, _) in g.items() if c == "InputLayer"][0]
            w["bn_input"] = _weights(f, [b for b in bns if g[b][2] == [inp]][0])
            for c in convs:
                k = tuple(g[c][1]["kernel_size"])
                key = {(7, 38): "timbral_38", (7, 67): "timbral_67", (128, 1): "temporal_128",
                       (64, 1): "temporal_64", (32, 1): "temporal_32"}.get(k, c)
                w[key] = _weights(f, c)
                w[key + "_bn"] = _weights(f, [b for b in bns if g[b][2] == [c]][0])
            w["bn_flatpool"] = _weights(f, "bn_flatpool")
            w["bn_dense"] = _weights(f, "bn_dense")
            first = [d for d in dens if g[d][1]["units"] == 200][0]
            last = [d for d in dens if d != first][0]
            w["dense"] = _weights(f, first)
            w["output"] = _weights(f, last)
        return cls(w).eval()

    def _bn(self, x, name, axis):
        p = self.w[name]
        shape = [1] * x.dim()
        shape[axis] = -1
        scale = p["gamma"] / torch.sqrt(p["moving_variance"] + EPS)
        return (x - p["moving_mean"].view(shape)) * scale.view(shape) + p["beta"].view(shape)

    def _conv2d(self, x, name, pad_t):
        """x: (B, 1, T, 96); Keras kernel (kt, kf, 1, out); zero padding (top, bottom) in time."""
        k = self.w[name]["kernel"].permute(3, 2, 0, 1).contiguous()
        x = F.pad(x, (0, 0, pad_t[0], pad_t[1]))
        y = F.relu(F.conv2d(x, k, self.w[name]["bias"]))
        y = self._bn(y, name + "_bn", 1)
        return y.amax(dim=3).transpose(1, 2)  # max over frequency: (B, T, out)

    def _conv1d(self, x, name):
        """x: (B, T, C) -> (B, T, 64): Keras kernel (7, C, 1, 64), zero padding 3 in time."""
        k = self.w[name]["kernel"][:, :, 0, :].permute(2, 1, 0).contiguous()
        y = F.relu(F.conv1d(F.pad(x.transpose(1, 2), (3, 3)), k, self.w[name]["bias"]))
        return self._bn(y, name + "_bn", 1).transpose(1, 2)

    def forward(self, x):
        x = torch.as_tensor(x, dtype=torch.float32)
        x = self._bn(x.unsqueeze(1), "bn_input", 1)  # (B, 1, T, 96)
        parts = [self._conv2d(x, "timbral_38", (3, 3)), self._conv2d(x, "timbral_67", (3, 3))]
        for k in (128, 64, 32):  # TF "same": the odd extra frame of padding goes at the end
            parts.append(self._conv2d(x, "temporal_%d" % k, ((k - 1) // 2, k // 2)))
        front = torch.cat(parts, dim=2)  # (B, T, 561)
        return self.head(front)

    def head(self, front):
        """From the front end's (B, T, 561) to every output; split out for gradient checks."""
        w = self.w
        c1 = self._conv1d(front, "midend_conv1")
        r2 = self._conv1d(c1, "midend_conv2") + c1
        r3 = self._conv1d(r2, "midend_conv3") + r2
        mid = torch.cat([front, c1, r2, r3], dim=2)  # (B, T, 753)
        pooled = torch.stack([mid.amax(dim=1), mid.mean(dim=1)], dim=2).flatten(1)  # (B, 1506)
        z = self._bn(pooled, "bn_flatpool", 1)
        pen = F.relu(z @ w["dense"]["kernel"] + w["dense"]["bias"])
        emb = self._bn(pen, "bn_dense", 1)
        logits = emb @ w["output"]["kernel"] + w["output"]["bias"]
        return {"logits": logits, "probs": torch.sigmoid(logits), "embedding": emb,
                "penultimate": pen, "pooled": pooled, "front": front, "midend": mid}


def load(path):
    """The twin of one .h5 file."""
    return MusicnnTwin.from_h5(path)


def decode16k(path):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", str(SR),
                          "-f", "f32le", "-"], check=True, stdout=subprocess.PIPE).stdout
    return np.frombuffer(raw, dtype="<f4")


def main(argv):
    if torch is None:
        print("musicnn_twin: SKIP: %s" % IMPORT_ERROR)
        return 77
    if len(argv) < 3 or argv[0] != "tags":
        sys.stderr.write(__doc__)
        return 2
    h5, audio = argv[1], argv[2]
    patch = int(argv[4]) if len(argv) > 4 and argv[3] == "--patch" else 187
    if not os.path.exists(h5):
        print("musicnn_twin: SKIP: no weights at %s" % h5)
        return 77
    mel = musicnn_mel(decode16k(audio), float16=True).astype(np.float32)
    n = max(1, (len(mel) - patch) // patch + 1)
    x = np.stack([mel[i * patch:(i + 1) * patch] for i in range(n)])
    with torch.no_grad():
        probs = load(h5)(x)["probs"].mean(dim=0).numpy()
    names = labels(h5)
    top = np.argsort(-probs)[:5]
    print(", ".join("%s %.3f" % (names[i], probs[i]) for i in top))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
