"""The in-memory caches: byte budget, LRU order, purge receipt, nothing on disk."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from viewerlib import cache
from viewerlib.cache import LRUCache, estimate_size, get_cache, purge, set_budget


def test_least_recently_used_goes_first():
    lru = LRUCache("t", budget_bytes=3 * estimate_size(b"x" * 100))
    for key in "abc":
        lru.put(key, b"x" * 100)
    lru.get("a")
    lru.put("d", b"x" * 100)
    assert lru.get("b") is None
    assert all(lru.get(k) is not None for k in "acd")
    assert lru.size_bytes <= lru.budget_bytes


def test_value_larger_than_the_budget_is_not_kept():
    lru = LRUCache("t", budget_bytes=50)
    lru.put("big", b"x" * 100)
    assert lru.get("big") is None and len(lru) == 0


def test_replacing_a_key_keeps_the_byte_count_right():
    lru = LRUCache("t", budget_bytes=10_000)
    lru.put("k", b"x" * 100, size_bytes=100)
    lru.put("k", b"x" * 300, size_bytes=300)
    assert lru.size_bytes == 300 and len(lru) == 1


def test_resize_drops_to_fit():
    set_budget("pixel", 10_000)
    try:
        for n in range(5):
            get_cache("pixel").put(n, b"", size_bytes=3000)
        assert len(get_cache("pixel")) == 3
        set_budget("pixel", 6000)
        assert len(get_cache("pixel")) == 2
    finally:
        set_budget("pixel", cache._DEFAULT_BUDGETS["pixel"])


def test_purge_empties_every_cache_and_returns_a_receipt():
    purge()
    get_cache("metadata").put("m", b"x" * 10, size_bytes=10)
    get_cache("pixel").put("p1", b"x" * 20, size_bytes=20)
    get_cache("pixel").put("p2", b"x" * 30, size_bytes=30)
    receipt = purge()
    assert receipt.kinds[:2] == ["metadata", "pixel"]
    assert (receipt.items, receipt.bytes) == (3, 60)
    assert (receipt.per_kind["metadata"], receipt.per_kind["pixel"]) == (
        (1, 10), (2, 50))
    assert len(get_cache("pixel")) == 0 and purge().items == 0


def test_unknown_cache_raises():
    with pytest.raises(KeyError, match="no cache named 'disk'"):
        get_cache("disk")


def test_estimate_size_counts_datasets_and_arrays():
    import numpy as np
    from pydicom.dataset import Dataset

    dataset = Dataset()
    dataset.PixelData = b"\0" * 10_000
    assert estimate_size(dataset) > 10_000
    assert estimate_size(np.zeros(1000, dtype=np.uint16)) >= 2000


def test_caching_from_a_folder_source_writes_nothing(tmp_path):
    """Reading and caching pixel data opens no file for writing."""
    testing = _sources_testing()
    make_ct_series, write_datasets = testing.make_ct_series, testing.write_datasets

    from viewerlib.sources.local import FolderSource

    write_datasets(make_ct_series(2), tmp_path / "ct")
    source = FolderSource(tmp_path / "ct")
    watching = threading.Event()
    writes: list[str] = []

    def audit(event, args):
        if watching.is_set() and event == "open" and len(args) > 1:
            mode = args[1]
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                writes.append(str(args[0]))

    sys.addaudithook(audit)  # cannot be removed; inert unless watching is set
    watching.set()
    try:
        study = source.search_for_studies()[0]
        series = source.search_for_series(study.StudyInstanceUID)[0]
        for dataset in source.iter_series(series.StudyInstanceUID,
                                          series.SeriesInstanceUID):
            get_cache("pixel").put(("test", str(dataset.SOPInstanceUID)), dataset)
            dataset.pixel_array  # decode too
    finally:
        watching.clear()
    assert writes == []
    receipt = purge()
    assert receipt.per_kind["pixel"][0] == 2
    assert receipt.per_kind["folder-index"][0] == 2  # the folder's two files


def _sources_testing():
    sys.path.insert(0, str(Path(__file__).parent / "sources"))
    import lightbox_source_testing

    return lightbox_source_testing


def test_purge_forgets_folder_indexes_and_study_locations(tmp_path):
    """Names and IDs held in memory by sources go too, counted in the receipt."""
    from viewerlib.sources.federated import FederatedSource
    from viewerlib.sources.local import FolderSource

    testing = _sources_testing()
    testing.write_datasets(testing.make_ct_series(3, patient_id="TEST-PURGE"),
                           tmp_path / "cd1")
    testing.write_datasets(testing.make_ct_series(2, patient_id="TEST-PURGE-2"),
                           tmp_path / "cd2")
    (tmp_path / "cd2" / "notes.txt").write_text("not an image")
    first, second = FolderSource(tmp_path / "cd1"), FolderSource(tmp_path / "cd2")
    federation = FederatedSource([first, second])
    studies = federation.search_for_studies()
    assert len(studies) == 2 and federation._locations
    purge()  # empty before the counted purge, so the counts are this test's
    federation.search_for_studies(patient_id="TEST-PURGE")

    receipt = purge()

    # 3 + 2 files indexed and one unreadable (with its reason): 6 entries; one
    # study location remembered from the last search.
    assert receipt.per_kind["folder-index"][0] == 6
    assert receipt.per_kind["study-locations"][0] == 1
    assert all(receipt.per_kind[kind][1] > 0
               for kind in ("folder-index", "study-locations"))
    assert {"folder-index", "study-locations"} <= set(receipt.kinds)
    assert receipt.items == sum(items for items, _ in receipt.per_kind.values())
    assert first._index is None and second._index is None
    assert federation._locations == {}
    again = purge()
    assert again.per_kind["folder-index"] == again.per_kind["study-locations"] == (
        0, 0)

    # The sources still work: the folders are read again when next searched.
    assert [s.PatientID for s in federation.search_for_studies(
        patient_id="TEST-PURGE-2")] == ["TEST-PURGE-2"]
    assert purge().per_kind["folder-index"][0] == 6


def test_purge_lists_index_kinds_when_no_source_exists():
    import viewerlib.sources  # noqa: F401 - registers the kinds

    receipt = purge()
    assert {"metadata", "pixel", "folder-index", "study-locations"} <= set(
        receipt.kinds)
