"""The JSONPath subset KQL's ``extract_json`` accepts: ``$.a.b``, ``$['a b']``, ``$[0]``."""

from __future__ import annotations

import re

from kqlmagic_plus.language.compiler.syntax import Refusal

_STEP = re.compile(
    r"""\.([A-Za-z_$@][\w$@-]*)|\[\s*(-?\d+)\s*\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*"((?:[^"\\]|\\.)*)"\s*\]"""
)


def parse_json_path(path: str) -> list[tuple[str, object]]:
    p = path.strip()
    if not p.startswith("$"):
        raise Refusal(f"JSON path {path!r}", reason="a JSON path starts with $")
    i, steps = 1, []
    while i < len(p):
        m = _STEP.match(p, i)
        if not m:
            raise Refusal(f"JSON path {path!r}", reason="only .name, [index] and ['name'] steps translate")
        name, idx, sq, dq = m.groups()
        if name is not None:
            steps.append(("key", name))
        elif idx is not None:
            steps.append(("index", int(idx)))
        else:
            steps.append(("key", (sq if sq is not None else dq).replace("\\'", "'").replace('\\"', '"')))
        i = m.end()
    return steps
