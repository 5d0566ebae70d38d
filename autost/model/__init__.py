"""What a network is: :class:`~autost.model.config.ArchConfig` (``config``), its blocks
(``blocks/``), the assembled :class:`~autost.model.network.SpikingTransformer` with
``create_model`` (``network``), the presets (``presets``), the analytic cost model (``cost``),
SpikeNAS-Bench's cell space (``spikenas``) and the file names of a saved model (``files``).

Imports the neurons and the shared infrastructure only; nothing above it.
"""
