"""The electorate: stations, registers and regions (synthetic or from CSV), and real station returns read through mappings and presets."""

from simkit.electorate.build import build_electorate
from simkit.electorate.returns import load_returns

__all__ = ["build_electorate", "load_returns"]
