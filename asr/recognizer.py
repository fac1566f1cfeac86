"""Offline recognizer: files or arrays in, transcripts out.

Every input is a job that yields windows of at most 30 s. Windows of many jobs
are decoded together in one batch; a long job moves on window after window,
each window starting at the end of the last complete segment (Whisper's
long-form seek), so a file of any length is read block by block in bounded
memory. Short windows are cut to their audio plus a little silence, not padded
to 30 s.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from .audio import SAMPLE_RATE, AudioError, iter_blocks, to_mono_16k
from .results import Hypothesis, Segment, Transcript, Word
from .whisper.align import align
from .whisper.decode import DecodeOptions, WindowDecode, WindowDecoder
from .whisper.features import HOP, LogMel
from .whisper.load import LoadedModel, load_model
from .whisper.tokenizer import TIME_PRECISION
from .whisper.windows import WINDOW, encode_windows, encoder_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecognizerConfig:
    model: str = "tiny.en"
    device: str = "auto"
    threads: int | None = None
    decoder: str = "auto"  # CPU: the decoder blocks' weights, "auto", "fp32", "fp16" or "int8" (load_model)
    encoder: str = "auto"  # CPU: the encoder's matrix products, "auto", "fp32" or "bf16" (load_model)
    batch_size: int = 16  # windows decoded together
    word_timestamps: bool = True
    condition_on_previous_text: bool = True
    prompt_reset_temperature: float = 0.5
    window_pad: float = 6.0  # seconds of silence after a short window: without it the decoder loops at the end
    lead_pad: float = 0.3  # seconds of silence before the first sample: speech that starts right there
    # makes tiny.en say a short clip twice now and then ("He did not rush in. He did not rush in.")
    full_window: bool = False  # pad every window to 30 s, as Whisper was trained
    silence_rms: float = 1e-3  # a window with no 30 ms frame louder than this (-60 dBFS) is not decoded
    decode: DecodeOptions = field(default_factory=DecodeOptions)


class _Job:
    """One input: its audio blocks, where it has got to, and what it has found."""

    def __init__(self, key, blocks: Iterator[np.ndarray], lead: int = 0):
        self.key = key
        self.blocks = blocks
        self.buf = np.zeros(lead, np.float32)  # the lead silence lies before time 0
        self.buf_start = -lead
        self.seek = -lead
        self.eof = False
        self.segments: list[Segment] = []
        self.prompt: list[int] = []
        self.prefix: tuple[str, float, int] = ("", 0.0, 0)  # text, sum log-prob, tokens before last window
        self.last_best: tuple[float, int] = (0.0, 0)  # sum log-prob and length of that window's best
        self.alternatives: list[tuple[str, float, int, tuple[int, ...]]] = []
        self.window_len = 0

    def next_window(self) -> np.ndarray | None:
        while not self.eof and self.buf_start + len(self.buf) < self.seek + WINDOW:
            blk = next(self.blocks, None)
            if blk is None:
                self.eof = True
            else:
                self.buf = np.concatenate([self.buf, blk])
        drop = self.seek - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start = self.seek
        w = self.buf[:WINDOW]
        if self.eof and len(w) < HOP:
            return None
        self.window_len = len(w)
        return w

    @property
    def at_end(self) -> bool:
        return self.eof and self.buf_start + len(self.buf) <= self.seek + self.window_len

    def transcript(self) -> Transcript:
        segs = tuple(self.segments)
        text = "".join(s.text for s in segs).strip()
        words = tuple(w for s in segs for w in s.words)
        ptext, psum, plen = self.prefix
        nbest: dict[str, Hypothesis] = {}
        for t, s, n, toks in self.alternatives:  # same text with other timestamps: keep the best
            h = Hypothesis((ptext + t).strip(), toks, psum + s, (psum + s) / (plen + n + 1), (psum + s) / max(1, plen + n))
            if h.text not in nbest or h.score > nbest[h.text].score:
                nbest[h.text] = h
        nbest = tuple(sorted(nbest.values(), key=lambda h: h.score, reverse=True))
        return Transcript(text, segs, nbest, (self.buf_start + len(self.buf)) / SAMPLE_RATE, words)


class Recognizer:
    def __init__(self, config: RecognizerConfig = RecognizerConfig(), loaded: LoadedModel | None = None):
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.lm = loaded or load_model(config.model, config.device, config.decoder, config.encoder)
        self.mel = LogMel(self.lm.model.dims.n_mels, self.lm.device)
        self.decoder = WindowDecoder(self.lm, config.decode)
        self.tok = self.lm.tokenizer

    # -- public API ---------------------------------------------------------------

    def transcribe(self, audio, sample_rate: int = SAMPLE_RATE) -> Transcript:
        """Transcribe an array (samples,) or (samples, channels) at any rate."""
        x = to_mono_16k(audio, sample_rate)
        if len(x) == 0:
            raise AudioError("zero-length audio")
        return next(self._run([("audio", iter([x]))]))[1]

    def transcribe_file(self, path) -> Transcript:
        result = next(self.transcribe_files([path]))[1]
        if isinstance(result, Exception):
            raise result
        return result

    def transcribe_files(self, paths: Iterable, on_progress: Callable[[float], None] | None = None):
        """Yield (path, Transcript or AudioError) as each file finishes; order may differ."""
        return self._run(((p, _lazy_blocks(p)) for p in paths), on_progress)

    # -- scheduling ---------------------------------------------------------------

    def _run(self, items: Iterable, on_progress=None) -> Iterator[tuple[object, Transcript | Exception]]:
        items = iter(items)
        active: list[_Job] = []
        exhausted = False
        while True:
            while not exhausted and len(active) < self.config.batch_size:
                nxt = next(items, None)
                if nxt is None:
                    exhausted = True
                else:
                    active.append(_Job(*nxt, lead=int(self.config.lead_pad * SAMPLE_RATE)))
            if not active:
                return
            batch, done = [], []
            for job in active:
                try:
                    w = job.next_window()
                except AudioError as e:
                    done.append((job, e))
                    continue
                if w is None:
                    done.append((job, None))
                else:
                    batch.append((job, w))
            for job, err in done:
                active.remove(job)
                yield job.key, (err if err is not None else job.transcript())
            if batch:
                self._step(batch)
                if on_progress:
                    on_progress(sum(len(w) for _, w in batch) / SAMPLE_RATE)

    def _step(self, batch: list[tuple[_Job, np.ndarray]]) -> None:
        cfg = self.config
        loud = []
        for job, w in batch:
            if _loudest_frame(w) < cfg.silence_rms:
                job.seek += len(w)  # Whisper invents words ("you") on silence: never ask it
            else:
                loud.append((job, w))
        batch = loud
        if not batch:
            return
        enc = encode_windows(self.lm, self.mel, [w for _, w in batch], cfg.window_pad, cfg.full_window)
        with torch.inference_mode():
            prompts = [job.prompt if cfg.condition_on_previous_text else [] for job, _ in batch]
            decoded = self.decoder.decode(enc, [len(w) / SAMPLE_RATE for _, w in batch], prompts)
            spans = [self._segments(job, len(w), r) for (job, w), r in zip(batch, decoded)]
            words = self._words(enc, batch, decoded, spans) if cfg.word_timestamps else None
        for i, ((job, w), r) in enumerate(zip(batch, decoded)):
            self._advance(job, len(w), r, spans[i], words[i] if words else None)

    def _silent(self, r: WindowDecode) -> bool:
        o = self.config.decode
        if r.is_silence:
            return True
        if o.no_speech_strict is not None and r.no_speech_prob > o.no_speech_strict:
            return True
        if o.no_speech_threshold is None or r.no_speech_prob <= o.no_speech_threshold:
            return False
        return o.logprob_threshold is None or r.avg_logprob < o.logprob_threshold

    def _segments(self, job: _Job, length: int, r: WindowDecode):
        """[(start_s, end_s, token index range)] in window time, and the seek advance."""
        if self._silent(r):
            return [], length
        tb, toks = self.tok.timestamp_begin, r.tokens
        window_s = length / SAMPLE_RATE
        if not self.config.decode.timestamps:
            return [(0.0, window_s, 0, len(toks))], length
        cuts = [i for i in range(1, len(toks)) if toks[i] >= tb and toks[i - 1] >= tb]
        single_end = len(toks) >= 2 and toks[-1] >= tb and toks[-2] < tb
        if not cuts:
            stamps = [t for t in toks if t >= tb]
            end = (stamps[-1] - tb) * TIME_PRECISION if stamps and stamps[-1] > tb else window_s
            start = (stamps[0] - tb) * TIME_PRECISION if stamps and toks[0] >= tb else 0.0
            return [(start, min(end, window_s), 0, len(toks))], length
        if single_end:
            cuts.append(len(toks))
        spans, last = [], 0
        for cut in cuts:
            part = toks[last:cut]
            start = (part[0] - tb) * TIME_PRECISION if part[0] >= tb else 0.0
            end = (part[-1] - tb) * TIME_PRECISION if part[-1] >= tb else window_s
            spans.append((start, end, last, cut))
            last = cut
        if single_end or job.at_end:
            return spans, length
        advance = int((toks[last - 1] - tb) * TIME_PRECISION * SAMPLE_RATE)
        return spans, advance if advance > 0 else length

    def _words(self, enc, batch, decoded, spans):
        texts, frames, where = [], [], []
        for i, ((_, w), r) in enumerate(zip(batch, decoded)):
            segs, _ = spans[i]
            if segs:
                idx = [k for _, _, a, b in segs for k in range(a, b) if r.tokens[k] < self.tok.eot]
                texts.append([r.tokens[k] for k in idx])
                frames.append(encoder_frames(len(w)))
                where.append((i, idx))
        out: list[list | None] = [None] * len(batch)
        if not texts:
            return out
        rows = [i for i, _ in where]
        aligned = align(self.lm, enc[rows], texts, frames)
        for (i, idx), words in zip(where, aligned):
            lps = decoded[i].nbest[0][2]
            out[i] = [(wd, s, e, [idx[k] for k in ks], [lps[idx[k]] for k in ks]) for wd, s, e, ks in words]
        return out

    def _advance(self, job: _Job, length: int, r: WindowDecode, spans, words) -> None:
        segs, advance = spans
        offset = job.seek / SAMPLE_RATE
        before_text = "".join(s.text for s in job.segments)
        made = []
        for start, end, a, b in segs:
            toks = tuple(t for t in r.tokens[a:b] if t < self.tok.eot)
            text = self.tok.decode(toks)
            if not text.strip():
                continue
            seg_words = tuple(
                Word(wd, _at(offset + s), _at(offset + e), round(math.exp(sum(lp) / len(lp)), 4))
                for wd, s, e, ks, lp in (words or [])
                if a <= ks[0] < b
            )
            if seg_words:  # word times are finer than the decoder's timestamps (first one is <= 1 s)
                start, end = seg_words[0].start - offset, seg_words[-1].end - offset
            made.append(
                Segment(_at(offset + start), _at(offset + end), text, toks, r.avg_logprob,
                        r.compression_ratio, r.no_speech_prob, r.temperature, seg_words)
            )
        if made:
            # earlier windows are fixed at their best; the latest window's alternatives make the N-best
            ptext, psum, plen = job.prefix
            lsum, llen = job.last_best
            job.prefix = (before_text, psum + lsum, plen + llen)
            job.last_best = (r.nbest[0][1], len(r.tokens))
            job.alternatives = []
            for toks, score, _ in r.nbest:
                text_toks = tuple(t for t in toks if t < self.tok.eot)
                job.alternatives.append((self.tok.decode(text_toks), score, len(toks), text_toks))
            job.segments.extend(made)
            if self.config.condition_on_previous_text and r.temperature <= self.config.prompt_reset_temperature:
                job.prompt = job.prompt + [t for s in made for t in s.tokens]
            else:
                job.prompt = []
        job.seek += advance


def _at(t: float) -> float:
    """A time on the input's clock (the lead silence is before 0)."""
    return round(max(0.0, t), 3)


def _loudest_frame(w: np.ndarray, frame: int = 480) -> float:
    n = len(w) // frame * frame
    if n == 0:
        return float(np.sqrt(np.mean(w**2))) if len(w) else 0.0
    return float(np.sqrt((w[:n].reshape(-1, frame) ** 2).mean(1)).max())


def _lazy_blocks(path) -> Iterator[np.ndarray]:
    # opening is deferred so that a bad file fails inside its own job
    yield from iter_blocks(path)


def with_options(config: RecognizerConfig, **decode) -> RecognizerConfig:
    return replace(config, decode=replace(config.decode, **decode))
