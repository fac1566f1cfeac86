"""The seeded voice: its random draws come from a fixed buffer, so a text always sounds the same."""
import numpy as np
import pytest


def test_noise_inputs_replace_each_draw_with_the_tiled_buffer():
    pytest.importorskip("onnx", reason="the optional 'tts' extra (onnx) is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the optional 'tts' extra (onnxruntime) is not installed")
    from onnx import TensorProto, helper

    from tts.voice import noise_inputs

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None])
    graph = helper.make_graph(
        [helper.make_node("RandomNormalLike", ["x"], ["a"], dtype=1),
         helper.make_node("RandomNormalLike", ["x"], ["b"], dtype=1)], "g", [x],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, None]) for n in "ab"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    assert noise_inputs(model, size=10) == ["noise_0", "noise_1"]
    assert not any(n.op_type == "RandomNormalLike" for n in model.graph.node)
    run = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run
    first, second = np.arange(10, dtype=np.float32), -np.arange(10, dtype=np.float32) - 1
    for frames in (2, 7):  # 6 values: the buffer's head; 21: the buffer three times over
        a, b = run(None, {"x": np.zeros((1, 3, frames), np.float32), "noise_0": first, "noise_1": second})
        n = 3 * frames
        np.testing.assert_array_equal(a, np.tile(first, 3)[:n].reshape(1, 3, frames))
        np.testing.assert_array_equal(b, np.tile(second, 3)[:n].reshape(1, 3, frames))


def test_a_seeded_voice_says_a_text_the_same_way_every_time(synth):
    from tts.voice import PiperVoice

    text = ["Will we ever forget it?"]
    once, again = synth.voice.render(text).audio, synth.voice.render(text).audio
    np.testing.assert_array_equal(once, again)
    voice = PiperVoice(seed=1)
    other = voice.render(text).audio
    assert len(other) != len(once) or not np.array_equal(other, once)
    voice.seed = 0  # the seed may change between calls
    np.testing.assert_array_equal(voice.render(text).audio, once)
    voice.seed = None
    x, y = voice.render(text).audio, voice.render(text).audio
    assert len(x) != len(y) or not np.array_equal(x, y)  # unseeded: fresh noise each call


def test_the_seeded_noise_follows_the_seed_and_the_text(synth):
    voice = synth.voice
    fed = []

    class Spy:
        def __init__(self, session):
            self.session = session

        def run(self, outputs, feed):
            fed.append({k: v.copy() for k, v in feed.items() if k in voice.noise})
            return self.session.run(outputs, feed)

    real = voice.session
    voice.session = Spy(real)
    try:
        for text in ("Hello there.", "Goodbye now.", "Hello there."):
            voice.render([text])
    finally:
        voice.session = real
    assert len(fed) == 3 and list(fed[0]) == voice.noise == ["noise_0", "noise_1"]
    same, other = fed[0]["noise_0"], fed[1]["noise_0"]
    np.testing.assert_array_equal(fed[2]["noise_0"], same)
    assert not np.array_equal(same, other) and not np.array_equal(fed[0]["noise_1"], same)
    assert abs(float(same.mean())) < 0.01 and abs(float(same.std()) - 1.0) < 0.01  # standard normal
