"""``parse_user_agent(text, look_for)``, run as Python (:mod:`kqlmagic_plus.language.udfs.useragent`)."""

from __future__ import annotations

import json

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import empty_if_null
from kqlmagic_plus.language.compiler.sqlexpr import s
from kqlmagic_plus.language.compiler.syntax import Refusal
from kqlmagic_plus.language.udfs.useragent import TARGETS

TABLE = Table()


def _targets(arg: ir.Expr) -> list[str]:
    if not isinstance(arg, ir.Lit) or arg.value is None:
        raise Refusal("parse_user_agent with a computed look-for", reason="give \"browser\", \"os\", \"device\" "
                      "or a dynamic array of them")
    words = arg.value if isinstance(arg.value, list) else [arg.value]
    out = []
    for w in words:
        if not isinstance(w, str) or w.lower() not in TARGETS:
            raise Refusal(f"parse_user_agent look-for {w!r}", reason='the look-for words are "browser", "os", "device"')
        out.append(w.lower())
    return out


@TABLE.scalar("parse_user_agent", 2, T.DYNAMIC)
def _parse_user_agent(g, c, pred):
    targets = json.dumps(_targets(c.args[1]))
    text = empty_if_null(g.e(c.args[0]))
    return g.d.dyn_from_json_text(udfs.call("parse_user_agent", text, s(targets)))
