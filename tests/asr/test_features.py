import numpy as np
import pytest
import torch

from asr.whisper.features import LogMel, mel_filters


def test_filters_match_faster_whisper_reference():
    fe = pytest.importorskip("faster_whisper.feature_extractor")
    ref = fe.FeatureExtractor(feature_size=80).mel_filters
    ours = mel_filters(80).numpy()
    assert ours.shape == ref.shape == (80, 201)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


def test_log_mel_matches_independent_numpy_implementation(demo_audio):
    fe = pytest.importorskip("faster_whisper.feature_extractor")
    audio = demo_audio[: 16000 * 5]
    ref = fe.FeatureExtractor(feature_size=80)(audio, padding=0)
    ours = LogMel()(torch.from_numpy(audio))[0].numpy()
    n = min(ref.shape[1], ours.shape[1])
    assert abs(ref.shape[1] - ours.shape[1]) <= 1
    np.testing.assert_allclose(ours[:, :n], ref[:, :n], atol=2e-3)


def test_pure_tone_peaks_in_the_right_mel_bin():
    t = np.arange(16000) / 16000
    f = 1000.0
    mel = LogMel()(torch.from_numpy(np.sin(2 * np.pi * f * t).astype(np.float32)))[0]
    peak = int(mel[:, 10:-10].mean(1).argmax())
    centres = _slaney_centres()
    assert abs(centres[peak] - f) < 60


def _slaney_centres():
    mels = np.linspace(0, 45.245640471924965, 82)[1:-1]
    hz = np.where(mels < 15, mels * 200 / 3, 1000 * np.exp(np.log(6.4) / 27 * (mels - 15)))
    return hz


def test_batched_equals_single_and_range():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((3, 8000)).astype(np.float32)) * torch.tensor([[0.01], [0.1], [1.0]])
    lm = LogMel()
    batch = lm(x)
    for i in range(3):
        torch.testing.assert_close(batch[i], lm(x[i])[0])
    assert batch.shape == (3, 80, 50)
    # the clamp keeps every value within 8 log10 units of the window's peak
    span = batch.amax(dim=(1, 2)) - batch.amin(dim=(1, 2))
    assert float(span.max()) <= 2.0 + 1e-5
