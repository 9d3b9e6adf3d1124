"""simkit: election-integrity statistics. Voter-exact Monte Carlo of elections from config files,
exit-poll reconciliation and station-level forensics, with results as xarray Datasets."""

from simkit._version import __version__
from simkit.config.core import Config
from simkit.config.load import load_config, parse_config
from simkit.config.messages import ConfigError
from simkit.engine.run import simulate
from simkit.errors import InputError
from simkit.io import open_result, write_dataset

__all__ = ["Config", "ConfigError", "InputError", "load_config", "parse_config", "simulate",
           "open_result", "write_dataset", "__version__"]
