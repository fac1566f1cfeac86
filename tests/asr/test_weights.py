import struct

import numpy as np
import pytest
import torch

from asr.whisper.weights import WeightFormatError, read_model_bin


def _string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def _ct2(variables, aliases=(), version=6) -> bytes:
    """Write a CTranslate2 model.bin by the documented layout."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}
    out = struct.pack("<I", version)
    if version >= 2:
        out += _string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, arr in variables.items():
        out += _string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        if version >= 4:
            out += struct.pack("<B", codes[arr.dtype])
        raw = arr.tobytes()
        out += struct.pack("<I", len(raw)) + raw
    if version >= 3:
        out += struct.pack("<I", len(aliases))
        for a, t in aliases:
            out += _string(a) + _string(t)
    return out


VARS = {
    "enc/w": np.arange(12, dtype=np.float16).reshape(3, 4) / 4,
    "enc/b": np.array([1.5, -2.0], dtype=np.float32),
    "n": np.array(6, dtype=np.int16),
    "q": np.array([[-3, 7]], dtype=np.int8),
    "i": np.array([1 << 20], dtype=np.int32),
}


def test_round_trip_all_dtypes_and_alias(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(_ct2(VARS, aliases=[("proj", "enc/w")]))
    w, header = read_model_bin(p)
    assert header == {"version": 6, "spec": "WhisperSpec", "revision": 3}
    for name, arr in VARS.items():
        assert w[name].shape == arr.shape
        assert np.array_equal(w[name].numpy(), arr)
    assert w["enc/w"].dtype == torch.float16
    assert w["proj"] is w["enc/w"]


def test_version_1_has_no_dtype_and_is_float32(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(_ct2({"a": np.ones((2, 2), np.float32)}, version=1))
    w, header = read_model_bin(p)
    assert header == {"version": 1}
    assert torch.equal(w["a"], torch.ones(2, 2))


@pytest.mark.parametrize("cut", [1, 5, 37, 100])
def test_split_model_reads_as_one(tmp_path, cut):
    data = _ct2(VARS)
    (tmp_path / "p1").write_bytes(data[:cut])
    (tmp_path / "p2").write_bytes(data[cut:])
    w, _ = read_model_bin([tmp_path / "p1", tmp_path / "p2"])
    assert np.array_equal(w["enc/b"].numpy(), VARS["enc/b"])


def test_truncated_and_garbage_files_fail_clearly(tmp_path):
    data = _ct2(VARS)
    (tmp_path / "short").write_bytes(data[:-9])
    with pytest.raises(WeightFormatError, match="truncated"):
        read_model_bin(tmp_path / "short")
    (tmp_path / "junk").write_bytes(b"\xff" * 64)
    with pytest.raises(WeightFormatError, match="not a CTranslate2"):
        read_model_bin(tmp_path / "junk")
    with pytest.raises(FileNotFoundError):
        read_model_bin(tmp_path / "missing.bin")


def test_bundled_tiny_en_loads_with_inferred_dims():
    from asr.whisper.load import model_files
    from asr.whisper.model import Dims

    paths, _ = model_files("tiny.en")
    w, header = read_model_bin(paths)
    assert header["spec"] == "WhisperSpec"
    d = Dims.from_weights(w)
    assert (d.n_audio_layer, d.n_text_layer, d.n_audio_state, d.n_vocab, d.n_audio_head) == (4, 4, 384, 51864, 6)
    assert w["decoder/projection/weight"] is w["decoder/embeddings/weight"]
