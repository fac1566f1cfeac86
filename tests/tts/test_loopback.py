"""The recognizer gets back what the synthesizer said (output resampled to 16 kHz)."""
from bench.wer import corpus_wer
from tts.synth import loopback

SENTENCES = [
    "Please turn off the lights in the kitchen.",
    "The train to Boston leaves at half past seven.",
    "I would like a cup of coffee with milk.",
    "She opened the window and looked at the garden.",
    "We need to buy bread, eggs and some fresh fruit.",
    "The weather will be cold and windy tomorrow morning.",
    "Can you call me back after the meeting?",
    "My brother lives in a small house by the sea.",
    "Put the red box on the top shelf, please.",
    "It is too late to change the plan now.",
]
STYLES = ["[excited]", "[calm]", "[sad]", "[slow]", "[fast]", "[loud]", "[soft]", "[excited]", "[calm]", "[sad]"]


def _round_trip(synth, recognizer, texts):
    out = []
    for t in texts:
        audio, sr = synth.synthesize(t)
        out.append(recognizer.transcribe(loopback(audio, sr), 16000).text)
    return out


def test_plain_sentences_come_back(synth, recognizer):
    assert corpus_wer(SENTENCES, _round_trip(synth, recognizer, SENTENCES)) <= 5.0


def test_styled_sentences_come_back(synth, recognizer):
    tagged = [f"{tag} {s}" for tag, s in zip(STYLES, SENTENCES)]
    assert corpus_wer(SENTENCES, _round_trip(synth, recognizer, tagged)) <= 5.0


def test_whisper_and_emphasis_come_back(synth, recognizer):
    tagged = ["[whisper] Please turn off the lights in the kitchen.",
              "I would like a [emphasis]cup[/emphasis] of coffee with milk."]
    assert corpus_wer([SENTENCES[0], SENTENCES[2]], _round_trip(synth, recognizer, tagged)) <= 10.0
