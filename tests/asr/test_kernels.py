import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_triton_log_mel_matches_torch_in_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("triton_check.py"))], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "max abs difference" in out.stdout
