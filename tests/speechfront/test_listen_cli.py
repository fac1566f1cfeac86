"""`speechfront listen` and `speechfront devices` from the command line: one clear message and a
non-zero exit when there is no device, and a whole session from a file as the microphone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from speechfront.cli import DEMO_CLIP, main


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "speechfront", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_listen_without_a_microphone_says_so_once():
    from speechfront.devices import DeviceError, list_devices

    try:
        if any(d.inputs for d in list_devices()):
            pytest.skip("needs a machine without a microphone: here `listen` would open it "
                        "(test_devices.py checks the message with a fake PortAudio)")
    except DeviceError:
        pass  # no PortAudio at all: the same one-line answer is expected
    p = _cli("listen", "--print")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "no microphone" in p.stderr or "PortAudio" in p.stderr, p.stderr


def test_devices_lists_or_says_why_not():
    p = _cli("devices")
    assert "Traceback" not in p.stderr
    assert p.returncode in (0, 1)
    assert p.stdout.strip() if p.returncode == 0 else p.stderr.strip()


def test_listen_with_a_missing_input_file(tmp_path, capsys):
    assert main(["listen", "--print", "--input-file", str(tmp_path / "nope.wav")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_listen_from_a_file_prints_and_records(tmp_path, capsys):
    """The demo clip as the microphone, transcribe only, recorded."""
    code = main(["listen", "--print", "--input-file", str(DEMO_CLIP), "--record", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "> Ever tried" in out.replace("> ever tried", "> Ever tried")
    (session,) = list(tmp_path.iterdir())
    finals = [json.loads(x) for x in (session / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "final" for e in finals)
    assert (session / "mic.wav").stat().st_size > 100_000
