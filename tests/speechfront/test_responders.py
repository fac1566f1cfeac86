"""Responders: the echo and `--respond-cmd`."""
from __future__ import annotations

import pytest

from speechfront.responders import Command, Echo, ResponderError
from tts.tagger import Tagger


def test_echo_says_it_back_with_a_stage_direction_from_the_tagger():
    assert Echo()("Hello there.") == "Hello there."
    assert Echo(Tagger(use_llm=False))("I'm so sorry, it broke.") == "[sad] I'm so sorry, it broke."


def test_command_gets_the_text_on_stdin_and_its_stdout_is_the_reply():
    assert Command("tr a-z A-Z")("what time is it?") == "WHAT TIME IS IT?"
    assert Command("sed 's/^/[excited] /'")("we won") == "[excited] we won"  # tags pass through


def test_a_failing_command_says_why():
    with pytest.raises(ResponderError, match="broken pipe dream"):
        Command("echo 'broken pipe dream' >&2; exit 3")("hi")
    with pytest.raises(ResponderError, match="exit status 4"):
        Command("exit 4")("hi")


def test_a_slow_command_times_out():
    with pytest.raises(ResponderError, match="no reply within"):
        Command("sleep 5", timeout=0.2)("hi")


def test_an_empty_command_is_refused():
    with pytest.raises(ValueError):
        Command("   ")
