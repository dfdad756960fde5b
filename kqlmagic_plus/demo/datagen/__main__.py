"""``python -m kqlmagic_plus.demo.datagen --out DIR ...``: the datagen command without the rest of the CLI."""

from kqlmagic_plus.demo.datagen.cli import datagen_main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(datagen_main())
