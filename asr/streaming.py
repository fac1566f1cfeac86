"""StreamingRecognizer: batches of 30 ms frames in, partial and final events out.

Per stream it keeps the audio of the current utterance since the window
start. Each batch re-runs the encoder over every stream's window (cut to its
length plus a little silence, batched across streams) and beam search with
the committed tokens forced as the decoder's prefix, so a committed word is
never revised. The end-pointer is asked between the encoder and the decoder:
it reads the new encoder states and the previous pass's transcript, so an
endpoint need not wait for beam search. A lookahead policy commits words.
Once a committed sentence ends, the window drops the audio before it (its
text becomes the decoder's context), so the cost of a pass stays bounded on
long speech. The encoder states of each pass are kept for the end-pointing
arbitrator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from .batcher import Batch
from .events import CommittedWord, Event, Final, Partial
from .frames import SAMPLE_RATE
from .lookahead import FixedLookahead, TentativeWord, parse_policy, word_key
from .pause import PauseState
from .results import Hypothesis
from .whisper.align import align, split_words
from .whisper.decode import DecodeOptions, WindowDecoder, same_text_keys
from .whisper.features import LogMel
from .whisper.load import LoadedModel
from .whisper.model import Preempted
from .whisper.tokenizer import TIME_PRECISION
from .whisper.windows import FRAME_SAMPLES, encode_windows, encoder_frames

SENTENCE_END = (".", "?", "!")
CLAUSE_END = (",", ";", ":")


@dataclass(frozen=True)
class StreamingConfig:
    window_pad: float = 6.0  # seconds of silence after each window (2 s: the decoder loops far more)
    # seconds of silence before each window. The offline recognizer's 0.3 s fixed streamed first
    # words ("water in the kata" for "Wada and Nakata") but lost as many words elsewhere on 233
    # dev clips (README), so it is off
    lead_pad: float = 0.0
    rerank_start_ms: float = 200.0  # with a reranker: score the N-best once a pause is this long
    trim_after: float = 6.0  # drop audio before a committed sentence end once the window is this long
    max_window: float = 24.0  # past this, drop audio before the last committed word regardless
    # give up a pass (between encoder blocks or decoding steps) when a pause or end batch is waiting
    # for the device: the next pass sees all this one's audio and more, and the end-pointer's
    # question should not queue behind it
    preempt: bool = True
    # timestamps on: closing the last segment is how the decoder says the speech has ended
    decode: DecodeOptions = field(default_factory=lambda: DecodeOptions(beam_size=3, best_of=3, temperatures=(0.0,)))
    # a pass whose turn the end-pointer ends after the encoder gives the final's last words: it
    # decodes with these options (None: as every pass)
    final_decode: DecodeOptions | None = field(default_factory=lambda: DecodeOptions(beam_size=5, best_of=5, temperatures=(0.0,)))


@dataclass(frozen=True)
class EndSignals:
    """What the decoder's last pass says about the end of speech."""
    last_prob: float  # probability of the hypothesis's last text token (often the final punctuation)
    eot_prob: float  # probability of end-of-text after the hypothesis
    closed_gap: float  # seconds between the segment's closing timestamp and the audio end (0: open)
    audio_end: float  # the stream time the pass saw audio up to


@dataclass
class StreamState:
    id: str
    policy: object
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    window_start: int = 0  # stream sample where `audio` begins
    received: int = 0  # samples received
    frames_seen: int = 0
    frame_indices_ok: bool = True
    forced: list[int] = field(default_factory=list)  # committed tokens inside the window
    carried: list[int] = field(default_factory=list)  # ... of them, the last utterance's (see _reset)
    prompt: list[int] = field(default_factory=list)  # committed tokens before it
    words: list[CommittedWord] = field(default_factory=list)  # committed words of this utterance
    word_tokens: list[tuple[int, ...]] = field(default_factory=list)  # their tokens
    trimmed: int = 0  # words whose tokens moved from `forced` to `prompt`
    utt_start: int = 0  # stream sample of the last reset
    tentative: list[TentativeWord] = field(default_factory=list)
    nbest: list[tuple[str, float, float]] = field(default_factory=list)  # (text, avg, sum log-prob)
    spec: tuple | None = None  # (N-best texts, future of their LM scores, audio time it started)
    history: list[str] = field(default_factory=list)  # earlier finals: context for the reranker
    in_speech: bool = False  # speech since the last final
    onset: float | None = None  # where that speech started (the pause tracker's speech start)
    last_pass: int = -1  # `received` at the last pass
    shown: tuple[str, str] = ("", "")
    enc: torch.Tensor | None = None  # last pass's encoder states over the real audio
    enc_end: float = 0.0  # the stream time those states reach
    signals: EndSignals | None = None  # the last pass's end-of-speech evidence
    closed: bool = False
    due: float | None = None  # stream time at which the policy would commit the next word

    @property
    def audio_end(self) -> float:
        return self.received / SAMPLE_RATE


class StreamingRecognizer:
    def __init__(self, lm: LoadedModel, config: StreamingConfig = StreamingConfig(),
                 policy_factory: Callable[[], object] | None = None, reranker=None, endpointer=None):
        """policy_factory: a new lookahead policy per utterance; by default `dynamic` (the
        trained rule where one ships for this model). endpointer: an endpointing.Endpointer; by
        default two-pass with the shipped arbitrator for this model, or the pause rule where
        there is none."""
        if endpointer is None:
            from endpointing import default_endpointer

            endpointer = default_endpointer(lm.name)
        self.endpointer = endpointer
        self.lm = lm
        self.reranker = reranker
        self.rerank_waits_ms: list[float] = []  # how long each final waited for the LM
        self.config = config
        self.tok = lm.tokenizer
        self.mel = LogMel(lm.model.dims.n_mels, lm.device)
        self.decoder = WindowDecoder(lm, config.decode)
        self.final_decoder = WindowDecoder(lm, config.final_decode) if config.final_decode else None
        self.policy_factory = policy_factory or (lambda: parse_policy("dynamic", lm.name))
        self.streams: dict[str, StreamState] = {}
        self.passes = 0
        self.preempted = 0  # passes given up (in the encoder or the decoder) for a waiting pause or end batch

    def state(self, stream: str) -> StreamState:
        if stream not in self.streams:
            self.streams[stream] = StreamState(stream, self.policy_factory())
        return self.streams[stream]

    def due(self) -> dict[str, float]:
        """Per stream, the stream time at which a pass would commit its next word if the
        reading holds: a batcher may cut a batch there rather than wait for its deadline."""
        return {s: st.due for s, st in self.streams.items() if st.due is not None and st.due > st.audio_end}

    # -- one batch ----------------------------------------------------------------------

    def step(self, batch: Batch, pauses: dict[str, PauseState], now: Callable[[], float],
             waiting: Callable[[], bool] | None = None) -> list[Event]:
        """Take a batch, run one pass for the streams that need it, return events.

        ``now()`` gives the audio-clock time once compute is done (the replay
        harness adds measured compute time; a live loop reads its clock).
        ``waiting()``: whether a pause or end batch is now waiting for the device; with
        ``config.preempt`` the pass then stops at its next encoder block or decoding step (its
        words wait for that batch's pass), unless its turn ends here, by a rule known before the
        pass (``Endpointer.must_end``) or by the arbitrator after the encoder: the final needs
        this pass's words.
        """
        for sid, frames in batch.frames.items():
            st = self.state(sid)
            for f in frames:
                if f.index != st.frames_seen:
                    st.frame_indices_ok = False
                st.frames_seen += 1
            st.audio = np.concatenate([st.audio] + [f.samples for f in frames])
            st.received += sum(len(f.samples) for f in frames)
            p = pauses.get(sid)
            if p is not None and p.speech_start is not None and p.speech_start * SAMPLE_RATE >= st.utt_start - 1:
                st.in_speech = True
                st.onset = p.speech_start if st.onset is None else st.onset
            st.closed = st.closed or frames[-1].last
        todo = [self.streams[s] for s in batch.frames if self._wants_pass(self.streams[s])]
        early: dict[str, tuple] = {}

        def ask() -> set[str]:  # between encoder and decoder: an endpoint need not wait for beam search
            t_enc = now()
            for st in todo:
                early[st.id] = self.endpointer.decide(st, pauses.get(st.id), t_enc)
            return {sid for sid, e in early.items() if e[0]}

        def stop() -> bool:  # an accepted endpoint needs this pass's words
            return not any(e[0] for e in early.values()) and waiting()

        # nor does a pass give way when a rule ends its turn at this batch
        gives_way = waiting is not None and self.config.preempt and \
            not any(self.endpointer.must_end(st, pauses.get(st.id)) for st in todo)
        preempted = False
        if todo:
            try:
                self._pass(todo, ask, stop if gives_way else None)
            except Preempted:
                preempted = True
                self.preempted += 1
        t = now()
        events: list[Event] = []
        for sid in batch.frames:
            st = self.streams[sid]
            p = pauses.get(sid)
            decoded = st in todo and not preempted
            if decoded:
                events += self._commit(st, t, final=False)
            ended, endpoints = early.pop(sid) if sid in early else self.endpointer.decide(st, p, t)
            if endpoints and not ended and decoded:  # the arbitrator said no
                ended, more = self.endpointer.decide(st, p, t, again=True)  # now with this pass's words
                endpoints = endpoints + more
            events += endpoints
            # a turn that ends with the speaker still talking (the longest utterance) goes on
            split = ended and p is not None and p.speech and not st.closed
            if split:
                self._keep_heard(st)
            elif ended:
                st.tentative = _without_filler(st.tentative, st.words)
            if ended and (st.words or st.tentative):
                events += self._commit(st, t, final=True)
                events.append(self._final(st, t, split))
            elif ended and st.in_speech:
                self._reset(st, split)  # speech that gave no words (a cough, noise), or none yet
            elif self.reranker is not None and p is not None and not p.speech:
                self._speculate(st, p.pause_ms, t)
            if not st.in_speech:
                self._drop_silence(st)
        return events

    def split(self, batch: Batch, states: dict[str, list[PauseState]]) -> list[tuple[Batch, dict[str, PauseState]]]:
        """The batch as the steps to run, each with its streams' last pause states.

        Normally one step. But a batch that waited for a busy device may hold a pause that reached
        the hard limit and then new speech: that turn has ended, so the frames up to the limit go
        in one step (the turn ends there) and the rest in a second, and no word of the next
        utterance lands in this one's final."""
        hard = getattr(getattr(self.endpointer, "config", None), "hard_ms", None)
        first: dict[str, list] = {}
        rest: dict[str, list] = {}
        for sid, frames in batch.frames.items():
            ps = states[sid]
            cut = next((i + 1 for i, p in enumerate(ps) if hard is not None and p.pause_ms >= hard), len(ps))
            if cut < len(ps) and ps[-1].pause_ms < hard:
                first[sid], rest[sid] = frames[:cut], frames[cut:]
            else:
                first[sid] = frames
        out = [(replace(batch, frames=first), {s: states[s][len(f) - 1] for s, f in first.items()})]
        if rest:
            out.append((replace(batch, frames=rest), {s: states[s][-1] for s in rest}))
        return out

    def _wants_pass(self, st: StreamState) -> bool:
        if not st.in_speech:
            return False
        interval = getattr(st.policy, "interval", 0.0)
        return st.closed or (st.received - st.last_pass) >= interval * SAMPLE_RATE

    # -- decoding -----------------------------------------------------------------------

    @torch.inference_mode()
    def _pass(self, todo: list[StreamState], after_encoder: Callable[[], set[str]] | None = None,
              stop: Callable[[], bool] | None = None) -> None:
        """after_encoder: called between encoder and decoder; returns the streams whose turn ends."""
        enc, frames = self._encode(todo, stop)
        ending = after_encoder() if after_encoder is not None else set()
        self._decode(todo, enc, frames, stop, ending)

    @torch.inference_mode()
    def _encode(self, todo: list[StreamState],
                stop: Callable[[], bool] | None = None) -> tuple[torch.Tensor, list[int]]:
        """Encoder states of the windows; raises Preempted (nothing changed) when stop() says so."""
        lead = self._lead()
        audios = [np.concatenate([np.zeros(lead, np.float32), st.audio]) if lead else st.audio for st in todo]
        enc = encode_windows(self.lm, self.mel, audios, self.config.window_pad, stop=stop)
        frames = [encoder_frames(lead + len(st.audio)) for st in todo]
        for i, st in enumerate(todo):
            st.enc = enc[i, encoder_frames(lead): frames[i]].float().cpu()
            st.enc_end = st.audio_end
        return enc, frames

    @torch.inference_mode()
    def _decode(self, todo: list[StreamState], enc: torch.Tensor, frames: list[int],
                stop: Callable[[], bool] | None = None, ending: set[str] = frozenset()) -> None:
        """Beam search and word times; raises Preempted (nothing changed) when stop() says so.
        The streams in `ending` decode with config.final_decode."""
        lead = self._lead()
        durations = [(lead + len(st.audio)) / SAMPLE_RATE for st in todo]
        kv = self.lm.model.decoder.cross_kv(enc)  # the aligner's too
        last = [i for i, st in enumerate(todo) if st.id in ending] if self.final_decoder else []
        groups = [(self.decoder, [i for i in range(len(todo)) if i not in last]), (self.final_decoder, last)]
        results = [None] * len(todo)
        for decoder, idx in groups:
            if not idx:
                continue
            rows = torch.tensor(idx, device=enc.device) if len(idx) < len(todo) else None
            out = decoder.decode(enc if rows is None else enc[rows], [durations[i] for i in idx],
                                 [todo[i].prompt for i in idx], [todo[i].forced for i in idx], stop,
                                 kv if rows is None else [(k[rows], v[rows]) for k, v in kv])
            for i, r in zip(idx, out):
                results[i] = r
        if stop is not None and stop():
            raise Preempted
        new = [self._until_loop(st, r.tokens) for st, r in zip(todo, results)]
        looped = [len(n) < sum(t < self.tok.eot for t in r.tokens) for n, r in zip(new, results)]
        texts = [st.forced + n for st, n in zip(todo, new)]
        aligned = align(self.lm, enc, texts, frames, kv=kv)
        self.passes += 1
        for i, (st, r, words) in enumerate(zip(todo, results, aligned)):
            st.last_pass = st.received
            offset = (st.window_start - lead) / SAMPLE_RATE
            lps = r.nbest[0][2] if r.nbest else []
            probs = self._reading_probs(r.tokens, r.text_logprobs)
            raw = [math.exp(lp) for t, lp in zip(r.tokens, lps) if t < self.tok.eot]
            st.tentative = []
            for word, s, e, ks in words:
                if ks[0] < len(st.forced):
                    continue  # committed already (a word straddling the boundary stays as committed)
                at = [k - len(st.forced) for k in ks if 0 <= k - len(st.forced) < len(probs)]
                s, e = (max(offset + x, st.window_start / SAMPLE_RATE) for x in (s, e))  # not in the lead
                st.tentative.append(TentativeWord(word, s, e, _word_prob([probs[k] for k in at]),
                                                  tuple(texts[i][k] for k in ks),
                                                  token_prob=min((raw[k] for k in at), default=0.0)))
            st.tentative = placed(st.tentative)
            tb = self.tok.timestamp_begin
            closed = bool(r.tokens) and r.tokens[-1] >= tb and not looped[i]
            close_at = min(offset + (r.tokens[-1] - tb) * TIME_PRECISION, st.audio_end) if closed else st.audio_end
            if st.tentative and not looped[i]:  # the last word lasts until the decoder closed its segment
                st.tentative[-1] = replace(st.tentative[-1], until=close_at)
            st.signals = self._signals(r.tokens, lps, st.audio_end - close_at, st.audio_end)
            before = _text(st.words)
            nbest: dict[str, tuple[float, float]] = {}
            for toks, score, _ in r.nbest:  # the same words with other timestamps count once
                text = (before + self.tok.decode([t for t in toks if t < self.tok.eot])).strip()
                nbest[text] = max(nbest.get(text, (-math.inf, 0.0)), (score / max(1, len(toks)), score))
            st.nbest = sorted(((k, a, s) for k, (a, s) in nbest.items()), key=lambda h: h[1], reverse=True)

    def _reading_probs(self, tokens: list[int], text_lps: list[float]) -> list[float | None]:
        """Per text token of a hypothesis (timestamps left out, as the aligner's words have them):
        the probability of its text up to case, or None for punctuation, which closes a word but
        does not change what it reads (" swim" then "." 0.47 or "," 0.10)."""
        keys, out = same_text_keys(self.tok), []
        for t, lp in zip(tokens, text_lps):
            if t < self.tok.eot:
                piece = (keys[t] or "").strip()
                out.append(None if piece and not any(c.isalnum() for c in piece) else math.exp(lp))
        return out

    def _lead(self) -> int:
        """Samples of silence before each window: whole encoder frames, so times stay on the grid."""
        return round(self.config.lead_pad * SAMPLE_RATE / FRAME_SAMPLES) * FRAME_SAMPLES

    def _signals(self, tokens: list[int], lps: list[float], gap: float, end: float) -> EndSignals:
        text = [k for k, t in enumerate(tokens) if t < self.tok.eot]
        last = math.exp(lps[text[-1]]) if text and text[-1] < len(lps) else 1.0  # all committed: settled
        eot = math.exp(lps[len(tokens)]) if len(lps) > len(tokens) else 0.0
        return EndSignals(last, eot, gap, end)

    def _until_loop(self, st: StreamState, tokens: list[int]) -> list[int]:
        """The new text tokens, cut where they start to loop (before alignment:
        a looped copy would take the real frames from the words it repeats)."""
        words = split_words(self.tok, [t for t in tokens if t < self.tok.eot])
        keys = [word_key(w) for w, _ in words]
        done = [word_key(w.w) for w in st.words[st.trimmed:]]
        return [t for _, toks in words[: _loop_start(keys, done)] for t in toks]

    # -- commits and events ----------------------------------------------------------------

    def _commit(self, st: StreamState, t: float, final: bool) -> list[Event]:
        early = st.onset is not None and st.audio_end - st.onset < getattr(st.policy, "min_speech_s", 0.0)
        n = len(st.tentative) if final else st.policy.commit(st.tentative, st.audio_end, 0 if early else None)
        for w in st.tentative[:n]:
            st.forced.extend(w.tokens)
            st.words.append(CommittedWord(w.text, round(w.start, 3), round(w.end, 3), t))
            st.word_tokens.append(w.tokens)
        st.tentative = st.tentative[n:]
        due = None if final else getattr(st.policy, "due", None)
        st.due = due(st.tentative, st.audio_end) if due is not None else None
        if st.due is not None and st.onset is not None:  # commits are held back until then
            st.due = max(st.due, st.onset + getattr(st.policy, "min_speech_s", 0.0))
        if n and not final:
            self._maybe_trim(st)
        shown = (_text(st.words), "".join(w.text for w in st.tentative).strip())
        if shown != st.shown and not final:
            st.shown = shown
            return [Partial(st.id, t, *shown)]
        return []

    def _maybe_trim(self, st: StreamState) -> None:
        """Drop audio before the last committed sentence end; past max_window, before the last
        committed clause end, or else the widest gap between committed words (a cut at a word's
        estimated end inside running speech loses the next word: "the present [period] that")."""
        window = len(st.audio) / SAMPLE_RATE
        mine = range(st.trimmed, len(st.words))  # the committed words whose audio is still in the window
        if window < self.config.trim_after or not mine:
            return
        ends = [i for i in mine if st.words[i].w.strip().endswith(SENTENCE_END)]
        cut_word = ends[-1] if ends else None
        if cut_word is None and window >= self.config.max_window:
            clauses = [i for i in mine if st.words[i].w.strip().endswith(CLAUSE_END)]
            cut_word = clauses[-1] if clauses else max(mine, key=lambda i: (self._gap(st, i), i))
        if cut_word is None:
            return
        end = st.words[cut_word].end
        end += max(self._gap(st, cut_word), 0.0) / 2
        cut = int(end * SAMPLE_RATE) - st.window_start
        if cut <= 0:
            return
        # words up to cut_word become context; the later committed words stay forced
        st.prompt.extend(st.carried)
        st.carried = []
        for tokens in st.word_tokens[st.trimmed: cut_word + 1]:
            st.prompt.extend(tokens)
        st.prompt = st.prompt[-200:]
        st.trimmed = cut_word + 1
        st.forced = [t for tokens in st.word_tokens[st.trimmed:] for t in tokens]
        st.audio = st.audio[cut:]
        st.window_start += cut

    def _keep_heard(self, st: StreamState, margin: float = 0.5) -> None:
        """An utterance that ends while the speaker goes on keeps, for its final, only the
        tentative words that `margin` of audio follows (a later one may be cut short): one
        reading of a fixed lookahead. The rest are read again in the next utterance, which keeps
        the window and forces this one's words."""
        n = FixedLookahead(margin * 1000, agree=False).commit(st.tentative, st.audio_end)
        st.tentative = st.tentative[:n]

    @staticmethod
    def _gap(st: StreamState, i: int) -> float:
        """Seconds between committed word i and the word after it (0 at the end)."""
        nxt = st.words[i + 1].start if i + 1 < len(st.words) else st.tentative[0].start if st.tentative else None
        return 0.0 if nxt is None else nxt - st.words[i].end

    def _final(self, st: StreamState, t: float, split: bool = False) -> Final:
        text = _text(st.words)
        nbest = st.nbest or [(text, 0.0, 0.0)]
        if nbest[0][0] != text:
            nbest = [(text, nbest[0][1], nbest[0][2])] + [h for h in nbest if h[0] != text]
        if self.reranker is not None and len(nbest) > 1:
            text, t = self._rerank(st, nbest, t)
        final = Final(st.id, t, text, tuple((h[0], h[1]) for h in nbest), tuple(st.words))
        st.history = (st.history + [text])[-4:]
        self._reset(st, split)
        return final

    def _speculate(self, st: StreamState, pause_ms: float, t: float) -> None:
        """Start the LM on the N-best when a pause may be the end (the first end-pointing pass)."""
        if pause_ms < self.config.rerank_start_ms or len(st.nbest) < 2:
            return
        texts = tuple(h[0] for h in st.nbest[: self.reranker.config.max_hypotheses])
        if st.spec is None or st.spec[0] != texts:
            st.spec = (texts, self.reranker.submit(texts, st.history), t)

    def _rerank(self, st: StreamState, nbest, t: float) -> tuple[str, float]:
        """The reranked text and when it is ready on the audio clock (the LM runs beside the ASR)."""
        hyps = [Hypothesis(h[0], (), h[2], h[1], h[1]) for h in nbest[: self.reranker.config.max_hypotheses]]
        texts = tuple(h.text for h in hyps)
        if st.spec is not None and st.spec[0] == texts:
            fut, started = st.spec[1], st.spec[2]
        else:  # no pause long enough, or the N-best changed since: score now
            fut, started = self.reranker.submit(texts, st.history), t
        lm, seconds = fut.result()
        ranked = self.reranker.rerank(hyps, lm=lm)
        ready = max(t, started + seconds)
        self.rerank_waits_ms.append(1000 * (ready - t))
        return ranked[0].text, ready

    def _reset(self, st: StreamState, split: bool = False) -> None:
        """A new utterance: after silence, or (`split`) in the middle of speech, where the window
        stays and the words just finalized stay forced: cutting the audio at a word's estimated
        end loses the next word as often as not."""
        st.carried = list(st.forced) if split else []
        st.forced = list(st.carried)
        st.prompt = st.prompt if split else []
        st.words = []
        st.word_tokens = []
        st.trimmed = 0
        st.utt_start = st.received
        st.tentative = []
        st.nbest = []
        st.signals = None  # the next utterance's first question must not read this one's text
        st.spec = None
        st.in_speech = split
        st.onset = st.audio_end if split else None
        st.shown = ("", "")
        st.due = None
        st.policy.reset()
        if not split:
            self._drop_silence(st)

    def _drop_silence(self, st: StreamState) -> None:
        # keep a little audio before the next speech onset (VAD onsets come late)
        keep = min(len(st.audio), int(0.3 * SAMPLE_RATE))
        st.window_start += len(st.audio) - keep
        st.audio = st.audio[len(st.audio) - keep:]


def _loop_start(tentative: list[str], committed: list[str], longest: int = 20) -> int:
    """Where the tentative words start looping, else len(tentative).

    Whisper, near the end of a window, may repeat what it just said ("fail better
    fail better") or start the sentence again: a tandem repeat of 3+ words (2 at
    the very end), or a copy of the window's first 4+ words that runs to the end
    of the hypothesis (its last word may be cut short), marks the cut. Speech
    repeats openings too ("it was the age of wisdom, it was the age of
    foolishness"), but goes on differently.
    """
    keys = committed + tentative
    c = len(committed)
    for i in range(max(c, 1), len(keys)):
        for n in range(2, longest + 1):
            # two words may repeat in real speech ("again, fail again, fail"); a loop runs to the end
            if i - n >= 0 and keys[i:i + n] == keys[i - n:i] and (n >= 3 or i + n == len(keys)):
                return i - c
        if _restarts(keys, i):
            return i - c
    return len(tentative)


def _restarts(keys: list[str], i: int) -> bool:
    """keys[i:] is the opening keys[:...] again, to the end."""
    copy = keys[i:]
    m = len(copy)
    if m < 4 or m > i or copy[:-1] != keys[: m - 1]:
        return False
    last = copy[-1].rstrip("-.…")
    return bool(last) and keys[m - 1].startswith(last)


def _without_filler(tentative: list[TentativeWord], committed: list[CommittedWord]) -> list[TentativeWord]:
    """The turn's last words less a trailing sentence that the aligner found next to no audio for
    and that reads with low confidence: Whisper's filler on the silence after speech ("Thank you
    very much." after "...comparison only."). Scored as Whisper's word anomaly score: 1 for a
    token under 0.15, up to 2 for a word under 0.133 s; 3 in the sentence's first 8 words drops it.
    A sentence that is the whole turn stays: it is the only reading of the speech the pause
    tracker heard (a beam-5 final pass read "Seven of clubs." at 0.14 and the aligner gave its
    words no frames: the clip's one utterance was lost)."""
    words = [w.w for w in committed] + [w.text for w in tentative]
    c = len(committed)
    start = next((j for j in range(len(words) - 1, c - 1, -1)
                  if j == 0 or words[j - 1].strip().endswith(SENTENCE_END)), None)
    if not start:
        return tentative  # the last sentence began in committed words, or it is all the turn said
    i = start - c
    tail = tentative[i:]
    score = sum((w.low < 0.15) + 15 * max(0.133 - (w.end - w.start), 0.0) for w in tail[:8])
    return tentative[:i] if tail and score >= 3 else tentative


def _word_prob(probs: list[float | None]) -> float:
    """A word's probability: its least sure token's, punctuation left out (all punctuation: 1)."""
    probs = [p for p in probs if p is not None] or ([1.0] if probs else [])
    return min(probs, default=0.0)


def _text(words: list[CommittedWord]) -> str:
    return "".join(w.w for w in words).strip()


def placed(words: list[TentativeWord]) -> list[TentativeWord]:
    """A word the aligner gave no frames is never over (TentativeWord.hold), but one with a timed
    word after it was spoken before that word: give it a frame. A window's first word often gets
    none ("It" of "It was the epoch", right after a dropped sentence), and held back every word
    of a 44 s turn until its end, where the window's 30 s had lost the rest."""
    out = list(words)
    timed = False
    for k in range(len(out) - 1, -1, -1):
        w = out[k]
        if w.end <= w.start and timed:
            out[k] = replace(w, end=w.start + TIME_PRECISION)
        timed = timed or w.end > w.start
    return out
