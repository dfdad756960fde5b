"""How a local lake folder's containers become tables: the refusals and warnings a user reads.

(The same discovery loop serves a lake in Azure Storage: tests/test_lake_azure.py checks it there.)
"""

from __future__ import annotations

import json
import os

import pytest

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.lake import Lake


def _blob(root, container: str, table: str) -> None:
    folder = os.path.join(str(root), container, "y=2024", "m=03", "d=04", "h=10", "m=00")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "PT05M.json"), "w") as fh:
        fh.write(json.dumps({"TimeGenerated": "2024-03-04T10:00:00.0000000Z", "Type": table, "N": 1}) + "\n")


def test_a_folder_with_no_export_containers_is_refused_by_name(tmp_path):
    os.makedirs(tmp_path / "insights-logs-audit")
    with pytest.raises(OptionError) as err:
        Lake(tmp_path).table_names()
    assert str(err.value) == f"no export containers (am-<table>) under {str(tmp_path)!r}"


def test_a_second_container_of_a_table_is_said_and_ignored(tmp_path):
    _blob(tmp_path, "am-mytable_cl", "MyTable_CL")
    _blob(tmp_path, "am-mytable_copy", "MyTable_CL")  # its records name the same table
    _blob(tmp_path, "am-other_cl", "Other_CL")
    os.makedirs(tmp_path / "exports-old")
    lake = Lake(tmp_path)
    assert lake.table_names() == ["MyTable_CL", "Other_CL"]
    assert lake.container_of("MyTable_CL").endswith("am-mytable_cl")
    assert lake.describe().warnings == [
        "exports-old: not an export container (am-<table>), ignored",
        "am-mytable_copy: records of MyTable_CL, already read from am-mytable_cl; ignored",
    ]


def test_a_lake_file_missing_at_read_time_lists_the_window_again_even_if_it_is_back(tmp_path):
    # Retention deleted a listed file and a writer put a new one at the same path before we looked: the
    # listing moved on, so the query is run again (found by the four-kernel soak test as a raw DuckDB error).
    from types import SimpleNamespace

    from kqlmagic_plus.engines.local import _lake_file_gone

    lake = SimpleNamespace(root=str(tmp_path / "lake"))
    back = tmp_path / "lake" / "am-x" / "PT1H.json"
    back.parent.mkdir(parents=True)
    back.write_text("{}\n")
    message = 'IO Error: No files found that match the pattern "{}"'
    assert _lake_file_gone(message.format(back), lake)
    assert _lake_file_gone(message.format(tmp_path / "lake" / "gone.json"), lake)
    assert not _lake_file_gone(message.format(tmp_path / "elsewhere.json"), lake)
    assert not _lake_file_gone("IO Error: permission denied", lake)
