"""Engines: one module per backend, all behind :class:`kqlmagic_plus.engines.base.Engine`."""
