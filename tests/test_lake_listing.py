"""A lake's listing is reused between queries only while its folders are unchanged: a file or a day folder
added between two queries is read by the second (on the lake itself and through ``%%sparkhunt``)."""

from __future__ import annotations

import glob
import os
import shutil
import time

import pytest

from kqlmagic_plus.lake import Lake, layout


@pytest.fixture
def settled_now(monkeypatch):
    """Keep every folder's listing, however recently it changed (the lakes here are seconds old)."""
    monkeypatch.setattr(layout, "_SETTLED_S", -1.0)


def _lake(root) -> Lake:
    from kqlmagic_plus.demo.datagen import generate

    generate(root, days=1, end_date="2024-05-01", events_per_day=2_000, seed=3, layout="1h", tables=["SigninLogs"])
    return Lake(root)


def _blobs(root) -> list[str]:
    return sorted(glob.glob(str(root / "**" / "PT1H*.json"), recursive=True))


def test_a_file_added_between_two_queries_is_read_by_the_second(tmp_path, settled_now):
    lake = _lake(tmp_path)
    first = lake.files_for("SigninLogs")
    assert lake._layout._folders._seen, "the folders' listings are kept"
    time.sleep(0.05)  # the folder's change lands in a later clock tick than its listing
    blob = _blobs(tmp_path)[0]
    overflow = blob.replace("PT1H.json", "PT1H_1.json")
    shutil.copy(blob, overflow)  # an overflow blob arrives in an hour folder already listed
    second = lake.files_for("SigninLogs")
    assert sorted(second) == sorted([*first, overflow])


def test_a_new_day_folder_and_a_removed_file_are_seen(tmp_path, settled_now):
    lake = _lake(tmp_path)
    first = lake.files_for("SigninLogs")
    time.sleep(0.05)
    blob = _blobs(tmp_path)[-1]
    day = os.path.dirname(os.path.dirname(os.path.dirname(blob)))  # .../d=DD
    new_day = os.path.join(os.path.dirname(day), "d=20")
    assert not os.path.exists(new_day)
    moved = os.path.join(new_day, *blob[len(day) + 1:].split(os.sep))
    os.makedirs(os.path.dirname(moved))
    shutil.copy(blob, moved)
    gone = _blobs(tmp_path)[0]
    os.remove(gone)
    second = lake.files_for("SigninLogs")
    assert moved in second and gone not in second
    assert len(second) == len(first)


def test_a_folder_changed_just_now_is_listed_again(tmp_path):
    # Folder times are stamped coarsely: a listing read in the same tick as a change is not kept.
    lake = _lake(tmp_path)
    lake.files_for("SigninLogs")
    hour = os.path.dirname(_blobs(tmp_path)[0])
    assert hour not in lake._layout._folders._seen


@pytest.mark.spark
@pytest.mark.slow
def test_sparkhunt_reads_a_file_added_between_two_cells(tmp_path, spark_local, settled_now):
    import kqlmagic_plus
    from kqlmagic_plus.sparkhunt import sparkhunt

    _lake(tmp_path)
    quiet = lambda _m: None  # noqa: E731
    sparkhunt("", connect="local[2]", lake=str(tmp_path), say=quiet)
    query = "SigninLogs | summarize n = count() by ResultType"
    before = sparkhunt(query, progress="none", no_cache=True, say=quiet).df.sort_values("ResultType")
    time.sleep(0.05)
    blob = _blobs(tmp_path)[0]
    shutil.copy(blob, blob.replace("PT1H.json", "PT1H_1.json"))
    after = sparkhunt(query, progress="none", no_cache=True, say=quiet).df.sort_values("ResultType")
    truth = kqlmagic_plus.kql(query, conn=f"lake://{tmp_path}").df.sort_values("ResultType")
    assert after["n"].tolist() == truth["n"].tolist()
    assert after["n"].sum() > before["n"].sum()
