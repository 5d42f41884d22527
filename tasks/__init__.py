"""The gateway deploy's steps, one module each; tasks/gateway.py calls them in order."""
