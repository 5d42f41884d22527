"""The deploy benchmark: `make bench` (bench/run.py) on a local fleet of its own."""
