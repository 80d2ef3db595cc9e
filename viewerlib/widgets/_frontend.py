"""Front-end sources of the viewers: each widget's file after the shared helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

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


def esm_trait(module: str) -> Any:
    """The `_esm` of a :class:`FrontEndWidget` class: its module, as a synced trait."""
    return traitlets.Unicode(module).tag(sync=True)


class FrontEndWidget(anywidget.AnyWidget):
    """An anywidget whose front end is a trait of its class, not of each widget.

    anywidget gives every widget its ``_esm`` and ``_anywidget_id`` as traits of
    the instance, through ipywidgets' ``add_traits``, which makes a new class
    for every widget: more than a third of the time a viewer takes to make, on
    the way to the first image. Declared on the class (``_esm =
    esm_trait(...)``), they are set up once per class.
    """

    _anywidget_id = traitlets.Unicode().tag(sync=True)

    @traitlets.default("_anywidget_id")
    def _class_id(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}"

    def add_traits(self, **traits: Any) -> None:
        """Add the traits the class does not have already (see the class)."""
        new = {name: trait for name, trait in traits.items() if not self.has_trait(name)}
        if new:
            super().add_traits(**new)
