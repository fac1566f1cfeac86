import json

from speechfront.cli import DEMO_CLIP, main


def test_stream_prints_json_events(capsys):
    assert main(["stream", str(DEMO_CLIP), "--json", "--device", "cpu", "--lookahead", "fixed:500"]) == 0
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert {e["type"] for e in events} == {"partial", "endpoint", "final"}
    assert all({"pass", "accepted", "speech_end"} <= e.keys() for e in events if e["type"] == "endpoint")
    finals = [e for e in events if e["type"] == "final"]
    assert "better" in finals[-1]["text"].lower()
    assert all({"stream", "t"} <= e.keys() for e in events)
    assert "frames lost 0, duplicated 0" in err


def test_stream_bad_input(capsys, tmp_path):
    assert main(["stream", str(tmp_path / "none.wav")]) == 1
    assert main(["stream", str(DEMO_CLIP), "--lookahead", "whenever"]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "unknown lookahead" in err
