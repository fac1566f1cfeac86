"""Responders: the final text in, the reply (stage directions allowed) out."""
from __future__ import annotations

import shlex
import subprocess


class ResponderError(RuntimeError):
    pass


class Echo:
    """Says back what it heard, with a stage direction chosen by the tagger."""

    def __init__(self, tagger=None):
        self.tagger = tagger

    def __call__(self, text: str) -> str:
        return self.tagger.tag(text) if self.tagger is not None else text


class Command:
    """Runs CMD with the final text on its stdin; its stdout is the reply."""

    def __init__(self, cmd: str, timeout: float = 30.0):
        if not shlex.split(cmd):
            raise ValueError("--respond-cmd: empty command")
        self.cmd, self.timeout = cmd, timeout

    def __call__(self, text: str) -> str:
        try:
            p = subprocess.run(self.cmd, shell=True, input=text + "\n", capture_output=True, text=True,
                               timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise ResponderError(f"{self.cmd!r} gave no reply within {self.timeout:.0f} s") from None
        if p.returncode != 0:
            why = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            raise ResponderError(f"{self.cmd!r} failed: {why}")
        return p.stdout.strip()
