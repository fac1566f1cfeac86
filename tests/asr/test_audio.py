"""Bad and unusual input, end to end through the recognizer."""
import logging
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import soxr

from asr.audio import AudioError, iter_blocks, to_mono_16k
from bench.wer import normalize
from tests.conftest import DEMO_TEXT

WANT = normalize(DEMO_TEXT)


def test_missing_file(recognizer, tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        recognizer.transcribe_file(tmp_path / "nope.wav")


def test_directory_is_not_audio(recognizer, tmp_path):
    with pytest.raises(AudioError, match="directory"):
        recognizer.transcribe_file(tmp_path)


def test_corrupt_file(recognizer, tmp_path):
    p = tmp_path / "junk.wav"
    p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    with pytest.raises(AudioError, match="cannot read audio"):
        recognizer.transcribe_file(p)


def test_truncated_file_is_read_as_far_as_it_goes(recognizer, demo_audio, tmp_path):
    p = tmp_path / "cut.wav"
    sf.write(p, demo_audio, 16000, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # header still claims the full length
    t = recognizer.transcribe_file(p)
    assert normalize(t.text).startswith("ever tried ever failed")


def test_zero_length(recognizer, tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        recognizer.transcribe_file(p)
    with pytest.raises(AudioError, match="zero-length"):
        recognizer.transcribe(np.zeros(0, np.float32), 16000)


@pytest.mark.parametrize("level", [0.0, 1e-4])
def test_silence_gives_no_words(recognizer, level):
    x = (np.random.default_rng(1).standard_normal(16000 * 8) * level).astype(np.float32)
    t = recognizer.transcribe(x, 16000)
    assert t.text == "" and t.segments == () and t.words == ()


@pytest.mark.parametrize("kind", ["hum", "noise"])
def test_hum_and_noise_give_no_words(recognizer, kind):
    n = np.arange(16000 * 6)
    if kind == "hum":  # mains hum with a harmonic, well above the silence gate
        x = 0.05 * np.sin(2 * np.pi * 50 * n / 16000) + 0.02 * np.sin(2 * np.pi * 150 * n / 16000)
    else:
        x = np.random.default_rng(2).standard_normal(len(n)) * 0.01
    t = recognizer.transcribe(x.astype(np.float32), 16000)
    assert t.text == "", t.text


def test_non_finite_samples_are_zeroed_with_a_warning(recognizer, demo_audio, caplog):
    x = demo_audio.copy()
    x[1000:1010] = np.nan
    x[5000] = np.inf
    x[6000] = -np.inf
    with caplog.at_level(logging.WARNING):
        t = recognizer.transcribe(x, 16000)
    assert normalize(t.text) == WANT
    assert "12 non-finite samples" in caplog.text


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_sample_rate(recognizer, demo_audio, rate, tmp_path):
    x = soxr.resample(demo_audio, 16000, rate)
    assert normalize(recognizer.transcribe(x, rate).text) == WANT
    p = tmp_path / f"r{rate}.flac"
    sf.write(p, x, rate)
    assert normalize(recognizer.transcribe_file(p).text) == WANT


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_downmixed(recognizer, demo_audio, channels, tmp_path):
    x = np.stack([demo_audio * (0.5 + 0.1 * c) for c in range(channels)], axis=1)
    p = tmp_path / "multi.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    assert normalize(recognizer.transcribe_file(p).text) == WANT
    assert normalize(recognizer.transcribe(x, 16000).text) == WANT


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "PCM_32"),
                                         ("WAV", "FLOAT"), ("WAV", "DOUBLE"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_sample_formats(recognizer, demo_audio, tmp_path, fmt, subtype):
    p = tmp_path / f"clip.{fmt.lower()}"
    sf.write(p, demo_audio, 16000, format=fmt, subtype=subtype)
    assert normalize(recognizer.transcribe_file(p).text) == WANT


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, np.float64])
def test_integer_arrays_are_scaled(recognizer, demo_audio, dtype):
    if dtype == np.uint8:
        x = np.clip(demo_audio * 128 + 128, 0, 255).astype(np.uint8)
    elif np.issubdtype(dtype, np.integer):
        x = (demo_audio * np.iinfo(dtype).max).astype(dtype)
    else:
        x = demo_audio.astype(dtype)
    y = to_mono_16k(x, 16000)
    assert y.dtype == np.float32 and np.abs(y - demo_audio).max() < 0.01
    assert normalize(recognizer.transcribe(x, 16000).text) == WANT


def test_bad_shapes_and_rates():
    with pytest.raises(AudioError, match="shape"):
        to_mono_16k(np.zeros((2, 2, 2)), 16000)
    with pytest.raises(AudioError, match="positive"):
        to_mono_16k(np.zeros(10), 0)


def test_streamed_resampling_keeps_length(tmp_path, demo_audio):
    p = tmp_path / "a.wav"
    sf.write(p, soxr.resample(demo_audio, 16000, 44100), 44100)
    blocks = list(iter_blocks(p, block_seconds=0.37))
    assert len(blocks) > 10
    assert abs(sum(len(b) for b in blocks) - len(demo_audio)) <= 16


def test_two_hour_file_in_bounded_memory(recognizer, demo_audio, tmp_path):
    """2 hours at 8 kHz, speech near both ends: long-form seek finds both, memory stays small."""
    minutes, rate = 120, 8000
    demo_audio = soxr.resample(demo_audio, 16000, rate)
    p = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    spots = {10 * rate: demo_audio, (minutes * 60 - 15) * rate: demo_audio}
    with sf.SoundFile(p, "w", rate, 1, "PCM_16") as f:
        for start in range(0, minutes * 60 * rate, 60 * rate):
            block = (rng.standard_normal(60 * rate) * 2e-4).astype(np.float32)
            for at, clip in spots.items():
                if start <= at < start + 60 * rate:
                    block[at - start: at - start + len(clip)] += clip
            f.write(block)
    tracemalloc.start()
    t = recognizer.transcribe_file(p)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    whole = minutes * 60 * 16000 * 4  # the file as float32 at 16 kHz: 460 MB
    assert peak < 30e6, f"peak {peak / 1e6:.0f} MB of {whole / 1e6:.0f} MB"
    assert normalize(t.text) == WANT + " " + WANT
    first, last = t.segments[0], t.segments[-1]
    assert abs(first.start - 10) < 1.5
    assert abs(last.start - (minutes * 60 - 15)) < 1.5
    assert t.duration == pytest.approx(minutes * 60, abs=0.01)
