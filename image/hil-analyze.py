#!/usr/bin/env python3
"""image/hil-analyze.py TRACK.raw CAPTURE.raw|CAPTURE.wav

Finds what a capture of the boot test holds, by the samples alone: the first non-silent frame,
and which frame of the track (raw S16_LE stereo 44.1 kHz, decoded by mpg123 on the host) it
is, by normalised cross-correlation of two 1 s windows of the capture (after jamzd's fade-in)
against the whole track. Prints one JSON object:
  first_audible_s   seconds from the start of the capture to its first non-silent frame
  track_pos_s       the track position of that frame (window offset minus its distance)
  corr, corr2       correlation of the two windows (1.0 = the same samples, any volume)
  end_pos_s         the track position of the last audible frame recorded (at a power cut:
                    where the music was heard when it went)
  consistent        both windows agree on where the track is, to 50 ms (the emulated guest
                    can lose a few ms of capture when the host starves it)
"""
import json, sys, wave
import numpy as np

RATE = 44100

def load_wav(path):
    if not path.endswith(".wav"):  # raw S16_LE stereo 44.1 kHz
        a = np.fromfile(path, dtype="<i2")
        return a[: len(a) // 2 * 2].reshape(-1, 2)[:, 0].astype(np.float64)
    with wave.open(path, "rb") as w:
        n = w.getnframes()
        data = w.readframes(n)
        ch = w.getnchannels()
    a = np.frombuffer(data, dtype="<i2")
    a = a[: len(a) // ch * ch].reshape(-1, ch).astype(np.float64)
    return a[:, 0]

def ncc_locate(track, win):
    """Offset in `track` where `win` fits best, and the normalised correlation there."""
    n = len(track) + len(win)
    size = 1 << (n - 1).bit_length()
    w = win - win.mean()
    f = np.fft.rfft(track, size) * np.conj(np.fft.rfft(w, size))
    corr = np.fft.irfft(f, size)[: len(track) - len(win) + 1]
    # per-offset energy of the track segment
    c1 = np.concatenate([[0.0], np.cumsum(track)])
    c2 = np.concatenate([[0.0], np.cumsum(track * track)])
    L = len(win)
    s1 = c1[L:] - c1[:-L]
    s2 = c2[L:] - c2[:-L]
    var = np.maximum(s2 - s1 * s1 / L, 1e-9)
    ncc = corr / (np.sqrt(var) * np.sqrt((w * w).sum()) + 1e-9)
    k = int(np.argmax(ncc))
    return k, float(ncc[k])

def main():
    track_path, cap_path = sys.argv[1], sys.argv[2]
    tr = np.fromfile(track_path, dtype="<i2")
    track = tr[: len(tr) // 2 * 2].reshape(-1, 2)[:, 0].astype(np.float64)
    cap = load_wav(cap_path)
    out = {"capture_s": round(len(cap) / RATE, 3)}
    # jamzd's silence is exact zeros, and the loopback copies samples bit for bit: the first
    # non-zero sample is where the music starts (its fade-in included).
    loud = np.nonzero(np.abs(cap) > 0)[0]
    if len(loud) == 0:
        out.update(ok=False, why="the capture is silent")
        print(json.dumps(out)); return 1
    first = int(loud[0])
    out["first_audible_s"] = round(first / RATE, 4)
    # Windows after the fade-in (jamzd fades in over up to 1.5 s after a power cut).
    results = []
    for start_s in (2.0, 3.5):
        a = first + int(start_s * RATE)
        b = a + RATE
        if b > len(cap):
            a = max(first, len(cap) - RATE); b = len(cap)
        k, c = ncc_locate(track, cap[a:b])
        results.append((a, k, c))
    (a1, k1, c1), (a2, k2, c2) = results
    pos1 = (k1 - (a1 - first)) / RATE
    pos2 = (k2 - (a2 - first)) / RATE
    out.update(track_pos_s=round(pos1, 4), track_pos2_s=round(pos2, 4), corr=round(c1, 5), corr2=round(c2, 5),
               consistent=abs(pos1 - pos2) < 0.05)
    # The last second recorded: where the music was when the recording ended (the power cut).
    last = cap[first:]
    nz = np.nonzero(np.abs(last) > 0)[0]
    if len(nz) and nz[-1] > RATE:
        e = first + int(nz[-1]) + 1
        k3, c3 = ncc_locate(track, cap[e - RATE:e])
        out.update(end_pos_s=round((k3 + RATE) / RATE, 4), corr_end=round(c3, 5),
                   capture_end_s=round(e / RATE, 4))
    out["ok"] = bool(c1 > 0.9 and c2 > 0.9 and out["consistent"])
    print(json.dumps(out))
    return 0 if out["ok"] else 1

if __name__ == "__main__":
    sys.exit(main())
