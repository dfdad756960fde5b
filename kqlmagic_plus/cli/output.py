"""What the CLI writes: a Result in one of its formats (to a file, atomically, or stdout), and errors.

Standard output or error may be closed (``2>&-``, a daemon, a pipe that went away): nothing here assumes
they are there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any

from kqlmagic_plus.errors import KqlMagicPlusError, OptionError, QueryCancelledError


def write_result(result: Any, fmt: str, output: str | None, *, keep_formulas: bool = False) -> None:
    """Write a Result in one of the CLI formats: to *output* (replaced whole, or left as it was when the
    write fails), or to stdout."""
    from kqlmagic_plus.display import formats

    if fmt == "parquet" and not output:
        raise OptionError("--format parquet needs -o FILE")
    data = formats.render(result, fmt, keep_formulas=keep_formulas)
    if output:
        write_atomically(output, data)
        return
    if sys.stdout is None:
        raise OptionError("standard output is closed: write the rows to a file with -o FILE")
    sys.stdout.write(data)  # type: ignore[arg-type]
    sys.stdout.flush()


def write_atomically(path: str, data: str | bytes) -> None:
    """*path* holds all of *data* or is as it was: a temporary file beside it, renamed over it when complete."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".kqlmp-", suffix=".part", dir=folder)
    except OSError as exc:
        raise OptionError(f"cannot write {path!r}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the mode a plain open() would have given it
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OptionError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def say(text: str) -> None:
    """A line on stderr, when there is a stderr to write to (credentials redacted, whatever wrote the text)."""
    from kqlmagic_plus.redaction import redact

    stream = sys.stderr
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        stream.write(redact(text) + "\n")
        stream.flush()


def report_error(exc: KqlMagicPlusError) -> int:
    """Say what went wrong (one line; for KQL, also the source line with a caret) and return the exit code:
    130 cancelled, 2 a usage error, 1 anything else."""
    say(exc.terminal_text())
    if isinstance(exc, QueryCancelledError):
        return 130
    return 2 if isinstance(exc, OptionError) else 1
