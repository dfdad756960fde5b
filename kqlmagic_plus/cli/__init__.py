"""``kqlmagic-plus``: the terminal entry point (:mod:`.app`), its ``hunt`` command (:mod:`.hunt`) and
what both write (:mod:`.output`)."""

from kqlmagic_plus.cli.app import main

__all__ = ["main"]
