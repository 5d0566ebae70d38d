"""Where work runs: Ray connection helpers (``ray_util``), per-process work folders on a node
(``workdir``) and the named kill points of the crash tests (``faults``).

Imports the shared infrastructure only, so that search, training and tuning can all use it.
"""
