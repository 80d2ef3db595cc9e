"""In-memory caches for metadata and pixel data; nothing is ever written to disk.

Patient data stays in the kernel's memory only: no temporary files, no on-disk
HTTP cache. Besides the caches, sources keep indexes in memory (a folder's names
and IDs, the archives where a federation saw each study); they register them with
:func:`register_index`. :func:`purge` empties every cache and every registered
index and says what it removed; it runs at interpreter exit as well.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

_MIB = 1024 * 1024
_DEFAULT_BUDGETS = {"metadata": 64 * _MIB, "pixel": 512 * _MIB}


def estimate_size(value: Any) -> int:
    """Estimate the bytes a cached value holds (bytes, arrays, data sets, lists).

    Parameters
    ----------
    value : object
        ``bytes``/``bytearray``/``memoryview``, a NumPy array (``nbytes``), a pydicom
        ``Dataset`` (its element values), or a list/tuple/dict of those.

    Returns
    -------
    int
        The estimate in bytes; at least ``sys.getsizeof(value)``.

    Examples
    --------
    >>> estimate_size(b"x" * 1000) >= 1000
    True
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value) + 64
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes + 128
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(estimate_size(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(
            estimate_size(k) + estimate_size(v) for k, v in value.items())
    elements = getattr(value, "elements", None)
    if callable(elements):
        # pydicom Dataset: walk the raw or parsed elements without converting them
        total = sys.getsizeof(value)
        for element in value.elements():
            raw = getattr(element, "value", None)
            total += 96 + estimate_size(raw) if raw is not None else 96
        return total
    return sys.getsizeof(value)


@dataclass
class CacheReceipt:
    """What :func:`purge` removed.

    Attributes
    ----------
    kinds : list of str
        Names of the caches and kinds of index emptied, e.g. ``["metadata",
        "pixel", "folder-index", "study-locations"]``.
    items : int
        Number of entries removed, over all caches.
    bytes : int
        Estimated bytes released, over all caches.
    per_kind : dict
        ``{kind: (items, bytes)}``.
    """

    kinds: list[str] = field(default_factory=list)
    items: int = 0
    bytes: int = 0
    per_kind: dict[str, tuple[int, int]] = field(default_factory=dict)


class LRUCache:
    """A thread-safe least-recently-used cache limited by a byte budget.

    Parameters
    ----------
    kind : str
        Name shown in receipts, e.g. ``"pixel"``.
    budget_bytes : int
        Largest estimated size the cache may hold; the least recently used
        entries are dropped to stay under it. A value larger than the whole
        budget is not cached at all.

    Examples
    --------
    >>> cache = LRUCache("demo", budget_bytes=250)
    >>> cache.put("a", b"x", size_bytes=100)
    >>> cache.put("b", b"y", size_bytes=100)
    >>> cache.get("a") is not None       # "a" is now the most recently used
    True
    >>> cache.put("c", b"z", size_bytes=100)   # over budget: "b" goes
    >>> cache.get("b") is None
    True
    """

    def __init__(self, kind: str, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        self.kind = kind
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Estimated bytes held now."""
        return self._bytes

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value for ``key`` and mark it recently used, else ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, size_bytes: int | None = None) -> None:
        """Store ``value`` under ``key``, dropping old entries to fit the budget.

        Parameters
        ----------
        key : hashable
            Must not contain patient data as text that is logged; keys are never
            logged here.
        value : object
            The value to keep.
        size_bytes : int, optional
            Its size; estimated with :func:`estimate_size` when not given.
        """
        size = estimate_size(value) if size_bytes is None else size_bytes
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.budget_bytes:
                logger.debug("%s cache: entry of %d bytes exceeds the budget",
                             self.kind, size)
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def resize(self, budget_bytes: int) -> None:
        """Set a new budget and drop least recently used entries to fit it."""
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
        with self._lock:
            self.budget_bytes = budget_bytes
            while self._bytes > budget_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> tuple[int, int]:
        """Empty the cache; return ``(items, bytes)`` removed."""
        with self._lock:
            removed = (len(self._entries), self._bytes)
            self._entries.clear()
            self._bytes = 0
        return removed


_caches: dict[str, LRUCache] = {
    kind: LRUCache(kind, budget) for kind, budget in _DEFAULT_BUDGETS.items()}


class InMemoryIndex(Protocol):
    """An index a source keeps in memory that :func:`purge` must empty."""

    def clear_index(self) -> tuple[int, int]:
        """Forget everything indexed; return ``(items, estimated bytes)`` removed."""
        ...


# Kind -> the live indexes of that kind, held weakly: a source that is gone
# needs no purging, and registering must not keep it alive.
_indexes: dict[str, weakref.WeakSet[Any]] = {}
_indexes_lock = threading.Lock()


def register_index(kind: str, index: InMemoryIndex | None = None) -> None:
    """Have :func:`purge` empty ``index`` and count it under ``kind``.

    Parameters
    ----------
    kind : str
        Shown in receipts, e.g. ``"folder-index"``; never patient data.
    index : InMemoryIndex, optional
        Held weakly. Without it, only the kind is declared, so that receipts
        list it (with 0 items) before any index of that kind exists.

    Examples
    --------
    >>> class Names:
    ...     def __init__(self):
    ...         self.names = {"1.2.3": "Test^Case"}
    ...     def clear_index(self):
    ...         removed = (len(self.names), estimate_size(self.names))
    ...         self.names.clear()
    ...         return removed
    >>> names = Names()
    >>> register_index("doc-names", names)
    >>> purge().per_kind["doc-names"][0], names.names
    (1, {})
    """
    with _indexes_lock:
        members = _indexes.setdefault(kind, weakref.WeakSet())
        if index is not None:
            members.add(index)


def get_cache(kind: str) -> LRUCache:
    """Return the shared cache named ``kind`` (``"metadata"`` or ``"pixel"``).

    Raises
    ------
    KeyError
        If there is no cache of that kind.
    """
    try:
        return _caches[kind]
    except KeyError:
        raise KeyError(f"no cache named '{kind}'; known: {sorted(_caches)}") from None


def set_budget(kind: str, budget_bytes: int) -> None:
    """Change the byte budget of one shared cache (entries over it are dropped)."""
    get_cache(kind).resize(budget_bytes)


def purge() -> CacheReceipt:
    """Empty every cache and every registered in-memory index of :mod:`viewerlib`.

    Returns
    -------
    CacheReceipt
        The kinds emptied (caches, then indexes such as ``"folder-index"``) and
        how many entries and (estimated) bytes went.

    Examples
    --------
    >>> get_cache("pixel").put(("doc", 1), b"x" * 10)
    >>> receipt = purge()
    >>> receipt.items >= 1 and "pixel" in receipt.kinds
    True
    """
    receipt = CacheReceipt()
    for kind, cache in _caches.items():
        items, size = cache.clear()
        receipt.kinds.append(kind)
        receipt.items += items
        receipt.bytes += size
        receipt.per_kind[kind] = (items, size)
    with _indexes_lock:
        registered = {kind: list(members) for kind, members in _indexes.items()}
    for kind, indexes in registered.items():
        items = size = 0
        for index in indexes:
            removed_items, removed_bytes = index.clear_index()
            items += removed_items
            size += removed_bytes
        receipt.kinds.append(kind)
        receipt.items += items
        receipt.bytes += size
        receipt.per_kind[kind] = (items, size)
    logger.info("purged %d cached items (%d bytes) from %s", receipt.items,
                receipt.bytes, ", ".join(receipt.kinds))
    return receipt


atexit.register(purge)
