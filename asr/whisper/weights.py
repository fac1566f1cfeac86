"""Read a CTranslate2 ``model.bin`` into torch tensors (no ctranslate2 needed).

Layout (little-endian): uint32 version; for version >= 2 a spec name string and
uint32 revision; uint32 variable count; per variable: name, uint8 rank,
uint32 dims[rank], uint8 dtype (version >= 4), uint32 byte count, raw bytes;
then uint32 alias count and (alias, target) pairs. A string is a uint16 length
then bytes ending in NUL.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import torch

# CTranslate2 dtype codes (version >= 4); older files are always float32.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


class WeightFormatError(ValueError):
    """The file is not a CTranslate2 model we can read."""


class _Concat(io.RawIOBase):
    """Read several files as one stream (a model split over packages)."""

    def __init__(self, paths: Iterable[Path]):
        self._files = [open(p, "rb") for p in paths]
        self._i = 0

    def readinto(self, buf) -> int:
        while self._i < len(self._files):
            n = self._files[self._i].readinto(buf)
            if n:
                return n
            self._i += 1
        return 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        for f in self._files:
            f.close()
        super().close()


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise WeightFormatError(f"truncated model file: wanted {n} bytes, got {len(data)}")
    return data


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", _exact(f, 4))[0]


def _string(f: BinaryIO) -> str:
    (n,) = struct.unpack("<H", _exact(f, 2))
    return _exact(f, n).rstrip(b"\0").decode("utf-8")


def _to_tensor(raw: bytes, code: int, dims: tuple[int, ...]) -> torch.Tensor:
    if code not in _DTYPES:
        raise WeightFormatError(f"unknown dtype code {code}")
    if _DTYPES[code] == "bfloat16":
        t = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16)
    else:
        t = torch.from_numpy(np.frombuffer(raw, dtype=_DTYPES[code]).copy())
    return t.reshape(dims)


def read_stream(f: BinaryIO) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (variables, header) read from an open binary stream."""
    version = _u32(f)
    if not 1 <= version <= 64:
        raise WeightFormatError(f"not a CTranslate2 model (version field {version})")
    header: dict = {"version": version}
    if version >= 2:
        header["spec"] = _string(f)
        header["revision"] = _u32(f)
    out: dict[str, torch.Tensor] = {}
    for _ in range(_u32(f)):
        name = _string(f)
        rank = _exact(f, 1)[0]
        dims = struct.unpack(f"<{rank}I", _exact(f, 4 * rank))
        code = _exact(f, 1)[0] if version >= 4 else 0
        nbytes = _u32(f)
        out[name] = _to_tensor(_exact(f, nbytes), code, dims)
    if version >= 3:
        for _ in range(_u32(f)):
            alias, target = _string(f), _string(f)
            out[alias] = out[target]
    return out, header


def read_model_bin(paths: Path | str | Iterable[Path | str]) -> tuple[dict[str, torch.Tensor], dict]:
    """Read one model.bin, or several parts concatenated in the order given."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"model file not found: {p}")
    with io.BufferedReader(_Concat(paths), buffer_size=1 << 20) as f:
        return read_stream(f)
