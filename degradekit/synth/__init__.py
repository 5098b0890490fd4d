"""`degradekit synth`: photo collections -> WebDataset shards of (HR, LR...) pairs with every drawn parameter.

Modules: sources (``--src``), prepare (multiscale copies, crops), plan (the fixed sample list, seeds),
render (one sample / one shard), shards (reproducible tar), manifest, run (workers, resume, parts),
fetch (official dataset archives), inspect, replay.
"""
