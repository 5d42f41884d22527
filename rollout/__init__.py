"""Roll a change out over several gateways: canary, batches, drains on HAProxy, rollback, report.

`python -m rollout INVENTORY [--batch-size N] [--dry] [pyinfra options such as --data/--group-data]`
"""
