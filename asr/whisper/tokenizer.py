"""Whisper tokenizer over the package's ``tokenizer.json``.

Special tokens are looked up by name. Timestamp tokens follow
``<|notimestamps|>`` in Whisper's vocabulary (0.02 s apart), which the
tokenizer.json files shipped with CTranslate2 models do not list.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from tokenizers import Tokenizer

TIME_PRECISION = 0.02  # seconds per timestamp token


class WhisperTokenizer:
    def __init__(self, path: Path | str, multilingual: bool = False, language: str = "en"):
        self._tok = Tokenizer.from_file(str(path))
        self.multilingual = multilingual
        self.language = language

    def _id(self, token: str) -> int:
        i = self._tok.token_to_id(token)
        if i is None:
            raise KeyError(f"tokenizer has no special token {token}")
        return i

    @cached_property
    def eot(self) -> int:
        return self._id("<|endoftext|>")

    @cached_property
    def sot(self) -> int:
        return self._id("<|startoftranscript|>")

    @cached_property
    def transcribe(self) -> int:
        return self._id("<|transcribe|>")

    @cached_property
    def no_timestamps(self) -> int:
        return self._id("<|notimestamps|>")

    @cached_property
    def no_speech(self) -> int:
        for name in ("<|nospeech|>", "<|nocaptions|>"):
            i = self._tok.token_to_id(name)
            if i is not None:
                return i
        raise KeyError("tokenizer has no no-speech token")

    @cached_property
    def sot_prev(self) -> int:
        return self._id("<|startofprev|>")

    @cached_property
    def timestamp_begin(self) -> int:
        i = self._tok.token_to_id("<|0.00|>")
        return i if i is not None else self.no_timestamps + 1

    @cached_property
    def sot_sequence(self) -> tuple[int, ...]:
        if not self.multilingual:
            return (self.sot,)
        return (self.sot, self._id(f"<|{self.language}|>"), self.transcribe)

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        """Text of the ids, special and timestamp tokens removed."""
        return self._tok.decode([int(i) for i in ids if i < self.eot], skip_special_tokens=True)

    def decode_piece(self, ids) -> bytes:
        """Raw UTF-8 bytes of text tokens, for splitting into words safely."""
        return self._tok.decode([int(i) for i in ids if i < self.eot], skip_special_tokens=True).encode()

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(i)
