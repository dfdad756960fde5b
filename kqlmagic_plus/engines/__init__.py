"""Engines: one module per backend, all behind :class:`kqlmagic_plus.engines.base.Engine` (``run(request) ->
Result``, ``cancel()``): the embedded DuckDB engine (:mod:`.local`), the services (:mod:`.remote` and its
:mod:`.loganalytics`, :mod:`.adx`), Spark (:mod:`.spark`); and :mod:`.registry`, the open connections."""
