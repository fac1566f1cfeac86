"""The live terminal view: committed words, tentative words dimmed, endpoint decisions, turns."""
from __future__ import annotations

import sys

from asr.events import Endpoint, Final, Partial

DIM, BOLD, RESET, CLEAR = "\033[2m", "\033[1m", "\033[0m", "\r\033[K"


class View:
    def __init__(self, out=None, color: bool | None = None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if color is None else color
        self._line = False  # a partial line is showing

    def _print(self, text: str) -> None:
        if self._line and self.tty:
            self.out.write(CLEAR)
        elif self._line:
            self.out.write("\n")
        self._line = False
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, e) -> None:
        if isinstance(e, Partial):
            if self.tty:
                self.out.write(f"{CLEAR}{e.committed} {DIM}{e.tentative}{RESET}")
                self.out.flush()
                self._line = True
            return
        if isinstance(e, Endpoint):
            why = f"p={e.prob:.2f}" if e.prob is not None else "pause limit"
            verdict = "end of turn" if e.accepted else "go on"
            if self.tty and not e.accepted:
                self.out.write(f"  {DIM}[endpoint? {why}: {verdict}]{RESET}")
                self.out.flush()
            else:
                self._print(self._dim(f"  [endpoint {why}: {verdict}]"))
        elif isinstance(e, Final):
            self._print(f"{BOLD}> {e.text}{RESET}" if self.tty else f"> {e.text}")

    def turn(self, t) -> None:
        if t.error:
            self._print(f"  reply failed: {t.error}")
            return
        parts = []
        if t.speech_end is not None:
            parts.append(f"end of speech → final {1000 * (t.final_at - t.speech_end):.0f} ms")
            if t.reply_start is not None:
                parts.append(f"→ first audio {1000 * (t.reply_start - t.speech_end):.0f} ms")
        if t.reply:
            parts.append(f"| reply: {t.reply}")
        if parts:
            self._print(self._dim(f"  turn {t.index}: " + " ".join(parts)))

    def note(self, text: str) -> None:
        self._print(self._dim(text))

    def _dim(self, s: str) -> str:
        return f"{DIM}{s}{RESET}" if self.tty else s
