"""A one-operation deploy: proves pyinfra can connect to and change every fleet machine."""

from pyinfra.operations import files

files.directory(name="Probe directory", path="/var/lib/hx-fleet-probe", mode="700")
