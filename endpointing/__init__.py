"""End-pointing: a first pass proposes the end of a turn, a trained arbitrator decides."""
from __future__ import annotations

from .first_pass import EndpointConfig, Endpointer


def default_endpointer(model_name: str, config: EndpointConfig = EndpointConfig()) -> Endpointer:
    """Two-pass with the shipped arbitrator for this recognizer model, else the pause rule."""
    from .arbitrator import load_arbitrator

    return Endpointer(config, load_arbitrator(model_name))


__all__ = ["EndpointConfig", "Endpointer", "default_endpointer"]
