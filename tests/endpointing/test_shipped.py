"""The shipped arbitrator inside the streaming engine, and on held-out dev clips."""
import numpy as np
import pytest

from asr.events import Endpoint, Final
from asr.streaming import StreamingRecognizer
from bench.replay import StreamInput, replay
from bench.wer import normalize
from endpointing.arbitrator import load_arbitrator
from endpointing.first_pass import EndpointConfig, Endpointer
from tests.conftest import DEMO_TEXT


@pytest.fixture(scope="module")
def lm(recognizer):
    return recognizer.lm


def test_engine_ends_turns_through_the_arbitrator(lm, demo_audio):
    rec = StreamingRecognizer(lm)
    assert rec.endpointer.arbitrator is not None  # weights ship for the default model
    audio = np.concatenate([np.zeros(8000, np.float32), demo_audio, np.zeros(40000, np.float32)])
    r = replay([StreamInput("s0", audio)], rec, compute_scale=0.0)
    eps = [e for e in r.events if isinstance(e, Endpoint)]
    finals = [e for e in r.events if isinstance(e, Final)]
    assert normalize(" ".join(f.text for f in finals)) == normalize(DEMO_TEXT)
    decided = [e for e in eps if e.pass_ == 2]
    assert decided and all(0 <= e.prob <= 1 and e.first_pass <= e.t for e in decided)
    # every final but the end-of-stream one follows an accepted endpoint of the same step: the
    # endpoint comes when the encoder has run, the final once the decoder has (the same step's words)
    for f in finals[:-1]:
        assert any(e.accepted and f.t - 0.5 < e.t <= f.t for e in eps)
    last_speech = len(demo_audio) / 16000 + 0.5
    assert finals[-1].t < last_speech + 1.6  # ended by the endpointer, not by the end of the file


def test_shipped_arbitrator_tells_ends_from_mid_sentence_pauses(lm, dev_manifest):
    from bench.manifest import load_manifest
    from endpointing.data import dev_cases, split
    from endpointing.train import evaluate, examples

    items = [it for it in load_manifest(dev_manifest) if split(it.id) == "test"][:8]
    cases = dev_cases(items, lm, seed=5, pause_range=(0.5, 1.0))
    data = examples(cases, StreamingRecognizer(lm), log=None)
    r = evaluate(load_arbitrator("tiny.en"), data)
    assert r["auc"] >= 0.85, r


def test_the_arbitrator_is_asked_before_the_passs_decoder_and_again_after(lm, demo_audio):
    """It reads the new pass's encoder states while the transcript is still the previous pass's;
    when it says no, it is asked once more about that pass, with the pass's own transcript."""
    seen = []

    class Spy:
        def prob(self, feats):
            st = rec.streams["s0"]
            seen.append((st.enc_end, st.signals.audio_end if st.signals else None, rec.passes))
            return [0.0]

    rec = StreamingRecognizer(lm, endpointer=Endpointer(EndpointConfig(), Spy()))
    audio = np.concatenate([demo_audio[:48000], np.zeros(24000, np.float32)])
    r = replay([StreamInput("s0", audio)], rec, compute_scale=0.0)
    assert seen and r.events
    firsts = {}
    for enc_end, text_end, passes in seen:
        firsts.setdefault(enc_end, (text_end, passes))
    assert len(seen) == 2 * len(firsts)  # every pass asked about twice (none gave way: no compute time)
    for enc_end, text_end, passes in seen:
        if (text_end, passes) == firsts[enc_end]:  # before the decoder of the asked pass
            assert text_end is None or text_end < enc_end
        else:  # after it, and before the next pass
            assert text_end == enc_end and passes == firsts[enc_end][1] + 1
