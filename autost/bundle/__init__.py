"""What leaves the house: Hub-ready bundles (``hub``), their model cards (``card``), the bundle
of an ``autost run`` with its report (``report``) and official checkpoints converted into
bundles (``official``).

Above the model, search and tune layers; only the pipeline and the command line import it.
"""
