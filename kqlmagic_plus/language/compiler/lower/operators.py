"""The operator tables: each pipe operator's and tabular source's grammar rule -> its lowering.

One entry per construct the lowerer translates; a rule with no entry is refused with its name.
The rules live in the family modules beside this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler.lower.expand import evaluate, mv_expand, parse, parse_where
from kqlmagic_plus.language.compiler.lower.externaldata import externaldata
from kqlmagic_plus.language.compiler.lower.find import find_source
from kqlmagic_plus.language.compiler.lower.graph import graph_to_table, make_graph
from kqlmagic_plus.language.compiler.lower.graph_components import graph_mark_components
from kqlmagic_plus.language.compiler.lower.graph_match import graph_match, graph_shortest_paths
from kqlmagic_plus.language.compiler.lower.join import join, lookup, union_operator, union_source
from kqlmagic_plus.language.compiler.lower.mv_apply import mv_apply
from kqlmagic_plus.language.compiler.lower.ordering import sample, serialize, sort, take, top
from kqlmagic_plus.language.compiler.lower.partition import partition
from kqlmagic_plus.language.compiler.lower.project import (
    extend,
    getschema,
    project,
    project_away,
    project_keep,
    project_rename,
    project_reorder,
    where,
)
from kqlmagic_plus.language.compiler.lower.scan import scan
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.lower.sources import as_, datatable, function_call, invoke, print_, range_
from kqlmagic_plus.language.compiler.lower.summarize import count, distinct, make_series, summarize
from kqlmagic_plus.language.compiler.lower.top_nested import top_nested, top_nested_part

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

OperatorRule = Callable[["Lowerer", Any, ir.Node, Env], ir.Node]
SourceRule = Callable[["Lowerer", Any, Env], ir.Node]

#: A piped operator's rule -> its lowering (the node it applies to in, the node it makes out).
#: ``render`` is not here: the lowerer keeps it as the chart spec, not as a node.
OPERATORS: dict[str, OperatorRule] = {
    "WhereOperator": where,
    "ExtendOperator": extend,
    "ProjectOperator": project,
    "ProjectAwayOperator": project_away,
    "ProjectKeepOperator": project_keep,
    "ProjectRenameOperator": project_rename,
    "ProjectReorderOperator": project_reorder,
    "GetSchemaOperator": getschema,
    "SortOperator": sort,
    "TopOperator": top,
    "TakeOperator": take,
    "SampleOperator": sample,
    "SerializeOperator": serialize,
    "SummarizeOperator": summarize,
    "DistinctOperator": distinct,
    "CountOperator": count,
    "MakeSeriesOperator": make_series,
    "TopNestedOperator": top_nested,
    "PartitionOperator": partition,
    "TopNestedOperatorPart": top_nested_part,
    "JoinOperator": join,
    "LookupOperator": lookup,
    "UnionOperator": union_operator,
    "MvexpandOperator": mv_expand,
    "MvapplyOperator": mv_apply,
    "ParseOperator": parse,
    "ParseWhereOperator": parse_where,
    "MakeGraphOperator": make_graph,
    "GraphToTableOperator": graph_to_table,
    "GraphMatchOperator": graph_match,
    "GraphShortestPathsOperator": graph_shortest_paths,
    "GraphMarkComponentsOperator": graph_mark_components,
    "EvaluateOperator": evaluate,
    "AsOperator": as_,
    "InvokeOperator": invoke,
    "ScanOperator": scan,
}

#: A tabular expression's rule -> its lowering, where it starts a pipe rather than continuing one.
SOURCES: dict[str, SourceRule] = {
    "NamedFunctionCallExpression": function_call,
    "DataTableExpression": datatable,
    "PrintOperator": print_,
    "RangeExpression": range_,
    "UnionOperator": union_source,
    "FindOperator": find_source,
    "ExternalDataExpression": externaldata,
}
