"""Spark for ``%%sparkhunt``: sessions (local, Spark Connect, Azure Synapse), the lake as Spark tables,
results as the same :class:`~kqlmagic_plus.results.Result` as ``%kql``.

Modules, one job each:

- :mod:`.handle` - what a session is: its target, and what every kind of session can do
- :mod:`.sessions` - local and Spark Connect sessions, one per target kept and reused, status/stop, the Java check
- :mod:`.livy` - the Synapse Livy REST client and Synapse sessions
- :mod:`.lake` - the exported lake as temp views (local lakes through :mod:`kqlmagic_plus.lake`;
  ``abfss://`` setup is documented there)
- :mod:`.remote` - the code that runs next to the Spark driver (in process, or shipped to Livy)
- :mod:`.results` - Spark output -> Result, the row limit, ``--to-lake``
- :mod:`.progress` - stage/task progress (tqdm in notebooks, lines in a terminal)
- :mod:`.errors` - Spark failures as one readable message
- :mod:`.engine` - a session behind the Engine interface (KQL, SQL and PySpark cells)

The cell flow without IPython is :mod:`kqlmagic_plus.sparkhunt`; the magics are
:mod:`kqlmagic_plus.magics.sparkhunt`.

Importing this package imports nothing heavy; pyspark loads when a session starts.
"""
