"""The search engine: ``runner`` (Ray search loop and the ``search`` function), ``strategies``
(what to try next, ask/tell), ``trial`` (one trial in a worker), ``evaluate`` (train and probe
one spec), ``store`` (the SQLite run store) and ``results`` (leaderboard, exports)."""
