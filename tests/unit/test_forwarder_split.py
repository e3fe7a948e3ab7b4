"""How the forwarder shares settled studies out between its concurrent store jobs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

FORWARDER = Path(__file__).resolve().parents[2] / "components/render/assets/forwarder.py"


@pytest.fixture(scope="module")
def forwarder():
    spec = importlib.util.spec_from_file_location("orthgate_forwarder", FORWARDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def studies(forwarder, *sizes: int) -> list:
    return [
        forwarder.Snapshot(f"s{n}", f"1.2.{n}", {f"s{n}-i{i}": f"f{i}" for i in range(size)}, 0)
        for n, size in enumerate(sizes)
    ]


def shape(groups: list) -> list[list[int]]:
    return [[len(snapshot.files) for snapshot in group] for group in groups]


@pytest.mark.parametrize(
    ("sizes", "jobs", "most", "expected"),
    [
        ((40, 40), 2, 500, [[40], [40]]),  # two settled studies: two associations
        ((50,) * 8, 2, 500, [[50] * 4, [50] * 4]),
        ((50,) * 8, 1, 500, [[50] * 8]),
        ((100,) * 20, 2, 500, [[100] * 5, [100] * 5]),  # a backlog: the rest waits
        ((10, 300, 10), 2, 500, [[10], [300, 10]]),
        ((2000, 10), 2, 500, [[2000], [10]]),  # a study is never split
        ((2000, 10), 1, 500, [[2000]]),
        ((7,), 2, 500, [[7]]),
        ((), 2, 500, []),
    ],
)
def test_settled_studies_are_shared_out_in_order(forwarder, sizes, jobs, most, expected):
    snapshots = studies(forwarder, *sizes)
    groups = forwarder.split_into_jobs(snapshots, jobs, most)
    assert shape(groups) == expected
    flat = [snapshot for group in groups for snapshot in group]
    assert flat == snapshots[: len(flat)], "oldest first, nothing skipped"
    assert len(groups) <= jobs
    assert all(sum(len(s.files) for s in g) <= most or len(g) == 1 for g in groups)
