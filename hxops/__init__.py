"""pyinfra glue of the HX gateway deploy: facts, per-host plan state, the wheelhouse."""
