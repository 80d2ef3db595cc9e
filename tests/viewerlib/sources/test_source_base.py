"""The source protocol: override checks, date ranges, wildcard matching."""

from __future__ import annotations

import datetime

import pytest

from viewerlib.sources.base import (
    Source,
    date_matches,
    normalize_date_query,
    wildcard_matches,
)


def test_subclass_missing_methods_raises():
    with pytest.raises(TypeError,
                       match="must override .*iter_series.*search_for_studies"):
        class Incomplete(Source):
            def health(self):
                return None


def test_abstract_subclass_is_allowed():
    class Partial(Source, abstract=True):
        pass

    assert Partial.__name__ == "Partial"


@pytest.mark.parametrize(("value", "expected"), [
    ("20200101", "20200101"), ("20200101-20201231", "20200101-20201231"),
    ("2020-01-01", "20200101"), ("-20201231", "-20201231"), ("20200101-", "20200101-"),
    (datetime.date(2020, 1, 2), "20200102"),
    ((datetime.date(2020, 1, 2), None), "20200102-"), ((None, "20200105"), "-20200105"),
])
def test_normalize_date_query(value, expected):
    assert normalize_date_query(value) == expected


@pytest.mark.parametrize("value", ["2020", "20201301x", ("20201231", "20200101"),
                                   (None, None)])
def test_bad_date_query_raises(value):
    with pytest.raises(ValueError, match="study_date"):
        normalize_date_query(value)


@pytest.mark.parametrize(("date", "query", "expected"), [
    ("20200105", "20200101-20200110", True), ("20200111", "20200101-20200110", False),
    ("20200105", "-20200104", False), ("", "20200101-", False), ("", None, True),
])
def test_date_matches(date, query, expected):
    assert date_matches(date, query) is expected


@pytest.mark.parametrize(("value", "pattern", "expected"), [
    ("Test^Case", "test*", True), ("Test^Case", "T?st^Case", True),
    ("Test^Case", "Case", False), ("Test^Case", "*^case", True),
    ("Te.t", "Te.t", True), ("Test", "Te.t", False),
])
def test_wildcard_matches(value, pattern, expected):
    assert wildcard_matches(value, pattern) is expected
