"""The engine: plans runs, owns chunking, parallelism and I/O, and turns the pure models' draws into xarray Datasets."""

from simkit.engine.run import simulate
from simkit.engine.summary import national_shares, official_figures

__all__ = ["simulate", "national_shares", "official_figures"]
