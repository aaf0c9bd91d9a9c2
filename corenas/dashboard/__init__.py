"""``corenas dashboard``: a local, read-only web view of jobs (``jobs`` reads them, ``app``
serves them, ``server`` binds and runs it)."""
