"""User defaults: one traitlets Configurable, with environment overrides.

``%config KqlMagicPlus.display_limit = 50`` in a notebook; ``KQLMAGIC_PLUS_DISPLAY_LIMIT=50`` in the
environment (read once, when the settings object is created; ``%config`` wins after that).
"""

from __future__ import annotations

import os

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import Configurable

ENV_PREFIX = "KQLMAGIC_PLUS_"


class KqlMagicPlus(Configurable):
    """Defaults for %kql, %%kql, %sparkhunt and the Python API."""

    connection = Unicode("local://", help="Connection used when a query names none.").tag(config=True)
    display_limit = Int(100, help="Rows shown in a result's display (the Result keeps all rows).").tag(
        config=True)
    timeout = Float(0.0, help="Seconds before a query is cancelled; 0 means no limit.").tag(config=True)
    show_query = Bool(False, help="Show what ran (SQL, or KQL and parameters) above each result.").tag(
        config=True)
    show_chart = Bool(True, help="Draw `| render` charts; off shows the table instead.").tag(config=True)
    debug = Bool(False, help="Show full tracebacks for errors.").tag(config=True)
    cache = Unicode("off", help="Result cache: 'off', or a TTL such as '1h' or '7d' to store and reuse.").tag(
        config=True)
    cache_dir = Unicode(help="Where cached results live (default: the per-user cache directory).").tag(
        config=True)
    cache_max_bytes = Int(2 * 1024**3, help="Size cap of the cache; least-recently-used entries go first.").tag(
        config=True)
    replay = Unicode("", help="Serve every query from this cache folder; no query reaches an engine.").tag(
        config=True)
    spark_row_limit = Int(100_000, help="Rows collected from a Spark result to the notebook.").tag(config=True)

    @default("cache_dir")
    def _default_cache_dir(self) -> str:
        import platformdirs

        return platformdirs.user_cache_dir("kqlmagic_plus", appauthor=False)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name, trait in self.traits(config=True).items():
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is None or name in kwargs:
                continue
            try:
                setattr(self, name, trait.from_string(raw))
            except Exception as exc:  # a bad env value must say which variable
                from kqlmagic_plus.errors import OptionError

                raise OptionError(f"environment variable {ENV_PREFIX + name.upper()}={raw!r} is not valid: "
                                  f"{exc}") from None


_settings: KqlMagicPlus | None = None


def settings() -> KqlMagicPlus:
    """The process-wide settings (the magics register this same object with IPython's config)."""
    global _settings
    if _settings is None:
        _settings = KqlMagicPlus()
    return _settings


def set_settings(obj: KqlMagicPlus) -> None:
    global _settings
    _settings = obj
