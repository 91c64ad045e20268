"""JSON Schemas of every file kind, so editors can validate and complete the YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["json_schemas", "write_schemas"]


def json_schemas() -> dict[str, Any]:
    from pydantic import BaseModel

    from kamsim.lessons import Lesson
    from kamsim.spec.load import ALL_KINDS

    kinds: dict[str, type[BaseModel]] = {**ALL_KINDS, "lesson": Lesson}
    out = {}
    for kind, model in kinds.items():
        s = model.model_json_schema(by_alias=True)
        s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        s["title"] = f"kamsim {kind} file"
        out[kind] = s
    return out


def write_schemas(folder: str | Path, kinds: list[str] | None = None) -> list[Path]:
    """Write ``<kind>.schema.json`` for each of ``kinds`` (default: every file kind) into
    ``folder`` (created if missing), each atomically; returns the paths."""
    from kamsim.io import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in json_schemas().items():
        if kinds and kind not in kinds:
            continue
        path = folder / f"{kind}.schema.json"
        atomic_write_text(path, json.dumps(schema, indent=2) + "\n")
        written.append(path)
    return written
