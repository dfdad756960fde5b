"""What both magics do the same way: evaluate ``--param`` expressions, show what ran."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kqlmagic_plus.errors import OptionError


def line_params(params_var: str | None, exprs: Iterable[tuple[str, str]], namespace: Mapping[str, Any]
                ) -> dict[str, Any]:
    """A line's query parameters: the dict variable of ``--params VAR``, then each ``--param NAME=EXPR``.

    The expressions are the one place a value is evaluated, because the user wrote a Python expression
    on purpose, in their own namespace; variables are only looked up.
    """
    params = dict(dict_variable(namespace, params_var, "--params")) if params_var else {}
    for name, expr in exprs:
        try:
            params[name] = eval(expr, namespace)
        except Exception as exc:
            raise OptionError(f"--param {name}={expr}: {type(exc).__name__}: {exc}") from None
    return params


def dict_variable(namespace: Mapping[str, Any], name: str, option: str) -> dict[str, Any]:
    """The dict a notebook variable holds (looked up by name, never evaluated)."""
    if name not in namespace:
        raise OptionError(f"{option} {name}: no variable named {name!r}")
    value = namespace[name]
    if not isinstance(value, dict):
        raise OptionError(f"{option} {name}: expected a dict, got {type(value).__name__}")
    return value


def shown_query(result: Any) -> str:
    """What ran, where, with which parameters (``--show-query``); credentials (a SAS URL in the query, a
    password in the connection) redacted."""
    from kqlmagic_plus.redaction import redact

    parts = [f"-- ran on {result.connection}", str(result.executed or result.query)]
    if result.parameters:
        parts.append("-- parameters: " + ", ".join(f"{k}={v!r}" for k, v in result.parameters.items()))
    lake = result.stats.get("lake") if result.stats else None
    if lake:
        parts.append(f"-- lake: {lake}")
    return redact("\n".join(parts))
