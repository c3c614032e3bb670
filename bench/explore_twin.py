#!/usr/bin/python3
"""Quick architecture trials in PyTorch on the shared GTZAN train/valid lists, for ideas that
would need new layers in nn/ before genred's C trainer could measure them. It mirrors
`genred train`'s defaults (fcn 16-32-64-128, class-balanced drawing, crops of 64-86 frames,
spectral tilt +-6 dB, dB with the crop's own max, two time and two frequency masks, AdamW 0.002
with a one-epoch warm-up and cosine to 5 %, weight decay 0.01, 45 epochs of ceil(files/32)
steps, EMA of the weights with the decay (1+t)/(10+t) capped at 0.99) and scores valid like
`genred eval` (six 4 s windows, or the whole excerpt, mean of softmax). Not bit-identical to
the C trainer (its own random draws), so compare a variant with this script's own defaults,
over several seeds: on seeds 1-3 they give 0.583 / 0.538 / 0.538 (best epoch / last 5 / last
epoch; the C trainer 0.578 / 0.542 / 0.548). Its noise is about +-0.03: twice a 2-3 point
gain here (--block-dropout 0.1, --sam) was gone over five seeds of the C trainer.

usage: bench/explore_twin.py [--seed N] [--pool mean|meanstd|meanmax] [--ssn S]
                             [--front fcn|tdnn|musicnn] [--swa-from E] [--coord] [--group]
                             [--hpss] [--sam RHO] [--refit-head LR] [...]    (--help for all)
Prints one line per epoch and a FINAL line. The power mel spectrograms of the 480 files
(DESIGN.md section 3, from tests/features/mel_ref.py) are cached in --cache. Exit 77 when
../shared is missing. Runs on one thread (torch.set_num_threads(1)): two trials fit on 2 cores.
"""
import argparse
import copy
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "features"))
import mel_ref  # noqa: E402

GENRES = "blues classical country disco hiphop jazz metal pop reggae rock".split()


def load_mels(data, cache):
    """{"train|REL" or "valid|REL": power mel of the whole file}; the cache is used only when it
    was made from the same folder and the same lists."""
    data = os.path.realpath(data)
    names = [part + "|" + p for part in ("train", "valid")
             for p in open(os.path.join(data, part + ".txt")).read().split()]
    if os.path.exists(cache):
        z = np.load(cache)
        if "__data__" in z.files and str(z["__data__"]) == data and \
                set(z.files) == set(names) | {"__data__"}:
            return {k: z[k] for k in names}
    out = {}
    for name in names:
        path = os.path.join(data, name.split("|", 1)[1])
        pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", "22050",
                              "-f", "f32le", "-"], capture_output=True, check=True).stdout
        out[name] = mel_ref.mel_power(np.frombuffer(pcm, np.float32)).astype(np.float32)
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    np.savez(cache, __data__=np.array(data), **out)
    return out


def windows(m):
    """DESIGN.md section 2, approximately: six 4 s windows of a long track, the whole of a short
    one, cut from the whole file's mel at frame boundaries. genred (and mel_ref.windows on the
    samples) computes each window's own mel, so edges and offsets differ by up to one hop."""
    n = m.shape[1]
    if n < 173:
        return [m]
    span = (n - 1) * 512 - 88200
    return [m[:, int(np.floor(span * (2 * i + 1) / 12)) // 512:][:, :173] for i in range(6)]


def balanced_window_weights(counts, labels):
    """One weight per window, summing to 1: every file weighs the same within its genre and
    every genre the same, as genred's class-balanced drawing does. counts[i]: windows of file i."""
    per_genre = np.bincount(labels, minlength=10)
    w = np.concatenate([[1.0 / n / per_genre[lab]] * n for n, lab in zip(counts, labels)])
    return w / w.sum()


def to_db(s):
    d = 10 * np.log10(np.maximum(s, 1e-10))
    return np.maximum(d - d.max(axis=(-2, -1), keepdims=True), -80)


def hpss_db(s):
    """(64, T) power mel -> (3, 64, T) dB: the whole, its harmonic and its percussive part
    (Fitzgerald's median-filter masks on the mel itself), all against the whole's maximum."""
    from scipy.ndimage import median_filter
    h = median_filter(s, size=(1, 17), mode="nearest")
    p = median_filter(s, size=(7, 1), mode="nearest")
    mh = h * h / np.maximum(h * h + p * p, 1e-20)
    d = 10 * np.log10(np.maximum(np.stack([s, s * mh, s * (1 - mh)]), 1e-10))
    return np.maximum(d - d[0].max(), -80)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "gtzan"))
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/genred/twin-mels.npz"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=45)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--crop", default="64,86")
    ap.add_argument("--eq-db", type=float, default=6)
    ap.add_argument("--time-masks", type=int, default=2)
    ap.add_argument("--freq-masks", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--block-dropout", type=float, default=0.0,
                    help="channel dropout after each conv block (fcn; 0: off)")
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--pool", choices=("mean", "meanstd", "meanmax"), default="mean",
                    help="global pooling: mean (genred), mean + std, mean + max")
    ap.add_argument("--ssn", type=int, default=0,
                    help="sub-spectral normalisation: batch norm per S frequency bands (0: off)")
    ap.add_argument("--front", choices=("fcn", "tdnn", "musicnn"), default="fcn",
                    help="tdnn: 1-D convolutions over time with the 64 bands as channels; "
                         "musicnn: vertical timbre and horizontal temporal filters (Pons 2018)")
    ap.add_argument("--swa-from", type=int, default=0, metavar="E",
                    help="also keep a plain average of the weights at the end of epochs E.. "
                         "(stochastic weight averaging) and score it (0: off)")
    ap.add_argument("--coord", action="store_true",
                    help="fcn: a second input channel holding the band's place, -1 to 1")
    ap.add_argument("--group", action="store_true",
                    help="draw a recording, then its excerpt or clip: the two files of one "
                         "recording count once")
    ap.add_argument("--sam", type=float, default=0.0, metavar="RHO",
                    help="sharpness-aware minimisation: the gradient is taken at the weights "
                         "moved RHO along the normalised gradient (0: off)")
    ap.add_argument("--hpss", action="store_true",
                    help="fcn: two more input channels, the harmonic and percussive parts of the "
                         "mel (soft masks from median filters across 17 frames and 7 bands)")
    ap.add_argument("--refit-head", type=float, default=0.0, metavar="LR",
                    help="after training, refit the averaged model's dense layer on the pooled "
                         "features of whole inference windows (FixRes-style; Adam at LR, "
                         "class-balanced, scored after 10-200 steps; 0: off)")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.data, "train.txt")):
        print(f"skip: {a.data} missing (no shared data in this clone)")
        sys.exit(77)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(1)
    mels = load_mels(a.data, a.cache)

    def part(name):
        x, y = [], []
        for k in sorted(mels):
            if k.startswith(name + "|"):
                x.append(windows(mels[k]))
                y.append(GENRES.index(k.split("/")[-2]))
        return x, np.array(y)
    xt, yt = part("train")
    xv, yv = part("valid")
    rng = np.random.default_rng(a.seed)
    torch.manual_seed(a.seed)

    def features(power):  # (64, T) power mel -> (channels, 64, T) dB
        return hpss_db(power) if a.hpss else to_db(power)[None]

    def bn2(c):
        return nn.BatchNorm2d(c, eps=1e-3)

    class SubSpectralNorm(nn.Module):
        def __init__(s, c, sub):
            super().__init__()
            s.sub, s.bn = sub, bn2(c * sub)

        def forward(s, x):
            n, c, f, t = x.shape
            return s.bn(x.reshape(n, c * s.sub, f // s.sub, t)).reshape(n, c, f, t)

    def pool(h):  # (N, C, L) -> (N, C or 2C)
        m = h.mean(2)
        if a.pool == "meanstd":
            return torch.cat([m, h.std(2, unbiased=False)], 1)
        if a.pool == "meanmax":
            return torch.cat([m, h.amax(2)], 1)
        return m
    wide = 1 if a.pool == "mean" else 2

    class Fcn(nn.Module):
        def __init__(s):
            super().__init__()
            layers, ci = [], (3 if a.hpss else 1) + (1 if a.coord else 0)
            for c in map(int, a.channels.split(",")):
                norm = SubSpectralNorm(c, a.ssn) if a.ssn else bn2(c)
                layers += [nn.Conv2d(ci, c, 3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2)]
                if a.block_dropout > 0:
                    layers.append(nn.Dropout2d(a.block_dropout))
                ci = c
            s.body, s.drop, s.fc = nn.Sequential(*layers), nn.Dropout(a.dropout), nn.Linear(wide * ci, 10)

        def forward(s, x):
            if a.coord:
                band = torch.linspace(-1, 1, 64).view(1, 1, 64, 1)
                x = torch.cat([x, band.expand(x.shape[0], 1, 64, x.shape[3])], 1)
            return s.fc(s.drop(pool(s.body(x).flatten(2))))

    class Tdnn(nn.Module):
        def __init__(s):
            super().__init__()
            layers, ci = [], 64
            for c, k in ((128, 5), (128, 3), (128, 3)):
                layers += [nn.Conv1d(ci, c, k, padding=k // 2), nn.BatchNorm1d(c, eps=1e-3),
                           nn.ReLU(), nn.MaxPool1d(2)]
                ci = c
            s.body, s.drop, s.fc = nn.Sequential(*layers), nn.Dropout(a.dropout), nn.Linear(wide * ci, 10)

        def forward(s, x):
            return s.fc(s.drop(pool(s.body(x[:, 0]))))

    class Musicnn(nn.Module):
        def __init__(s):
            super().__init__()
            s.timbre = nn.ModuleList([nn.Sequential(nn.Conv2d(1, 16, (fh, fw), padding=(0, fw // 2)),
                                                    bn2(16), nn.ReLU())
                                      for fh in (58, 26) for fw in (1, 3, 7)])
            s.tempo = nn.ModuleList([nn.Sequential(nn.Conv1d(1, 16, k, padding=k // 2),
                                                   nn.BatchNorm1d(16, eps=1e-3), nn.ReLU())
                                     for k in (33, 17, 9)])
            c = 9 * 16
            s.mid1 = nn.Sequential(nn.Conv1d(c, 64, 7, padding=3), nn.BatchNorm1d(64, eps=1e-3), nn.ReLU())
            s.mid2 = nn.Sequential(nn.Conv1d(64, 64, 7, padding=3), nn.BatchNorm1d(64, eps=1e-3), nn.ReLU())
            s.drop, s.fc = nn.Dropout(a.dropout), nn.Linear(wide * (c + 128), 10)

        def forward(s, x):
            t = x.shape[3]
            f = [b(x).amax(2)[..., :t] for b in s.timbre] + [b(x.mean(2))[..., :t] for b in s.tempo]
            f = torch.cat(f, 1)
            m1 = s.mid1(f)
            m2 = s.mid2(m1) + m1
            return s.fc(s.drop(pool(torch.cat([f, m1, m2], 1))))

    net = {"fcn": Fcn, "tdnn": Tdnn, "musicnn": Musicnn}[a.front]()
    avg = copy.deepcopy(net)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
    cmin, cmax = map(int, a.crop.split(","))
    by_label = [np.where(yt == g)[0] for g in range(10)]
    if a.group:  # excerpt and clip of one recording are one item
        keys = [k for k in sorted(mels) if k.startswith("train|")]
        ids = {}
        for i, k in enumerate(keys):
            ids.setdefault(k.split("/")[-1], []).append(i)
        items = list(ids.values())
        by_label = [[it for it in items if yt[it[0]] == g] for g in range(10)]
    spe = -(-len(yt) // a.batch)
    total = spe * a.epochs

    def batch():
        fr = rng.integers(cmin, cmax + 1)
        xs, ys = [], []
        for _ in range(a.batch):
            bl = by_label[rng.integers(10)]
            i = bl[rng.integers(len(bl))]
            if a.group:
                i = i[rng.integers(len(i))]
            w = xt[i][rng.integers(len(xt[i]))]
            if w.shape[1] < fr:
                w = np.tile(w, (1, fr // w.shape[1] + 1))
            o = rng.integers(w.shape[1] - fr + 1)
            c = w[:, o:o + fr] * 10 ** (rng.uniform(-a.eq_db, a.eq_db) * np.linspace(-1, 1, 64) / 10)[:, None]
            d = features(c)
            for _ in range(a.time_masks):
                k = rng.integers(0, 13)
                s = rng.integers(0, fr - k + 1)
                for ch in d:
                    ch[:, s:s + k] = ch.mean()
            for _ in range(a.freq_masks):
                k = rng.integers(0, 9)
                s = rng.integers(0, 64 - k + 1)
                for ch in d:
                    ch[s:s + k, :] = ch.mean()
            xs.append(d)
            ys.append(yt[i])
        return torch.tensor((np.array(xs) + 40) / 80, dtype=torch.float32), torch.tensor(ys)

    def score(model):
        model.eval()
        pred = []
        with torch.no_grad():
            for ws in xv:
                x = torch.tensor((np.array([features(w) for w in ws]) + 40) / 80, dtype=torch.float32)
                pred.append(F.softmax(model(x), 1).mean(0).argmax().item())
        pred = np.array(pred)
        return np.mean([(pred[yv == g] == g).mean() for g in range(10) if (yv == g).any()])

    def sam_step(x, y):
        # climb to the worst nearby weights, take the gradient there, climb back; batch-norm
        # running statistics are restored so the second pass does not count twice
        ps = [p for p in net.parameters() if p.grad is not None]
        norm = torch.norm(torch.stack([p.grad.norm() for p in ps])) + 1e-12
        with torch.no_grad():
            es = [p.grad * (a.sam / norm) for p in ps]
            for p, e in zip(ps, es):
                p.add_(e)
        bufs = [b.clone() for b in net.buffers()]
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        with torch.no_grad():
            for p, e in zip(ps, es):
                p.sub_(e)
            for b, c in zip(net.buffers(), bufs):
                b.copy_(c)

    print("parameters", sum(p.numel() for p in net.parameters()), flush=True)
    t0, step, hist = time.time(), 0, []
    swa, nswa, shist = None, 0, []
    for ep in range(a.epochs):
        net.train()
        run = 0.0
        for _ in range(spe):
            lr = a.lr * min(1, (step + 1) / spe) * (0.5 * (1 + np.cos(np.pi * step / total)) * 0.95 + 0.05)
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = batch()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            if a.sam > 0:
                sam_step(x, y)
            opt.step()
            run += loss.item()
            d = min(a.ema, (1 + step) / (10 + step)) if a.ema > 0 else 0.0
            step += 1
            with torch.no_grad():
                for pa, pn in zip(avg.state_dict().values(), net.state_dict().values()):
                    if pa.dtype.is_floating_point:
                        pa.mul_(d).add_(pn, alpha=1 - d)
                    else:
                        pa.copy_(pn)
        if a.swa_from and ep + 1 >= a.swa_from:
            if swa is None:
                swa = copy.deepcopy(net)
            nswa += 1
            with torch.no_grad():
                for pa, pn in zip(swa.state_dict().values(), net.state_dict().values()):
                    if pa.dtype.is_floating_point:
                        pa.mul_(1 - 1 / nswa).add_(pn, alpha=1 / nswa)
            shist.append(score(swa))
            print("swa", nswa, f"{shist[-1]:.3f}", flush=True)
        hist.append(score(avg))
        print(f"epoch {ep + 1} loss {run / spe:.3f} valid bal {hist[-1]:.3f} t {time.time() - t0:.0f}",
              flush=True)
    if shist:
        print(f"SWA last {shist[-1]:.3f} last5 {np.mean(shist[-5:]):.3f}")
    if a.refit_head > 0:
        # training saw 1.5-2 s crops, inference pools 2-3 s excerpts and 4 s windows: refit
        # the dense layer on features pooled the way inference pools them (body frozen)
        avg.eval()
        feats = []
        with torch.no_grad():
            for ws in xt:
                x = torch.tensor((np.array([features(w) for w in ws]) + 40) / 80,
                                 dtype=torch.float32)
                feats.append(pool(avg.body(x).flatten(2)))
        fx = torch.cat(feats)
        fy = torch.tensor(np.concatenate([[lab] * len(f) for f, lab in zip(feats, yt)]))
        fw = torch.tensor(balanced_window_weights([len(f) for f in feats], yt),
                          dtype=torch.float32)
        trained_fc, head = avg.fc, copy.deepcopy(avg.fc)
        hopt = torch.optim.Adam(head.parameters(), lr=a.refit_head)
        for it in range(1, 201):
            hopt.zero_grad()
            hl = (F.cross_entropy(head(F.dropout(fx, a.dropout)), fy, reduction="none") * fw).sum()
            hl.backward()
            hopt.step()
            if it in (10, 25, 50, 100, 200):
                avg.fc = head
                print(f"refit step {it} loss {hl.item():.3f} valid bal {score(avg):.3f}",
                      flush=True)
                avg.fc = trained_fc
    h = np.array(hist)
    print(f"FINAL best {h.max():.3f}@{h.argmax() + 1} last5 {h[-5:].mean():.3f} last {h[-1]:.3f} "
          f"{' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
