"""What an ``externaldata`` source needs read, as the compiled plan carries it (the compiler never fetches).

Lowering checks everything it can without the network (the columns and their types, each URL's scheme, the
format, the properties and the ingestion mapping) and records one :class:`ExternalSource` a distinct source;
the SQL reads it as the table :attr:`ExternalSource.table`. The engine fetches and parses it and registers that
table just before the SQL runs (``kqlmagic_plus/engines/externaldata.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

#: The ingestion data formats read, by their KQL names (a name maps to the parser that reads it).
FORMATS = {
    "csv": "csv", "tsv": "tsv", "scsv": "scsv", "psv": "psv", "sohsv": "sohsv",
    "txt": "txt", "raw": "raw", "json": "json", "multijson": "multijson", "singlejson": "multijson",
    "parquet": "parquet",
}
#: Formats KQL names that are not read here: refused by name (never read as something else).
UNREAD_FORMATS = ("avro", "apacheavro", "orc", "tsve", "w3clogfile", "sstream", "azmonstream")
#: The file extension -> format, when no ``format`` is given (the reference: detected from the extension,
#: CSV otherwise).
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".scsv": "scsv", ".psv": "psv", ".sohsv": "sohsv", ".txt": "txt",
              ".raw": "raw", ".json": "json", ".multijson": "multijson", ".parquet": "parquet"}
#: ``with (...)`` properties read (lower case), and the ones refused by name.
PROPERTIES = ("format", "ignorefirstrecord", "ingestionmapping", "zippattern")
#: Formats whose records are lines of delimited fields, by delimiter.
DELIMITED = {"csv": ",", "tsv": "\t", "scsv": ";", "psv": "|", "sohsv": "\x01"}


@dataclass(frozen=True)
class ExternalSource:
    """One ``externaldata`` source: what to read and how, and the table name the SQL reads it by."""

    table: str
    #: (name, KQL type), in the declared order.
    columns: tuple[tuple[str, str], ...]
    urls: tuple[str, ...]
    #: A key of :data:`FORMATS`' values, or "" to detect each URL's from its extension.
    format: str
    ignore_first_record: bool = False
    #: Per column (in order): ("path", "$.a.b") | ("ordinal", "2") | ("const", "text") | ("name", column).
    mapping: tuple[tuple[str, str], ...] = ()
    zip_pattern: str | None = None

    @staticmethod
    def make(columns: tuple[tuple[str, str], ...], urls: tuple[str, ...], format: str, ignore_first_record: bool,
             mapping: tuple[tuple[str, str], ...], zip_pattern: str | None) -> ExternalSource:
        # Named by its content: the same source twice in a query is read once, as one table.
        key = json.dumps([columns, urls, format, ignore_first_record, mapping, zip_pattern])
        table = "__kqlc_ext_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return ExternalSource(table, columns, urls, format, ignore_first_record, mapping, zip_pattern)

    def format_of(self, url: str) -> str:
        """The format *url* is read as: the declared one, else its extension's (CSV when none matches)."""
        if self.format:
            return self.format
        path = url.split("?", 1)[0].split(";", 1)[0].lower()
        for packed in (".gz", ".zip"):
            if path.endswith(packed):
                path = path[: -len(packed)]
        for ext, fmt in EXTENSIONS.items():
            if path.endswith(ext):
                return fmt
        return "csv"
