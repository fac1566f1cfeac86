import math

import numpy as np
import torch
import pytest

from asr.whisper.decode import _repeat_tail, compression_ratio, trim_repeats
from tests.conftest import DEMO_TEXT


def test_demo_clip_transcribed_exactly(recognizer, demo_audio):
    t = recognizer.transcribe(demo_audio, 16000)
    assert t.text == DEMO_TEXT
    assert len(t.nbest) >= 1
    assert t.nbest[0].text == t.text
    scores = [h.score for h in t.nbest]
    assert scores == sorted(scores, reverse=True)
    assert len({h.text for h in t.nbest}) == len(t.nbest)


def test_segments_and_word_times_are_ordered_and_inside_audio(recognizer, demo_audio):
    t = recognizer.transcribe(demo_audio, 16000)
    words = t.words
    assert [w.word.strip() for w in words][:4] == ["Ever", "tried.", "Ever", "failed."]
    for a, b in zip(words, words[1:]):
        assert a.start <= a.end <= b.start + 1e-6
    assert words[-1].end <= t.duration + 0.02
    # "better." is the last word; it ends well after the midpoint of the clip
    assert words[-1].end > 0.6 * t.duration
    assert all(0 < w.probability <= 1 for w in words)
    for s in t.segments:
        assert 0 <= s.start < s.end <= t.duration + 0.02


def test_real_dev_clip_with_known_transcript(recognizer, dev_manifest):
    from bench.wer import normalize

    path = dev_manifest.parent / "arctic" / "arctic_a0002.flac"
    t = recognizer.transcribe_file(path)
    # "Whittemore" is spelled "Whitmore" by tiny.en; every other word is right
    assert normalize(t.text) == "not at this particular case tom apologized whitmore"


def test_batching_does_not_change_results(recognizer, demo_audio):
    alone = recognizer.transcribe(demo_audio[: 16000 * 4], 16000).text
    pieces = [demo_audio[: 16000 * 4], demo_audio, np.zeros(16000 * 2, np.float32)]
    got = {}
    for key, t in recognizer._run((i, iter([p])) for i, p in enumerate(pieces)):
        got[key] = t.text
    assert got[0] == alone
    assert got[1] == DEMO_TEXT
    assert got[2] == ""


def test_repetition_guard():
    assert _repeat_tail([1, 2, 3, 9, 9, 9, 9], 4, 16) == 1
    assert _repeat_tail([5, 1, 2, 1, 2, 1, 2, 1, 2], 4, 16) == 2
    assert _repeat_tail([1, 2, 1, 2, 1, 2], 4, 16) == 0
    assert trim_repeats([7, 1, 2, 1, 2, 1, 2, 1, 2], 4, 16) == [7, 1, 2]
    assert trim_repeats([1, 2, 3], 4, 16) == [1, 2, 3]


def test_compression_ratio_flags_loops():
    assert compression_ratio("No. " * 40) > 2.4
    assert compression_ratio(DEMO_TEXT) < 2.4


def test_timestamp_rules(recognizer):
    d = recognizer.decoder
    tb, eot = d.ts_begin, d.tok.eot
    V = recognizer.lm.model.dims.n_vocab
    logits = torch.zeros(3, V)
    seq = torch.full((3, 8), eot)
    seq[0, :2] = torch.tensor([tb + 5, 100])       # text after a timestamp: text, or a later timestamp
    seq[1, :2] = torch.tensor([100, tb + 20])      # a lone timestamp: the pair must close, no text
    seq[2, :2] = torch.tensor([tb + 20, tb + 20])  # a closed pair: text, or end
    last_ts = torch.tensor([5, 20, 20])
    logits[1, eot] = 10.0  # likely enough to beat all timestamps together
    out = d._filter(logits.clone(), seq, 2, last_ts, torch.zeros(3, dtype=torch.long), [1000], [0])
    ok = torch.isfinite(out)
    # a segment has a non-zero length: the closing timestamp is later than the opening one
    assert not ok[0, tb:tb + 6].any() and ok[0, tb + 6:tb + 1001].all() and not ok[0, tb + 1001:].any()
    assert not ok[1, :eot].any() and ok[1, eot] and ok[1, tb + 20]
    assert not ok[2, tb:].any() and ok[2, 100]
    # the first step must be a timestamp no later than max_initial_timestamp (1 s = 50 steps)
    first = d._filter(logits[:1].clone(), seq[:1], 0, torch.tensor([-1]), torch.zeros(1, dtype=torch.long), [1000], [0])
    allowed = torch.isfinite(first[0]).nonzero().flatten()
    assert allowed.min() == tb and allowed.max() == tb + 50


def test_word_times_match_the_reference_alignment(recognizer, demo_audio):
    """Whisper's own alignment (here faster-whisper's, same weights, fp32) reads each token's time
    from the query that predicts it; one row later puts every word about a token late."""
    fw = pytest.importorskip("faster_whisper")
    from asr.whisper.load import model_files

    _, folder = model_files("tiny.en")
    model = fw.WhisperModel(str(folder), device="cpu", compute_type="float32", cpu_threads=2)
    segments, _ = model.transcribe(demo_audio, beam_size=5, language="en", word_timestamps=True)
    ref = [w for s in segments for w in s.words]
    ours = recognizer.transcribe(demo_audio, 16000).words
    assert [w.word for w in ours] == [w.word for w in ref]
    starts = np.array([a.start - b.start for a, b in zip(ours, ref)])
    ends = np.array([a.end - b.end for a, b in zip(ours, ref)])
    assert abs(np.median(starts)) <= 0.04 and abs(np.median(ends)) <= 0.04
    # a sentence's last word must not keep the pause after it
    assert all(abs(e) <= 0.3 for w, e in zip(ref, ends) if w.word.endswith("."))


def test_no_timestamp_mode_decodes(demo_audio):
    from bench.wer import normalize
    from asr.recognizer import Recognizer, RecognizerConfig, with_options

    rec = Recognizer(with_options(RecognizerConfig(device="cpu"), timestamps=False, beam_size=2, best_of=2))
    t = rec.transcribe(demo_audio, 16000)
    assert normalize(t.text) == normalize(DEMO_TEXT)
    # one segment per window; its start is the first word's (the voice begins at 0.34 s)
    seg = t.segments[0]
    assert seg.start == seg.words[0].start and 0.0 <= seg.start <= 0.34


def _demo_hidden(lm, mel, audio, pad: float) -> torch.Tensor:
    """Decoder states of the demo clip's first words, teacher-forced on its first 5 s."""
    from asr.whisper.windows import encode_windows

    dec, tok = lm.model.decoder, lm.tokenizer
    ids = torch.tensor([list(tok.sot_sequence) + [tok.timestamp_begin] + tok.encode(" Ever tried. Ever failed.")])
    with torch.inference_mode():
        enc = encode_windows(lm, mel, [audio[: 16000 * 5]], pad)
        hidden, _ = dec(ids, torch.arange(ids.shape[1])[None], dec.cross_kv(enc), 1, dec.new_cache(1))
    return hidden[0]


def test_int8_vocabulary_keeps_the_best_tokens_exact(recognizer, demo_audio):
    """On the CPU the vocabulary projection runs in int8; the tokens search can pick stay exact."""
    from asr.whisper.model import EXACT_TOP

    dec = recognizer.lm.model.decoder
    assert dec.vocab_int8 is not None  # load_model quantizes on the CPU
    hidden = _demo_hidden(recognizer.lm, recognizer.mel, demo_audio, 1.0)
    with torch.inference_mode():
        packed, dec.vocab_int8 = dec.vocab_int8, None
        exact = dec.logits(hidden)
        dec.vocab_int8 = packed
        fast = dec.logits(hidden)
    assert fast.shape == exact.shape
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
    top = exact.topk(EXACT_TOP // 2, -1).indices
    assert torch.allclose(fast.gather(-1, top), exact.gather(-1, top), atol=1e-4)
    err = (fast - exact).abs().max().item()
    assert 0 < err < 0.05 * exact.abs().max().item()  # the rest is approximate, and close


def test_int8_decoder_blocks_are_close_to_fp32(demo_audio):
    """Asked for, the decoder's per-token linears run on int8 weights on the CPU; with the fp32
    modules put back, the same teacher-forced pass gives nearly the same next-token distribution."""
    from asr.whisper.features import LogMel
    from asr.whisper.load import load_model
    from asr.whisper.cpu_weights import Int8Linear
    from asr.whisper.model import STEP_LINEARS

    lm = load_model("tiny.en", "cpu", decoder="int8")
    mel = LogMel(lm.model.dims.n_mels, lm.device)
    dec = lm.model.decoder
    swapped = [(b.get_submodule(n.rpartition(".")[0]), n.rpartition(".")[2]) for b in dec.blocks for n in STEP_LINEARS]
    assert all(isinstance(getattr(parent, attr), Int8Linear) for parent, attr in swapped)

    def logp():
        with torch.inference_mode():
            return torch.log_softmax(dec.logits(_demo_hidden(lm, mel, demo_audio, 6.0)), -1)

    fast = logp()
    for parent, attr in swapped:  # this model is the test's own: no need to swap back
        setattr(parent, attr, getattr(parent, attr).fp32)
    exact = logp()
    assert not torch.equal(fast, exact)  # int8 really ran
    assert torch.equal(fast.argmax(-1), exact.argmax(-1))
    kl = (exact.exp() * (exact - fast)).sum(-1)
    assert kl.max().item() < 0.05, kl


def test_decoder_steps_take_the_faster_weights_by_default():
    """load_model's default on the CPU: int8 vocabulary, and step weights of whichever of fp32
    and fp16 this CPU runs faster, as it reports; asked for, each as asked."""
    from torch import nn

    from asr.whisper.cpu_weights import HalfLinear
    from asr.whisper.load import load_model
    from asr.whisper.model import STEP_LINEARS

    lm = load_model("tiny.en", "cpu")
    dec = lm.model.decoder
    assert dec.vocab_int8 is not None
    kind = {"fp16": HalfLinear, "fp32": nn.Linear}[lm.precision["decoder"]]
    assert all(type(b.get_submodule(n)) is kind for b in dec.blocks for n in STEP_LINEARS)
    dec = load_model("tiny.en", "cpu", decoder="fp16").model.decoder
    assert all(isinstance(b.get_submodule(n), HalfLinear) for b in dec.blocks for n in STEP_LINEARS)
    dec = load_model("tiny.en", "cpu", decoder="fp32").model.decoder
    assert all(type(b.get_submodule(n)) is nn.Linear for b in dec.blocks for n in STEP_LINEARS)
    with pytest.raises(ValueError, match="auto, fp32, fp16 or int8"):  # before the device: CUDA would skip the swap
        load_model("tiny.en", "cuda", decoder="fp8")


def test_auto_step_weights_pick_the_faster_on_this_cpu(monkeypatch):
    """The choice follows the timing: fp32 made slow, fp16 wins; fp16 made slow, fp32 wins. It is
    timed once per process: later models agree with the first."""
    import time

    from torch import nn

    from asr.whisper import cpu_weights
    from asr.whisper.cpu_weights import HalfLinear, faster_step_weights

    linears = [nn.Linear(16, 32), nn.Linear(32, 16)]

    def slowed(forward):
        def run(self, x):
            time.sleep(0.003)
            return forward(self, x)
        return run

    monkeypatch.setattr(cpu_weights, "_STEP_CHOICE", {})
    with monkeypatch.context() as m:
        m.setattr(nn.Linear, "forward", slowed(nn.Linear.forward))  # HalfLinear calls F.linear for 3 rows
        assert faster_step_weights(linears) == "fp16"
    with monkeypatch.context() as m:
        m.setattr(HalfLinear, "forward", slowed(HalfLinear.forward))
        assert faster_step_weights(linears) == "fp16"  # the process's choice stands
        assert cpu_weights._time_step_weights(linears, 3, 9) == "fp32"
    assert cpu_weights.check_weights("auto") is None
    with pytest.raises(ValueError, match="resolve 'auto'"):
        cpu_weights.swap_linears(nn.Sequential(), (), "auto")


def test_bf16_encoder_is_close_to_fp32(demo_audio):
    """encoder="bf16" runs the CPU encoder's matrix products in bf16 (autocast) and hands back
    fp32 states within about 2 % of fp32's; "auto" is bf16 exactly where the CPU has bf16 hardware."""
    from asr.whisper.cpu_weights import native_bf16
    from asr.whisper.features import LogMel
    from asr.whisper.load import load_model
    from asr.whisper.windows import encode_windows

    fast = load_model("tiny.en", "cpu", encoder="bf16")
    exact = load_model("tiny.en", "cpu", encoder="fp32")
    assert fast.precision["encoder"] == "bf16" and exact.precision["encoder"] == "fp32"
    assert load_model("tiny.en", "cpu").precision["encoder"] == ("bf16" if native_bf16() else "fp32")
    mel = LogMel(exact.model.dims.n_mels, exact.device)
    clip = demo_audio[: 16000 * 4]
    with torch.inference_mode():
        a = encode_windows(fast, mel, [clip], 6.0)
        b = encode_windows(exact, mel, [clip], 6.0)
    assert a.dtype == torch.float32 and a.shape == b.shape
    rel = ((a - b).norm() / b.norm()).item()
    assert 0 < rel < 0.02, rel  # bf16 really ran, and stayed close
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        load_model("tiny.en", "cpu", encoder="fp8")


def test_fp16_decoder_steps_decode_as_fp32(demo_audio):
    """fp16 step weights (one window's beams per step) give fp32's beam search result, with
    token log-probs within a few hundredths."""
    from asr.whisper.cpu_weights import HalfLinear
    from asr.whisper.decode import DecodeOptions, WindowDecoder
    from asr.whisper.features import LogMel
    from asr.whisper.load import load_model
    from asr.whisper.model import STEP_LINEARS
    from asr.whisper.windows import encode_windows

    half, full = load_model("tiny.en", "cpu", decoder="fp16"), load_model("tiny.en", "cpu", decoder="fp32")
    swapped = [b.get_submodule(n) for b in half.model.decoder.blocks for n in STEP_LINEARS]
    assert all(isinstance(m, HalfLinear) for m in swapped)
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(i[0][..., 0].numel())) for m in swapped]
    clip = demo_audio[: 16000 * 5]
    with torch.inference_mode():
        enc = encode_windows(full, LogMel(full.model.dims.n_mels, full.device), [clip], 6.0)
    opts = DecodeOptions(beam_size=3, best_of=3, temperatures=(0.0,))
    forced = [full.tokenizer.encode(" Ever tried.")]  # a streaming pass's committed words
    got = WindowDecoder(half, opts).decode(enc, [5.0], forced=forced)[0]
    want = WindowDecoder(full, opts).decode(enc, [5.0], forced=forced)[0]
    for h in hooks:
        h.remove()
    assert min(calls) == 3 and max(calls) > 4  # steps ran in fp16; the forced prefix's rows took fp32
    assert got.tokens == want.tokens and len(got.tokens) > 5
    lp_got, lp_want = torch.tensor(got.nbest[0][2]), torch.tensor(want.nbest[0][2])
    assert not torch.equal(lp_got, lp_want)  # fp16 really ran
    assert torch.allclose(lp_got, lp_want, atol=0.05)


def test_half_linear_takes_fp32_for_many_rows():
    """torch's CPU half matmul is slow per row: past HALF_MAX_ROWS the fp32 module runs, exactly."""
    from torch import nn

    from asr.whisper.cpu_weights import HALF_MAX_ROWS, HalfLinear, swap_linears

    torch.manual_seed(0)
    lin = nn.Linear(64, 96)
    h = HalfLinear(lin)
    few, many = torch.randn(1, HALF_MAX_ROWS, 64), torch.randn(2, HALF_MAX_ROWS, 64)
    with torch.inference_mode():
        out, ref = h(few), lin(few)
        assert out.dtype == torch.float32 and not torch.equal(out, ref)
        assert torch.allclose(out, ref, atol=1e-2)
        assert torch.equal(h(many), lin(many))
    box = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    swap_linears(box, ("0",), "fp32")
    assert type(box[0]) is nn.Linear
    swap_linears(box, ("0",), "fp16")
    assert isinstance(box[0], HalfLinear) and type(box[1]) is nn.Linear
    with pytest.raises(ValueError, match="fp32, fp16 or int8"):
        swap_linears(box, ("1",), "fp8")


def test_a_hypothesis_cut_by_the_token_budget_falls_back(demo_audio):
    """No end-of-text within the budget means a loop, even one too short for the compression check
    ("Will we ever forget it? Will we ever forget it? Will we ever"): retry at a higher temperature."""
    from asr.recognizer import Recognizer, RecognizerConfig, with_options

    def first_segment(**opts):
        rec = Recognizer(with_options(RecognizerConfig(device="cpu", word_timestamps=False), beam_size=2,
                                      best_of=2, **opts))
        return rec.transcribe(demo_audio[: 16000 * 3], 16000).segments[0]

    assert first_segment(temperatures=(0.0, 0.2)).temperature == 0.0  # ends well inside the budget
    cut = dict(tokens_per_second=1.0, min_token_budget=3)  # too few tokens for "Ever tried. Ever failed."
    assert first_segment(temperatures=(0.0, 0.2), **cut).temperature == 0.2
    assert first_segment(temperatures=(0.0,), **cut).temperature == 0.0


def test_a_fallback_for_some_windows_decodes_them_as_alone_with_the_callers_keys(recognizer, demo_audio):
    """The caller's cross-attention keys and values (the streaming pass shares them with the
    aligner) serve every temperature; a retry for some windows takes their rows only."""
    from asr.whisper.decode import DecodeOptions, WindowDecoder
    from asr.whisper.features import LogMel
    from asr.whisper.windows import encode_windows

    lm = recognizer.lm
    mel = LogMel(lm.model.dims.n_mels, lm.device)
    # the token budget cuts the speech, which retries at 0.2; the silence is not retried
    dec = WindowDecoder(lm, DecodeOptions(beam_size=2, best_of=2, temperatures=(0.0, 0.2),
                                          tokens_per_second=1.0, min_token_budget=3))
    speech, silence = demo_audio[: 16000 * 3], np.zeros(16000 * 3, np.float32)
    enc = encode_windows(lm, mel, [silence, speech], 6.0)
    with torch.inference_mode():
        shared = dec.decode(enc, [3.0, 3.0], kv=lm.model.decoder.cross_kv(enc))
    assert [r.temperature for r in shared] == [0.0, 0.2]
    own = dec.decode(enc, [3.0, 3.0])
    alone = dec.decode(encode_windows(lm, mel, [speech], 6.0), [3.0])
    assert shared[1].tokens == own[1].tokens == alone[0].tokens and shared[0].tokens == own[0].tokens


def test_windows_with_prefixes_of_different_lengths_decode_as_alone(recognizer, demo_audio):
    """A batch pads shorter prefixes (prompt + forced words) on the left; each prefix runs once per
    window and its cache is copied to the beams. Each window still decodes as it would alone."""
    from asr.whisper.decode import DecodeOptions, WindowDecoder
    from asr.whisper.windows import encode_windows

    lm, tok = recognizer.lm, recognizer.lm.tokenizer
    dec = WindowDecoder(lm, DecodeOptions(beam_size=3, best_of=3, temperatures=(0.0,)))
    clips = [demo_audio[: 16000 * 4], demo_audio[: 16000 * 5]]
    prompts = [tok.encode(" Samuel Beckett wrote this."), []]
    forced = [[], tok.encode(" Ever tried. Ever")]
    with torch.inference_mode():
        enc = encode_windows(lm, recognizer.mel, clips, 6.0)
    together = dec.decode(enc, [4.0, 5.0], prompts, forced)
    for i, got in enumerate(together):
        alone = dec.decode(enc[i: i + 1], [(4.0, 5.0)[i]], [prompts[i]], [forced[i]])[0]
        assert got.tokens == alone.tokens and len(got.tokens) > 3
        # two windows' beams are 6 rows, past HALF_MAX_ROWS: fp32 steps; one alone steps in fp16
        assert torch.allclose(torch.tensor(got.nbest[0][2]), torch.tensor(alone.nbest[0][2]), atol=0.02)
    assert tok.decode(together[1].tokens).strip().startswith("failed")


def test_text_logprobs_merge_a_tokens_cases(recognizer, demo_audio):
    """A token's text log-prob is the log of the mass of every token that reads as it up to case;
    a word Whisper splits between " Author" 0.30 and " author" 0.21 is a sure 0.51."""
    from asr.whisper.decode import DecodeOptions, WindowDecoder, same_text_tokens
    from asr.whisper.windows import encode_windows

    lm, tok = recognizer.lm, recognizer.lm.tokenizer
    V = lm.model.dims.n_vocab
    members, ok = same_text_tokens(tok, V, "cpu")
    the, The, dot = (tok.encode(w)[0] for w in (" the", " The", "."))
    assert set(members[The][ok[The]].tolist()) >= {the, The} and members[dot][ok[dot]].tolist() == [dot]
    assert members[tok.eot][ok[tok.eot]].tolist() == [tok.eot]  # special tokens stand alone
    dec = WindowDecoder(lm, DecodeOptions(beam_size=3, best_of=3, temperatures=(0.0,)))
    logp = torch.full((2, V), -30.0)
    logp[0, The], logp[0, the], logp[1, dot] = math.log(0.3), math.log(0.2), math.log(0.6)
    got = dec._text_lp(logp, torch.tensor([0, 1]), torch.tensor([The, dot])).exp()
    assert torch.allclose(got, torch.tensor([0.5, 0.6]), atol=1e-4)
    with torch.inference_mode():
        enc = encode_windows(lm, recognizer.mel, [demo_audio], 6.0)
    r = dec.decode(enc, [len(demo_audio) / 16000])[0]
    lps, texts = torch.tensor(r.nbest[0][2][: len(r.tokens)]), torch.tensor(r.text_logprobs)
    assert len(texts) == len(r.tokens) > 10
    assert (texts >= lps - 1e-4).all()  # a token's text is at least as likely as the token
    stamps = torch.tensor([t >= tok.timestamp_begin for t in r.tokens])
    assert torch.allclose(texts[stamps], lps[stamps], atol=1e-4)
    assert (texts[~stamps] > lps[~stamps] + 0.01).any()  # "Ever" / "ever", "Fail" / "fail"


def test_bf16_encoder_asks_stop_outside_autocast():
    """The encoder's stop callable runs the caller's front end (the replay and `listen` take in
    new audio there, through Silero VAD): under the encoder's bf16 autocast the VAD read bf16
    probabilities, and with several streams its recurrent state turned bf16 and crashed."""
    from asr.pause import SileroVad
    from asr.whisper.load import load_model

    lm = load_model("tiny.en", "cpu", encoder="bf16")
    inside, outside = SileroVad(), SileroVad()
    windows = np.random.default_rng(0).normal(0, 0.1, (4, 512)).astype(np.float32)
    seen = []

    def stop():
        k = len(seen)
        seen.append((inside(windows[k]), (torch.ones(2, 2) @ torch.ones(2, 2)).dtype))
        return False

    with torch.inference_mode():
        states = lm.model.encoder(torch.randn(1, lm.model.dims.n_mels, 200), stop)
    assert states.dtype == torch.float32 and len(seen) == len(lm.model.encoder.blocks)
    assert [s[1] for s in seen] == [torch.float32] * len(seen)
    assert [s[0] for s in seen] == [outside(w) for w in windows[: len(seen)]]
