#!/usr/bin/python3
"""Reference log-mel spectrogram in float64 numpy, written from DESIGN.md §3 and librosa 0.10's
published formulas (librosa itself is not installed): periodic Hann, center=True with zero
padding, |X|^2, Slaney mel filter bank with Slaney area norm, power_to_db(ref=max, amin=1e-10,
top_db=80). It is independent of features/mel.c: no code is shared.

As a module:  mel_db(x), mel_power(x), windows(x), track_mel_db(x)
As a script:  mel_ref.py IN.f32 OUT.npy [--window-samples 88200] [--short pad|whole] [--power]
  IN.f32 is raw little-endian float32 mono samples at 22050 Hz; OUT.npy gets the DESIGN.md §2
  windows' mel dB as float64, shape (windows, 64, frames): 6 windows when the track has at
  least window-samples samples, else one window (zero-padded to window-samples with --short
  pad, the seed-cnn rule and the default; the whole track with --short whole, the fcn rule).
"""
import sys

import numpy as np

SR, N_FFT, HOP, N_MELS = 22050, 2048, 512, 64
AMIN, TOP_DB = 1e-10, 80.0


def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels)


def mel_to_hz(m):
    m = np.asanyarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filter_bank(sr=SR, n_fft=N_FFT, n_mels=N_MELS):
    """librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm='slaney')."""
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


def mel_power(x, sr=SR, n_fft=N_FFT, hop=HOP, n_mels=N_MELS):
    """(n_mels, 1 + len(x) // hop) power mel spectrogram."""
    x = np.asarray(x, dtype=np.float64)
    xp = np.pad(x, n_fft // 2, mode="constant")
    frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    spec = np.fft.rfft(xp[idx] * window, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).T
    return mel_filter_bank(sr, n_fft, n_mels) @ power


def power_to_db(s):
    """librosa.power_to_db(s, ref=np.max, amin=1e-10, top_db=80)."""
    s = np.asarray(s, dtype=np.float64)
    log_spec = 10.0 * np.log10(np.maximum(AMIN, s))
    log_spec -= 10.0 * np.log10(np.maximum(AMIN, s.max()))
    return np.maximum(log_spec, log_spec.max() - TOP_DB)


def mel_db(x, **kw):
    return power_to_db(mel_power(x, **kw))


def windows(x, window_samples=88200, short="pad"):
    """DESIGN.md §2: the sample arrays of the windows of a track."""
    x = np.asarray(x)
    n, w = len(x), window_samples
    if n >= w:
        return [x[(n - w) * (2 * i + 1) // 12:][:w] for i in range(6)]
    if short == "pad":
        return [np.concatenate([x, np.zeros(w - n, dtype=x.dtype)])]
    return [x]


def track_mel_db(x, window_samples=88200, short="pad"):
    return np.stack([mel_db(wx) for wx in windows(x, window_samples, short)])


def main(argv):
    args, opts = [], {"--window-samples": "88200", "--short": "pad"}
    power = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in opts and i + 1 < len(argv):
            opts[a] = argv[i + 1]
            i += 2
            continue
        if a == "--power":
            power = True
        else:
            args.append(a)
        i += 1
    if len(args) != 2 or opts["--short"] not in ("pad", "whole"):
        sys.stderr.write(__doc__)
        return 2
    x = np.fromfile(args[0], dtype="<f4")
    if len(x) == 0:
        sys.stderr.write("mel_ref: no samples in %s\n" % args[0])
        return 1
    wins = windows(x, int(opts["--window-samples"]), opts["--short"])
    f = mel_power if power else mel_db
    np.save(args[1], np.stack([f(wx) for wx in wins]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
