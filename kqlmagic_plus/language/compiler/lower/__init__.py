"""Parse tree -> IR: resolve names, type every expression, shape every operator's output.

Dialect-independent: nothing here knows SQL. Anything not understood raises :class:`Refusal`
with the construct's name and position (never a guess); a query that is wrong for KQL itself
(an unknown column, a type that does not fit) raises :class:`SemanticError`.

Layers, each importing only those below it: ``scope`` (environments, scopes, syntax shapes),
``coerce`` (KQL's typing rules), ``messages`` and ``projection``; the rule modules (``expressions``
and the operator families ``project``, ``ordering``, ``summarize``, ``join``, ``expand``,
``top_nested``, ``sources``), gathered into tables by ``operators``; ``lowerer`` on top, which
walks the tree through those tables. A rule module reaches the lowerer only through the instance
it is given.
"""

from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
from kqlmagic_plus.language.compiler.lower.scope import Env, FunctionDef, Lowered, Scope, shape

__all__ = ["Env", "FunctionDef", "Lowered", "Lowerer", "Scope", "shape"]
