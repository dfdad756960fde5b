"""Check, or regenerate, the completion's table of KQL functions (kqlmagic_plus/data/kql_functions.json)
from the compiler's catalog.

    python -m tools.kql_functions            # exit 1 when the file is out of date
    python -m tools.kql_functions --write    # regenerate it (after adding a function to the catalog)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kqlmagic_plus.language.completion.vocabulary import FUNCTIONS_FILE, functions_from_catalog

PATH = Path(__file__).resolve().parent.parent / "kqlmagic_plus" / FUNCTIONS_FILE


def expected_text() -> str:
    scalars, aggregates = functions_from_catalog()
    return json.dumps({"scalars": scalars, "aggregates": aggregates}, indent=0, sort_keys=True) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    text = expected_text()
    if args.write:
        PATH.write_text(text, encoding="utf-8")
        doc = json.loads(text)
        print(f"wrote {PATH}: {len(doc['scalars'])} functions, {len(doc['aggregates'])} aggregates")
    elif PATH.read_text(encoding="utf-8") != text:
        raise SystemExit(f"{PATH} is out of date: python -m tools.kql_functions --write")


if __name__ == "__main__":
    main()
