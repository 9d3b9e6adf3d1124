"""Putting outputs in place so that a result is never half written and a target never missing: staging and placing
(:mod:`~simkit.placement.placing`), the moves (:mod:`~simkit.placement.moves`), the owners of staging paths
(:mod:`~simkit.placement.owners`) and the journals that finish a killed placement
(:mod:`~simkit.placement.journals`)."""
