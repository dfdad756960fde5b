"""What a user sees of a Result: charts from its ``render`` spec (:mod:`.charts`) and the text formats the
CLI writes (:mod:`.formats`: table, CSV, JSON, JSON lines, Parquet)."""
