"""The result cache on disk: what identifies a query (:mod:`.key`), one entry as one file (:mod:`.entry`),
the folder of entries (:mod:`.store`), lookup and replay (:mod:`.modes`) and the ``--cache`` commands
(:mod:`.commands`)."""
