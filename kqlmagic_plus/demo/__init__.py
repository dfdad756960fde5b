"""The demo: synthetic Sentinel tables with planted attacks (:mod:`.datagen`) and the runner that executes
the hunting tour notebook against them (:mod:`.runner`, ``kqlmagic-plus demo``)."""
