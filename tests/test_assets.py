"""The example files shipped in assets/ load through the same path as an upload."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossviz.data import load_csv

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "assets" / "examples").glob("*.csv"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_csv_loads_as_a_classification_dataset(path):
    target = path.read_text().splitlines()[0].split(",")[-1]
    data = load_csv(path.read_bytes(), target=target)
    assert data.n_classes >= 2
    assert len(data.X_train) + len(data.X_test) == len(path.read_text().splitlines()) - 1


def test_there_is_an_example():
    assert EXAMPLES
