"""The whole microphone loop through the fake devices, in real time: question in, one spoken reply
out; barge-in; Ctrl-C; recording and replaying a session."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bench.wer import corpus_wer, normalize
from endpointing.data import speech_bounds
from speechfront.devices import FakeDevices
from speechfront.loop import Conversation, LoopConfig
from speechfront.responders import Echo
from tts.synth import loopback
from tts.tags import parse

QUESTION = "Could you tell me what time the museum opens tomorrow morning?"
LONG_REPLY = ("The museum opens at nine in the morning on weekdays, and at ten on weekends. "
              "Tickets are sold at the front desk until one hour before closing time. "
              "Guided tours leave from the main hall every hour, on the hour.")
INTERRUPTION = "And what about public holidays?"
SR = 16000


@pytest.fixture(scope="module")
def lm():
    import torch

    from asr.whisper.load import load_model

    torch.set_num_threads(2)
    return load_model("tiny.en", "cpu")


def _engine(lm):
    from asr.streaming import StreamingRecognizer

    return StreamingRecognizer(lm)


def _said(synth, text: str) -> np.ndarray:
    audio, sr = synth.synthesize(text)
    return loopback(audio, sr, pad_s=0.0)


def _heard(recognizer, audio: np.ndarray) -> str:
    return recognizer.transcribe(audio).text


def _endpoints(events) -> list:
    return [e for e in events if e.type == "endpoint" and e.accepted]


@pytest.fixture(scope="module")
def session(lm, synth, tmp_path_factory):
    """One recorded session: a question (our voice), half duplex, the echo responder, with the
    speaker's sound coming back into the microphone at -10 dB."""
    from speechfront.record import Recorder

    question = _said(synth, QUESTION)
    mic = np.concatenate([np.zeros(SR // 2, np.float32), question])
    devices = FakeDevices(mic, trailing_s=5.0, echo_gain=0.3)
    rec = Recorder(tmp_path_factory.mktemp("rec"))
    conv = Conversation(devices, _engine(lm), Echo(), synth, recorder=rec)
    turns = conv.run()
    rec.close()
    return conv, turns, devices, rec.dir, mic


def test_question_gives_one_turn_one_endpoint_one_reply(session, recognizer):
    conv, turns, devices, _, _ = session
    assert len(turns) == 1, [t.text for t in turns]  # the reply's own echo did not become a turn
    assert corpus_wer([QUESTION], [turns[0].text]) <= 10.0, turns[0].text
    assert len(_endpoints(conv.events)) == 1
    assert sum(e.type == "final" for e in conv.events) == 1
    t = turns[0]
    assert t.error is None and t.reply_start is not None and t.reply_start > t.final_at >= t.speech_end
    spoken = devices.speaker.played()
    assert not spoken[: int(t.reply_start * SR) - 1].any()  # nothing played before the reply
    heard = _heard(recognizer, spoken[int(t.reply_start * SR):])
    assert corpus_wer([parse(t.reply).plain()], [heard]) <= 10.0, (t.reply, heard)


def test_recorded_session_has_its_audio_events_and_turns(session):
    conv, turns, devices, folder, mic = session
    import soundfile as sf

    raw, sr = sf.read(str(folder / "mic.wav"), dtype="float32")
    t = turns[0]
    assert sr == SR and len(raw) == len(devices.mic)
    before = int(t.reply_start * SR)  # until the reply, the microphone is the question alone
    np.testing.assert_allclose(raw[:before], devices.mic[:before], atol=1 / 32768 + 1e-6)
    heard, _ = sf.read(str(folder / "heard.wav"), dtype="float32")
    during = heard[int((t.reply_start + 0.1) * SR): int((t.reply_end - 0.1) * SR)]
    assert len(during) and not during.any()  # half duplex: the engine heard silence meanwhile
    assert raw[int((t.reply_start + 0.1) * SR): int((t.reply_end - 0.1) * SR)].any()  # the echo was there
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == [e.type for e in conv.events]
    (saved,) = [json.loads(line) for line in (folder / "turns.jsonl").read_text().splitlines()]
    assert saved["text"] == t.text and saved["reply_start"] == pytest.approx(t.reply_start)
    spk, rate = sf.read(str(folder / "speaker.wav"), dtype="float32")
    assert rate == SR and np.abs(spk).max() > 0.05
    assert abs(len(spk) - len(raw)) < 480  # aligned with the microphone, frame by frame
    line = devices.speaker.played()
    n = min(len(spk), len(line))
    np.testing.assert_allclose(spk[:n], line[:n], atol=1 / 32768 + 1e-6)
    assert not spk[n:].any()


def test_recorded_session_replays_with_the_same_words(session, lm):
    """`speechfront stream heard.wav` sees what the loop's engine saw."""
    _, turns, _, folder, _ = session
    from asr.audio import read_audio
    from bench.replay import StreamInput, replay

    result = replay([StreamInput("s0", read_audio(folder / "heard.wav"))], _engine(lm), compute_scale=0.0)
    finals = [e.text for e in result.events if e.type == "final"]
    assert [normalize(x) for x in finals] == [normalize(turns[0].text)]


def test_barge_in_stops_the_reply_within_100_ms_and_hears_the_user(lm, synth):
    question, interruption = _said(synth, QUESTION), _said(synth, INTERRUPTION)
    at = 0.5 + len(question) / SR + 4.0  # well inside the long reply, on any machine
    mic = np.zeros(int(at * SR) + len(interruption), np.float32)
    mic[SR // 2: SR // 2 + len(question)] = question
    mic[int(at * SR):] = interruption
    onset = at + speech_bounds(interruption)[0]
    devices = FakeDevices(mic, trailing_s=4.0, echo_gain=0.3)
    conv = Conversation(devices, _engine(lm), lambda text: LONG_REPLY, synth, LoopConfig(barge_in=True))
    turns = conv.run()
    assert len(turns) == 2, [t.text for t in turns]
    first, second = turns
    assert first.reply_start is not None and first.reply_start < onset  # the reply was playing
    assert first.interrupted_at is not None, "the user's speech did not stop the reply"
    print(f"\nbarge-in: playback stopped {1000 * (first.interrupted_at - onset):.0f} ms after the speech onset")
    assert 0.0 <= first.interrupted_at - onset <= 0.1, first.interrupted_at - onset
    line = devices.speaker.line
    quiet_until = second.reply_start if second.reply_start is not None else len(line) / SR
    assert not line[int(first.interrupted_at * SR) + 1: int(quiet_until * SR)].any()  # it stayed stopped
    assert corpus_wer([INTERRUPTION], [second.text]) <= 20.0, second.text
    assert second.interrupted_at is None, "the second reply stopped with nobody talking over it"


def test_half_duplex_ignores_speech_during_the_reply(lm, synth):
    """Without --barge-in the same interruption is not heard while the reply plays."""
    question, interruption = _said(synth, QUESTION), _said(synth, INTERRUPTION)
    at = 0.5 + len(question) / SR + 4.0
    mic = np.zeros(int(at * SR) + len(interruption), np.float32)
    mic[SR // 2: SR // 2 + len(question)] = question
    mic[int(at * SR):] = interruption
    devices = FakeDevices(mic, trailing_s=1.0)
    conv = Conversation(devices, _engine(lm), lambda text: LONG_REPLY, synth)
    turns = conv.run()
    assert len(turns) == 1 and turns[0].interrupted_at is None


class _StopAfter(FakeDevices):
    """Ctrl-C after `seconds` of microphone audio."""

    def __init__(self, mic, seconds: float):
        super().__init__(mic, trailing_s=0.0)
        self.stop_at = int(seconds * SR)
        self.closed = False

    def read(self, timeout):
        if self._pos >= self.stop_at:
            raise KeyboardInterrupt
        return super().read(timeout)

    def close(self):
        self.closed = True


def test_ctrl_c_mid_utterance_flushes_what_was_recognized(lm, demo_audio):
    devices = _StopAfter(demo_audio, 2.6)  # "Ever tried. Ever failed." and no pause after it
    conv = Conversation(devices, _engine(lm))
    with pytest.raises(KeyboardInterrupt):
        conv.run()
    assert devices.closed
    assert len(conv.turns) == 1
    assert normalize(conv.turns[0].text).startswith("ever tried"), conv.turns[0].text


def test_print_mode_transcribes_without_replying(lm, demo_audio):
    devices = FakeDevices(demo_audio[: int(2.9 * SR)], trailing_s=2.0)
    turns = Conversation(devices, _engine(lm)).run()
    assert len(turns) == 1 and turns[0].finished and turns[0].reply_start is None
    assert not devices.speaker.played().any()


def test_a_failing_responder_is_reported_and_the_loop_goes_on(lm, synth, demo_audio):
    def broken(text):
        raise RuntimeError("no answer today")

    devices = FakeDevices(demo_audio[: int(2.9 * SR)], trailing_s=2.0)
    turns = Conversation(devices, _engine(lm), broken, synth).run()
    assert len(turns) == 1 and turns[0].error == "no answer today"


def test_a_recorded_question_from_the_dev_set(lm, synth, recognizer, dev_manifest):
    """A person's recording (ARCTIC, CC0): "Will we ever forget it?" through the whole loop."""
    from asr.audio import read_audio
    from bench.manifest import load_manifest

    (item,) = [it for it in load_manifest(dev_manifest) if it.id == "arctic/arctic_a0005"]
    mic = np.concatenate([np.zeros(SR // 2, np.float32), read_audio(item.audio)])
    devices = FakeDevices(mic, trailing_s=4.0, echo_gain=0.3)
    conv = Conversation(devices, _engine(lm), Echo(), synth)
    turns = conv.run()
    assert [normalize(t.text) for t in turns] == [normalize(item.text)]
    assert len(_endpoints(conv.events)) == 1
    t = turns[0]
    heard = _heard(recognizer, devices.speaker.played()[int(t.reply_start * SR):])
    assert normalize(heard) == normalize(parse(t.reply).plain()), (t.reply, heard)


def test_a_pass_takes_in_the_microphone_and_sees_a_waiting_pause(lm, demo_audio):
    """What a pass asks between decoding steps: the blocks captured meanwhile go to the engine's
    batcher, and the answer is yes once a pause batch waits."""
    import time

    audio = np.concatenate([demo_audio[:SR], np.zeros(SR // 2, np.float32)])  # "Ever tried." then a pause
    devices = FakeDevices(audio, trailing_s=0.0)
    conv = Conversation(devices, _engine(lm))
    devices.start()
    assert conv._waiting() is False and conv._ready is None  # nothing captured yet
    time.sleep(len(audio) / SR + 0.1)
    assert conv._waiting() is True
    queued = sum(len(f) for f in conv._ready.frames.values())
    assert queued + conv._batcher.pending == len(audio) // 480  # every whole frame went in


def test_a_batch_that_waited_goes_as_the_batcher_cut_it(lm, demo_audio):
    """A pause batch queued while a pass ran goes as the batcher cut it: the frames heard after
    it stay in the batcher for the next batch (one stream: taking them cost WER in the replay
    harness), and together they are every frame, in order."""
    import time

    audio = np.concatenate([demo_audio[:SR], np.zeros(SR // 2, np.float32)])
    devices = FakeDevices(audio, trailing_s=0.0)
    conv = Conversation(devices, _engine(lm))
    devices.start()
    time.sleep(len(audio) / SR + 0.1)
    assert conv._waiting() is True  # a pass's question: the pause batch waits for it
    pending = conv._batcher.pending
    ran = []
    conv._step = ran.append
    conv._run_ready()
    assert len(ran) == 1 and ran[0].reason == "pause" and conv._ready is None
    assert pending > 0 and conv._batcher.pending == pending
    conv._queue(conv._batcher.flush(conv._clock))
    conv._run_ready()
    got = [f.index for b in ran for f in b.frames["mic"]]
    assert len(ran) == 2 and got == list(range(len(audio) // 480))
