"""Front-end sources of the viewers: each widget's file after the shared helpers."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent
_SHARED = ("voi.js",)


def front_end(name: str) -> str:
    """Return the ES module of widget file `name`, shared helpers first.

    anywidget takes one module per widget; the helpers (windowing, the in-page
    sync bus, DOM utilities) are prepended so that every viewer windows the same
    way.
    """
    parts = [(_HERE / shared).read_text(encoding="utf-8") for shared in _SHARED]
    parts.append((_HERE / name).read_text(encoding="utf-8"))
    return "\n".join(parts)
