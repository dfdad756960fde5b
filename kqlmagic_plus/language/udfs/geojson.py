"""GeoJSON input as the geo UDF families read it: the object a text holds, and the members of a geometry
that comes single or multi (``Polygon`` / ``MultiPolygon``, ``LineString`` / ``MultiLineString``).

No UDF is registered here (it is not one of the package's ``MODULES``): the families import it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def geojson_object(text: Any) -> dict[str, Any] | None:
    """The JSON object *text* holds (an already-parsed dict passes through); None for anything else."""
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def members(text: Any, single: str, multi: str, part: Callable[[Any], Any]) -> list[Any] | None:
    """*part* of each member of a GeoJSON *single* or *multi* geometry (a *single* is a multi of one member);
    None when *text* is neither, a *multi* has no members, or *part* refuses (returns None for) any member."""
    g = geojson_object(text)
    if g is None:
        return None
    kind, coords = g.get("type"), g.get("coordinates")
    if kind == single:
        found = [coords]
    elif kind == multi and isinstance(coords, list) and coords:
        found = coords
    else:
        return None
    out = [part(m) for m in found]
    return None if any(p is None for p in out) else out
