"""pyinfra glue of the HX gateway deploy: the typed plan, facts and the snapshot, snapshot-aware
operations, the start and validation operations, per-host outcomes, the wheelhouse."""
