"""Two-pass end-pointing: the first pass proposes, the arbitrator decides.

First pass, per stream, on every batch: a candidate once the pause after
speech reaches ``candidate_ms``, or as soon as the pause starts when the
recognizer's last pass already closed its segment on sentence-final
punctuation with a confident token (``early_prob``). A pause of ``hard_ms`` and
an utterance of ``max_utterance_s`` always end the turn.

Second pass: for each new recognizer pass while a candidate stands, the
arbitrator reads that pass's encoder states, as soon as the encoder has run,
and the transcript so far (the previous pass's: the decoder has not run yet),
and gives the probability that the turn is over. Under ``threshold`` it is
asked once more when that pass has decoded, with the same encoder states and
the pass's own transcript (``reread``): the previous pass ran while the user
was still speaking, and its last word is often cut off. Still under, the turn
goes on and it is asked again on the next pass, as the pause grows. Without an
arbitrator (no weights for the model, or ``arbitrator=False``) the turn ends
at ``pause_only_ms`` of pause, the engine's old rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from asr.events import Endpoint
from asr.frames import SAMPLE_RATE
from asr.streaming import SENTENCE_END

from .features import Features, from_state, transcript

@dataclass(frozen=True)
class EndpointConfig:
    candidate_ms: float = 30.0  # T1: a pause this long proposes an endpoint (100: EP50 ~65 ms later, README)
    early_prob: float = 0.9  # ... or any pause, when the decoder ended a sentence this surely (>1: off)
    hard_ms: float = 1500.0  # a pause this long always ends the turn
    max_utterance_s: float = 30.0  # so does this much speech
    threshold: float = 0.5  # arbitrator probability that accepts
    pause_only_ms: float = 1000.0  # the rule when there is no arbitrator
    reread: bool = True  # a pass the arbitrator rejected is asked about again once it has decoded


@dataclass
class _Turn:
    utt: int  # the StreamState.utt_start this belongs to
    first: float | None = None  # when the current candidate was proposed
    asked: float = -1.0  # audio end of the pass last asked about
    reread: float = -1.0  # ... and of the pass last asked again, with its own transcript


@dataclass
class Decision:
    """One arbitrator call, for tracing (training data, the benchmark's threshold sweep)."""
    stream: str
    t: float
    pause_ms: float
    speech_end: float
    prob: float
    features: Features
    text: str
    after_decoder: bool = False  # asked again once the pass's own decoder had run


@dataclass
class Endpointer:
    config: EndpointConfig = field(default_factory=EndpointConfig)
    arbitrator: object | None = None  # endpointing.arbitrator.Arbitrator
    on_decision: Callable[[Decision], None] | None = None

    def __post_init__(self):
        self._turns: dict[str, _Turn] = {}

    def decide(self, st, pause, t: float, again: bool = False) -> tuple[bool, list[Endpoint]]:
        """Should this stream's turn end now? ``st``: asr.streaming.StreamState; ``pause``: its PauseState.

        ``again``: the pass asked about after its encoder has now decoded, and the arbitrator said
        no then; ask once more with the same encoder states and the pass's own transcript, which
        no longer ends in a word the previous pass cut off while the user was still speaking."""
        if st.closed:
            return True, []
        if pause is None or not st.in_speech:
            return False, []
        turn = self._turns.get(st.id)
        if turn is None or turn.utt != st.utt_start:
            turn = self._turns[st.id] = _Turn(st.utt_start)
        speaking = pause.speech or pause.speech_end is None
        if speaking:
            turn.first = None
        rule = self._rule(st, pause)
        if rule is not None:  # the turn ends whatever the arbitrator would say
            end = st.audio_end if rule == "long" else pause.speech_end
            return True, [Endpoint(st.id, t, end, 1, True, None, (turn.first or t) if rule == "hard" else t)]
        if speaking or self.arbitrator is None:
            return False, []
        c = self.config
        if turn.first is None and (pause.pause_ms >= c.candidate_ms or self._sure_end(st, pause)):
            turn.first = t
        if again:
            if not c.reread or turn.first is None or turn.asked != st.enc_end or turn.reread >= st.enc_end:
                return False, []
            turn.reread = st.enc_end
        elif turn.first is None or st.enc is None or st.enc_end <= turn.asked or st.enc_end < pause.speech_end:
            return False, []  # no candidate, or no pass since the last question that saw the pause
        turn.asked = st.enc_end
        feats = from_state(st, pause.pause_ms, _utterance(st))
        prob = self.arbitrator.prob([feats])[0]
        if self.on_decision is not None:
            self.on_decision(Decision(st.id, t, pause.pause_ms, pause.speech_end, prob, feats, transcript(st), again))
        accepted = prob >= c.threshold
        return accepted, [Endpoint(st.id, t, pause.speech_end, 2, accepted, prob, turn.first)]

    def must_end(self, st, pause) -> bool:
        """Whether the turn ends at this pause without asking the arbitrator: the stream closed,
        the hard pause limit, the longest utterance, or the pause rule where there is no arbitrator."""
        return st.closed or (pause is not None and st.in_speech and self._rule(st, pause) is not None)

    def _rule(self, st, pause) -> str | None:
        c = self.config
        if pause.speech or pause.speech_end is None:
            return "long" if _utterance(st) >= c.max_utterance_s else None
        if pause.pause_ms >= c.hard_ms:
            return "hard"
        if self.arbitrator is None and pause.pause_ms >= c.pause_only_ms:
            return "pause"
        return None

    def _sure_end(self, st, pause) -> bool:
        sig = st.signals
        last = st.tentative[-1].text if st.tentative else st.words[-1].w if st.words else ""
        if sig is None or sig.closed_gap <= 0 or sig.last_prob < self.config.early_prob:
            return False
        return last.strip().endswith(SENTENCE_END)


def _utterance(st) -> float:
    """Seconds since the utterance's speech onset."""
    return st.audio_end - (st.onset if st.onset is not None else st.utt_start / SAMPLE_RATE)
