"""What the CLI writes: a Result in one of its formats, to a file or stdout."""

from __future__ import annotations

import sys
from typing import Any

from kqlmagic_plus.errors import OptionError


def write_result(result: Any, fmt: str, output: str | None) -> None:
    """Write a Result in one of the CLI formats (to a file, or stdout)."""
    from kqlmagic_plus.display import formats as export

    if fmt == "parquet" and not output:
        raise OptionError("--format parquet needs -o FILE")
    data = export.render(result, fmt)
    if output:
        mode = "wb" if isinstance(data, bytes) else "w"
        try:
            with open(output, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as fh:
                fh.write(data)
        except OSError as exc:
            raise OptionError(f"cannot write {output!r}: {exc.strerror}") from None
    else:
        sys.stdout.write(data)  # type: ignore[arg-type]
