#!/usr/bin/python3
"""twin: the PyTorch twin of genred's two nets (seed-cnn, fcn), loading the same safetensors file,
and the parity test against genred (through the nn_dump test tool).
  twin.py forward NN_DUMP --arch seed-cnn --frames 173   probabilities, eval mode, max |d| <= 1e-5
  twin.py grads NN_DUMP --arch fcn --frames 40            logits, loss, every parameter gradient
      and the updated running statistics of one training-mode batch (dropout off), rel. 1e-3
Exits 1 on a mismatch, 77 when torch is missing. Also imported by bench/train_speed.py."""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model import arch_tensors, read_safetensors, write_safetensors  # noqa: E402

try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F
except ImportError:
    torch = None

BN_MOMENTUM = 0.1  # genred uses PyTorch's convention (nn/net.c)


def build(tensors, meta):
    """A torch module equal to genred's net for this file's metadata and tensors."""
    arch = meta["arch"]
    eps = float(meta["bn_eps"])
    dropout = float(meta.get("dropout", "0.5" if arch == "seed-cnn" else "0.3"))
    scale, shift = np.float32(meta["input_scale"]), np.float32(meta["input_shift"])

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            nb = 3 if arch == "seed-cnn" else len(meta.get("fcn_channels", "32,64,128,128").split(","))
            self.nb = nb
            for i in range(1, nb + 1):
                w = tensors[f"conv{i}.weight"]
                setattr(self, f"conv{i}", tnn.Conv2d(w.shape[1], w.shape[0], 3,
                                                     padding=1 if arch == "fcn" else 0))
                setattr(self, f"bn{i}", tnn.BatchNorm2d(w.shape[0], eps=eps, momentum=BN_MOMENTUM))
            heads = ["fc1", "fc2", "fc3", "fc4"] if arch == "seed-cnn" else ["fc"]
            for h in heads:
                w = tensors[f"{h}.weight"]
                setattr(self, h, tnn.Linear(w.shape[1], w.shape[0]))
            self.drop_on = True

        def forward(self, x):
            x = ((x + float(shift)) * float(scale)).unsqueeze(1)
            for i in range(1, self.nb + 1):
                conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
                if arch == "seed-cnn":
                    x = bn(F.max_pool2d(F.relu(conv(x)), 2))
                else:
                    x = F.max_pool2d(F.relu(bn(conv(x))), 2)
            p = dropout if (self.training and self.drop_on) else 0.0
            if arch == "seed-cnn":
                x = torch.flatten(x, 1)
                x = F.dropout(F.relu(self.fc1(x)), p)
                x = F.dropout(F.relu(self.fc2(x)), p)
                x = F.dropout(F.relu(self.fc3(x)), p)
                return self.fc4(x)
            x = F.dropout(x.mean(dim=(2, 3)), p)
            return self.fc(x)

    net = Net()
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"twin: state mismatch: missing {missing} unexpected {unexpected}")
    return net


def soft_xent(logits, targets):
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def rel_err(a, b, scale):
    """Max |a - b| relative to the reference's largest value. In fcn the conv biases feed a batch
    norm, so their true gradient is exactly 0 and both sides hold only cancellation noise: when
    the reference is below 1e-4 of the largest gradient (scale), genred's must be as well, and
    the error is max |a| / (1e-4 scale)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.max(np.abs(b)) < 1e-4 * scale:
        return float(np.max(np.abs(a)) / (1e-4 * scale)) * 1e-3
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["forward", "grads"])
    ap.add_argument("nn_dump")
    ap.add_argument("--arch", default="seed-cnn")
    ap.add_argument("--frames", type=int, default=173)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--fcn-channels", default="8,16,16,32")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    if torch is None:
        print("SKIP: torch is not importable by", sys.executable)
        return 77
    torch.manual_seed(0)
    labels = "blues,classical,country,disco,hiphop,jazz,metal,pop,reggae,rock"
    meta = {"format": "genred-1", "arch": a.arch, "labels": labels, "sample_rate": "22050",
            "n_fft": "2048", "hop_length": "512", "n_mels": "64", "window_seconds": "4",
            "windows": "6", "input_scale": "0.0125", "input_shift": "40", "bn_eps": "0.001"}
    channels = [int(c) for c in a.fcn_channels.split(",")]
    if a.arch == "fcn":
        meta["fcn_channels"] = a.fcn_channels
    rng = np.random.default_rng(a.seed)
    ts = arch_tensors(a.arch, 10, 64, 173, channels, rng)
    n, fr = a.batch, a.frames
    x = rng.uniform(-80.0, 0.0, (n, 64, fr)).astype(np.float32)
    t = rng.dirichlet(np.ones(10), n).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "m.safetensors")
        write_safetensors(mp, ts, meta)
        tensors, meta2 = read_safetensors(mp)
        net = build(tensors, meta2)
        x.tofile(os.path.join(d, "x.f32"))
        t.tofile(os.path.join(d, "t.f32"))
        out = os.path.join(d, "out.f32")
        after = os.path.join(d, "after.safetensors")
        if a.mode == "forward":
            cmd = [a.nn_dump, "forward", mp, os.path.join(d, "x.f32"), str(n), str(fr), out]
        else:
            cmd = [a.nn_dump, "grads", mp, os.path.join(d, "x.f32"), os.path.join(d, "t.f32"),
                   str(n), str(fr), out, after]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print("nn_dump failed:", r.stderr)
            return 1
        got = np.fromfile(out, dtype=np.float32)
        xt = torch.from_numpy(x)
        ok = True
        if a.mode == "forward":
            net.eval()
            with torch.no_grad():
                ref = F.softmax(net(xt), dim=1).numpy()
            diff = float(np.max(np.abs(got.reshape(n, 10) - ref))) if got.size == n * 10 else 1.0
            print(f"{a.arch} frames {fr} batch {n}: max |dprob| = {diff:.3g} (limit 1e-5)")
            ok = diff <= 1e-5
        else:
            net.train()
            net.drop_on = False
            logits = net(xt)
            loss = soft_xent(logits, torch.from_numpy(t))
            loss.backward()
            names = r.stdout.split()
            pos = 0

            def take(cnt):
                nonlocal pos
                v = got[pos:pos + cnt]
                pos += cnt
                return v

            checks = [("logits", take(n * 10), logits.detach().numpy()),
                      ("loss", take(1), np.array([loss.item()]))]
            params = dict(net.named_parameters())
            if sorted(names) != sorted(params):
                print("parameter names differ:", names, sorted(params))
                return 1
            for name in names:
                g = params[name].grad.numpy()
                checks.append(("grad " + name, take(g.size), g))
            aft, _ = read_safetensors(after)
            for k, v in net.state_dict().items():
                if "running" in k:
                    checks.append((k, aft[k], v.numpy()))
            if pos != got.size:
                print(f"nn_dump wrote {got.size} floats, expected {pos}")
                return 1
            scale = max(float(np.max(np.abs(r))) for w, _, r in checks if w.startswith("grad"))
            for what, g, ref in checks:
                e = rel_err(g.reshape(-1), ref.reshape(-1), scale)
                bad = e > 1e-3 or not np.all(np.isfinite(g))
                ok &= not bad
                print(f"{'MISMATCH' if bad else 'ok':8s} {what:22s} rel err {e:.2e} max {np.max(np.abs(ref)):.2e}")
            print(f"{a.arch} frames {fr} batch {n}: {'all match' if ok else 'MISMATCH'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
