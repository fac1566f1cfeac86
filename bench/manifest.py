"""Dev-set manifests: one JSON object per line, audio paths relative to the file."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "dev.jsonl"


@dataclass(frozen=True)
class Item:
    id: str
    audio: Path
    text: str
    duration: float
    kind: str = ""


def load_manifest(path: Path | str, limit: int | None = None) -> list[Item]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    items = []
    with path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(Item(row["id"], (path.parent / row["audio"]).resolve(), row.get("text", ""),
                                  float(row.get("duration", 0.0)), row.get("kind", "")))
            except (json.JSONDecodeError, KeyError) as e:
                raise ValueError(f"{path}:{n}: bad manifest line ({e})") from None
            if limit and len(items) >= limit:
                break
    return items
