"""The words lowering's errors use: a construct's readable name, the columns near a wrong one."""

from __future__ import annotations

import re
from typing import Any

from kqlmagic_plus.errors import closest_first
from kqlmagic_plus.language.compiler.parsetree import rule
from kqlmagic_plus.language.compiler.types import Schema


def no_column(name: str, schema: Schema) -> str:
    near = closest_first(name, [c.name for c in schema.visible])[:5]
    return f"no column named {name!r}" + (f" (columns: {', '.join(near)})" if near else "")


def words(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", camel).lower()


#: Grammar rules whose KQL spelling is not their name split into words.
_SPELLING = {
    "MvapplyOperator": "mv-apply",
    "MvexpandOperator": "mv-expand",
    "ProjectAwayOperator": "project-away",
    "MakeSeriesOperator": "make-series",
    "TopNestedOperator": "top-nested",
    "ParseKvOperator": "parse-kv",
    "ParseWhereOperator": "parse-where",
    "ExternalDataExpression": "externaldata",
    "MakeGraphOperator": "make-graph",
    "GraphMatchOperator": "graph-match",
    "SampleDistinctOperator": "sample-distinct",
    "TopHittersOperator": "top-hitters",
    "PartitionByOperator": "partition-by",
    "ScanOperator": "scan",
    "FindOperator": "find",
    "SearchOperator": "search",
    "ForkOperator": "fork",
    "FacetByOperator": "facet",
    "ReduceByOperator": "reduce",
    "ConsumeOperator": "consume",
    "PartitionOperator": "partition",
    "MacroExpandOperator": "macro-expand",
    "AssertSchemaOperator": "assert-schema",
}


def construct_name(c: Any) -> str:
    """A readable name for a grammar construct: ``MvapplyOperator`` -> ``mv-apply``."""
    r = rule(c)
    if r in _SPELLING:
        return _SPELLING[r]
    if r.endswith("Operator"):
        return words(r[:-8]).replace(" ", "-")
    return words(r.replace("Expression", "")) or r
