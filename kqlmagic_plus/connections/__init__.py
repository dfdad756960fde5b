"""Connection strings (:mod:`.spec`: Kqlmagic-compatible and new schemes, secrets redacted) and sign-in
(:mod:`.auth`: azure-identity credentials, token caches). The open connections and their engines are
:mod:`kqlmagic_plus.engines.registry`."""
