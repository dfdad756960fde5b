"""``parse_user_agent``: the uap-core patterns (the ua-parser package) Kusto's implementation is built on.

A part the patterns do not give (no patch version, no device brand) is "" in the answer, as Kusto shows it.
"""

from __future__ import annotations

import functools
import json

from kqlmagic_plus.language.udfs import udf

#: KQL's look-for word -> (the answer's key, the fields in order).
TARGETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "browser": ("Browser", ("Family", "MajorVersion", "MinorVersion", "Patch")),
    "os": ("OperatingSystem", ("Family", "MajorVersion", "MinorVersion", "Patch", "PatchMinor")),
    "device": ("Device", ("Family", "Brand", "Model")),
}


@functools.lru_cache(maxsize=4096)  # user agents repeat a lot within a table
def _parsed(text: str):  # type: ignore[no-untyped-def]
    from ua_parser import parse

    return parse(text)


def _fields(result, target: str) -> list[str | None]:  # type: ignore[no-untyped-def]
    if target == "browser":
        ua = result.user_agent
        return [ua.family, ua.major, ua.minor, ua.patch] if ua else ["Other", None, None, None]
    if target == "os":
        os_ = result.os
        if os_ is None:
            return ["Other", None, None, None, None]
        return [os_.family, os_.major, os_.minor, os_.patch, os_.patch_minor]
    dev = result.device
    return [dev.family, dev.brand, dev.model] if dev else ["Other", None, None]


@udf("parse_user_agent", ("string", "string"), "dynamic")
def parse_user_agent(text: str, targets_json: str) -> str:
    """*targets_json*: a JSON array of look-for words, already checked by the compiler."""
    result = _parsed(text)
    out: dict[str, dict[str, str]] = {}
    for target in json.loads(targets_json):
        key, names = TARGETS[target]
        out[key] = {n: v or "" for n, v in zip(names, _fields(result, target), strict=True)}
    return json.dumps(out, ensure_ascii=False)
