"""KQL as text: tokens (lexer), deprecated names (aliases), literals and query parameters, the
``render`` clause, and the compiler (KQL -> Spark SQL / DuckDB SQL).

Nothing here runs a query or knows an engine: engines call into this layer.
"""
