"""Local pitch, rate, gain and whisper changes, done in the WORLD vocoder's domain.

WORLD splits speech into F0, spectral envelope and aperiodicity every 5 ms. Pitch is changed by
scaling F0 with the envelope (the formants) kept, which is a real pitch shift, not a change of
playback speed; a local rate change resamples the frame sequence; a whisper is the same envelope
excited by noise only (F0 set to zero). Curves are smoothed so changes have no clicks.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

FRAME_MS = 5.0
RAMP_MS = 30.0
MARGIN_MS = 80.0  # vocoded context around a local change
FADE_MS = 10.0


@dataclass(frozen=True)
class Local:
    """What to do to the samples [start, end)."""

    start: int
    end: int
    pitch: float = 0.0  # semitones
    gain_db: float = 0.0
    stretch: float = 1.0  # duration multiplier
    whisper: bool = False

    @property
    def needs_vocoder(self) -> bool:
        return self.pitch != 0.0 or self.stretch != 1.0 or self.whisper


@lru_cache(maxsize=1)
def world():
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        # pyworld 0.3.5 reads its own version through pkg_resources, which setuptools >= 81 dropped
        from importlib.metadata import version

        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=version(name))
        sys.modules["pkg_resources"] = shim
    import pyworld

    return pyworld


def apply(audio: np.ndarray, sr: int, changes: list[Local]) -> np.ndarray:
    """Apply local changes. Gain alone is a plain curve; the vocoder runs only over the stretch
    that changes pitch, rate or voicing (plus a margin), spliced back with short crossfades."""
    changes = [c for c in changes if c.end > c.start]
    plain = [c for c in changes if not c.needs_vocoder]
    out = audio
    if plain:
        g = _curve(len(audio), [(c.start, c.end, c.gain_db) for c in plain], sr / 1000.0 * RAMP_MS)
        out = audio * 10.0 ** (g / 20.0)
    voc = [c for c in changes if c.needs_vocoder]
    if voc:
        margin = int(sr * MARGIN_MS / 1000.0)
        a = max(min(c.start for c in voc) - margin, 0)
        b = min(max(c.end for c in voc) + margin, len(out))
        if b - a >= len(out) - 2 * margin:  # nearly all of it: no splice
            a, b = 0, len(out)
        shifted = [Local(c.start - a, c.end - a, c.pitch, c.gain_db, c.stretch, c.whisper) for c in voc]
        y, g = _vocode(out[a:b], sr, shifted)
        mid = y * 10.0 ** (g / 20.0)
        out = _splice(out[:a], mid, out[b:], int(sr * FADE_MS / 1000.0))
    return np.asarray(out, dtype=np.float32)


def _splice(left: np.ndarray, mid: np.ndarray, right: np.ndarray, fade: int) -> np.ndarray:
    """Join with linear crossfades; the vocoded middle overlaps its neighbours by `fade` samples."""
    parts = [left]
    m = mid
    if len(left) and fade:
        f = min(fade, len(left), len(m))
        w = np.linspace(0.0, 1.0, f)
        parts = [left[:-f], left[-f:] * (1 - w) + m[:f] * w]
        m = m[f:]
    if len(right) and fade:
        f = min(fade, len(right), len(m))
        w = np.linspace(0.0, 1.0, f)
        parts += [m[:-f] if f else m, m[len(m) - f:] * (1 - w) + right[:f] * w, right[f:]]
    else:
        parts += [m, right]
    return np.concatenate(parts)


def _curve(n: int, spans: list[tuple[int, int, float]], ramp: float) -> np.ndarray:
    """A per-index value: 0 outside the spans, the span's value inside, smoothed over `ramp` indices."""
    c = np.zeros(n)
    for a, b, v in spans:
        c[max(a, 0):min(b, n)] = v
    k = max(int(ramp), 1)
    if k > 1 and n:
        c = np.convolve(np.pad(c, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")
    return c


def _vocode(audio: np.ndarray, sr: int, changes: list[Local]) -> tuple[np.ndarray, np.ndarray]:
    pw = world()
    x = audio.astype(np.float64)
    f0, t = pw.dio(x, sr, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sr)
    sp = pw.cheaptrick(x, f0, t, sr)
    ap = pw.d4c(x, f0, t, sr)
    per = sr * FRAME_MS / 1000.0
    nf = len(f0)
    frames = [(int(c.start / per), int(np.ceil(c.end / per)), c) for c in changes]
    ramp = RAMP_MS / FRAME_MS
    f0 = f0 * 2.0 ** (_curve(nf, [(a, b, c.pitch) for a, b, c in frames], ramp) / 12.0)
    whisper = _curve(nf, [(a, b, 1.0) for a, b, c in frames if c.whisper], 1) > 0.5
    f0[whisper] = 0.0
    ap[whisper] = 1.0
    gain = _curve(nf, [(a, b, c.gain_db) for a, b, c in frames], ramp)
    stretch = _curve(nf, [(a, b, c.stretch - 1.0) for a, b, c in frames], ramp) + 1.0
    if np.any(stretch != 1.0):
        pos = _warp(stretch)
        f0 = f0[np.rint(pos).astype(int)]  # nearest frame: interpolating into unvoiced (0) frames would bend F0
        sp, ap, gain = (_at(v, pos) for v in (sp, ap, gain))
    y = pw.synthesize(np.ascontiguousarray(f0), np.ascontiguousarray(sp), np.ascontiguousarray(ap), sr, FRAME_MS)
    gains = np.interp(np.arange(len(y)) / per, np.arange(len(gain)), gain)
    return y.astype(np.float32), gains


def _warp(stretch: np.ndarray) -> np.ndarray:
    """Source frame position of each output frame when source frame k lasts stretch[k] frames."""
    out_time = np.concatenate([[0.0], np.cumsum(stretch)])
    n_out = int(round(out_time[-1]))
    return np.interp(np.arange(n_out), out_time, np.arange(len(stretch) + 1.0)).clip(0, len(stretch) - 1)


def _at(v: np.ndarray, pos: np.ndarray) -> np.ndarray:
    i = np.floor(pos).astype(int)
    j = np.minimum(i + 1, len(v) - 1)
    w = (pos - i).reshape((-1,) + (1,) * (v.ndim - 1))
    return v[i] * (1 - w) + v[j] * w
