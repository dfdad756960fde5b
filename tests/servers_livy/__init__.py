"""A loopback Azure Synapse (Livy API + token endpoint) whose sessions run statements in real PySpark."""

from .server import HttpFault, LoopbackSynapse

__all__ = ["HttpFault", "LoopbackSynapse"]
