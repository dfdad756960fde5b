"""User defaults: one traitlets Configurable, with environment overrides.

``%config KqlMagicPlus.display_limit = 50`` in a notebook; ``KQLMAGIC_PLUS_DISPLAY_LIMIT=50`` in the
environment (read once, when the settings object is created; ``%config`` wins after that).
"""

from __future__ import annotations

import math
import os
import re

from traitlets import Bool, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from kqlmagic_plus.errors import OptionError

ENV_PREFIX = "KQLMAGIC_PLUS_"


class SettingError(OptionError, TraitError):
    """A setting given a value it cannot take. A TraitError too, so traitlets puts the old value back
    (``%config`` sets inside a hold that rolls back only on TraitError)."""


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
    spark_driver_memory = Unicode("auto", help="Driver memory of a local Spark session (spark.driver.memory): "
                                  "'auto' (half the RAM, at least 1g) or a JVM size such as '6g' or '768m'. A "
                                  "--conf spark.driver.memory=... wins.").tag(config=True)
    spark_shuffle_partitions = Int(0, help="spark.sql.shuffle.partitions of a local Spark session: 0 (twice "
                                   "its cores, at least 2) or a number. A --conf wins.").tag(config=True)
    externaldata_max_bytes = Int(256 * 2**20, help="Bytes a query's externaldata sources may take, downloaded "
                                 "and decompressed (the query stops with an error past it).").tag(config=True)
    externaldata_timeout = Float(60.0, help="Seconds an externaldata URL may take to answer.").tag(config=True)
    memory_limit = Unicode("50%", help="Memory the local engine may use: a share of RAM ('50%') or a size ('4GB', "
                           "'512MiB'). Past it DuckDB spills to disk; a query or result that still does not fit "
                           "stops with an error.").tag(config=True)

    @validate("memory_limit")
    def _check_memory_limit(self, proposal):  # type: ignore[no-untyped-def]
        try:
            parse_memory_limit(proposal["value"])
        except OptionError as exc:
            raise SettingError(exc.message) from None
        return proposal["value"]

    @validate("spark_driver_memory")
    def _check_spark_driver_memory(self, proposal):  # type: ignore[no-untyped-def]
        value = str(proposal["value"]).strip()
        if value.lower() != "auto" and not re.fullmatch(r"\d+[kKmMgGtT]?", value):
            raise SettingError(f"KqlMagicPlus.spark_driver_memory = {value!r}: give 'auto' or a JVM size such as "
                               "'6g' or '768m'")
        return value

    @validate("spark_shuffle_partitions")
    def _check_spark_shuffle_partitions(self, proposal):  # type: ignore[no-untyped-def]
        if proposal["value"] < 0:
            raise SettingError(f"KqlMagicPlus.spark_shuffle_partitions = {proposal['value']}: give 0 (sized to "
                               "the cores) or a positive number")
        return proposal["value"]

    @validate("timeout")
    def _check_timeout(self, proposal):  # type: ignore[no-untyped-def]
        try:
            return check_timeout(proposal["value"], "KqlMagicPlus.timeout")
        except OptionError as exc:
            raise SettingError(exc.message) from None

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


#: Byte units of a memory size: DuckDB's (decimal) and the binary ones.
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
#: Below this no query runs at all; a smaller limit is a typo, not a choice.
MIN_MEMORY_LIMIT = 64 * 10**6


def parse_memory_limit(text: str) -> float | int:
    """``"50%"`` -> 0.5 (a share of RAM); ``"4GB"`` -> 4_000_000_000 (bytes). OptionError otherwise."""
    raw = str(text).strip()
    upper = raw.upper().replace(" ", "")
    number, unit = upper, ""
    while number and not (number[-1].isdigit() or number[-1] == "."):
        number, unit = number[:-1], number[-1] + unit
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    how = "give a share of RAM such as '50%' or a size such as '4GB' or '512MiB'"
    if not math.isfinite(value) or value <= 0 or (unit != "%" and unit not in _SIZE_UNITS):
        raise OptionError(f"KqlMagicPlus.memory_limit = {raw!r} is not a memory limit: {how}")
    if unit == "%":
        if value > 100:
            raise OptionError(f"KqlMagicPlus.memory_limit = {raw!r}: a share of RAM is more than 0% and at most "
                              "100%")
        return value / 100
    size = int(value * _SIZE_UNITS[unit])
    if size < MIN_MEMORY_LIMIT:
        raise OptionError(f"KqlMagicPlus.memory_limit = {raw!r} is too small to run a query: give at least 64MB")
    return size


def check_timeout(value: float | None, name: str = "--timeout") -> float | None:
    """A timeout in seconds as given (None or 0: no limit); OptionError for a negative, infinite or NaN one."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{name} needs a number of seconds, got {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise OptionError(f"{name} needs a number of seconds (0 for no limit), got {value!r}")
    return seconds
