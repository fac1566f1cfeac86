"""Play chunks as they arrive, through sounddevice (PortAudio)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class PlaybackError(RuntimeError):
    pass


def _sounddevice():
    try:
        import sounddevice
    except ImportError as e:
        raise PlaybackError("playback needs sounddevice: pip install sounddevice") from e
    except OSError as e:  # the module imports but PortAudio itself is missing
        raise PlaybackError(f"playback needs the PortAudio library (Debian: apt install libportaudio2): {e}") from e
    return sounddevice


def play(chunks: Iterable[np.ndarray], sample_rate: int, device=None) -> None:
    """Blocking playback of float32 chunks; each is written as soon as it is produced."""
    sd = _sounddevice()
    try:
        with sd.OutputStream(samplerate=sample_rate, channels=1, dtype="float32", device=device) as out:
            for c in chunks:
                if len(c):
                    out.write(np.ascontiguousarray(c, dtype=np.float32).reshape(-1, 1))
    except sd.PortAudioError as e:
        raise PlaybackError(f"cannot play audio: {e}") from e
