"""Spark for ``%%sparkhunt``: sessions (local, Spark Connect, Azure Synapse), the lake as Spark tables,
results as the same :class:`~kqlmagic_plus.results.Result` as ``%kql``.

Modules, one job each:

- :mod:`.sessions` - targets, one session per target kept and reused, status/stop, the Java check
- :mod:`.livy` - the Synapse Livy REST client and Synapse sessions
- :mod:`.lake` - the exported lake as temp views (local lakes through :mod:`kqlmagic_plus.lake`;
  ``abfss://`` setup is documented there)
- :mod:`.remote` - the code that runs next to the Spark driver (in process, or shipped to Livy)
- :mod:`.results` - Spark output -> Result, the row limit, ``--to-lake``
- :mod:`.progress` - stage/task progress (tqdm in notebooks, lines in a terminal)
- :mod:`.errors` - Spark failures as one readable message
- :mod:`.api` - the cell flow without IPython; :mod:`.magics` - ``%sparkhunt`` / ``%%sparkhunt``

Importing this package imports nothing heavy; pyspark loads when a session starts.
"""
