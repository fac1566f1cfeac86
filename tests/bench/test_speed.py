"""pytest-benchmark: our recognizer and faster-whisper on the same clips.

`make test` runs each once as a smoke test (timing is off); `make bench`
times them (`--benchmark-enable`) and prints both side by side. No timing is
asserted here: compare the two rows of one run.
"""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def clips(demo_audio):
    # eight clips of 2-10 s cut from the demo, like short commands or dev-set prompts
    return [demo_audio[: int(16000 * s)] for s in (2.2, 3.0, 3.6, 4.5, 5.2, 6.4, 8.0, 9.9)]


@pytest.mark.benchmark(group="offline-8-clips")
def test_speechfront(benchmark, recognizer, clips):
    def run():
        return [t.text for _, t in recognizer._run((i, iter([c])) for i, c in enumerate(clips))]

    texts = benchmark(run)
    assert len(texts) == len(clips) and all(texts)


@pytest.mark.benchmark(group="offline-8-clips")
def test_faster_whisper(benchmark, clips):
    pytest.importorskip("faster_whisper")
    from bench.peers import FasterWhisper

    fw = FasterWhisper(threads=2)
    texts = benchmark(lambda: [fw.transcribe(c) for c in clips])
    assert all(texts)


@pytest.mark.benchmark(group="log-mel")
def test_log_mel_batch(benchmark):
    import torch

    from asr.whisper.features import LogMel

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((16, 16000 * 10)).astype(np.float32))
    mel = LogMel()
    out = benchmark(mel, x)
    assert out.shape == (16, 80, 1000)
