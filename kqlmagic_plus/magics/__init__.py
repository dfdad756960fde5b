"""The IPython magics: ``%kql`` / ``%%kql`` (:mod:`.kql`) and ``%sparkhunt`` / ``%%sparkhunt``
(:mod:`.sparkhunt`). The only modules of the package that import IPython; everything they do is plain
Python below them (:mod:`kqlmagic_plus.api`, :mod:`kqlmagic_plus.sparkhunt`).
"""

from __future__ import annotations

from typing import Any


def load(ip: Any) -> None:
    """Register the magics and the settings object with an IPython shell."""
    from kqlmagic_plus.config import KqlMagicPlus, set_settings
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.magics.kql import KqlMagics
    from kqlmagic_plus.magics.sparkhunt import SparkHuntMagics

    cfg = KqlMagicPlus(parent=ip)
    set_settings(cfg)
    if cfg not in ip.configurables:
        ip.configurables.append(cfg)
    connections().default = cfg.connection
    ip.register_magics(KqlMagics)
    ip.register_magics(SparkHuntMagics)
    from kqlmagic_plus.magics.completion import register as register_completion

    register_completion(ip)  # KQL completion in %%kql / %%sparkhunt cells and %kql lines
    from kqlmagic_plus.magics import compat

    # Kqlmagic notebooks: `# comment` lines above %%kql, and %config Kqlmagic.<setting>.
    compat.register_transformer(ip)
    compat.register_config(ip)
