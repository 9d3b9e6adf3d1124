"""simkit: election-integrity statistics. Voter-exact Monte Carlo of elections from config files,
exit-poll reconciliation and station-level forensics, with results as xarray Datasets."""

__version__ = "0.1.0"

from .config import Config, ConfigError, load_config, parse_config  # noqa: E402
from .engine import simulate  # noqa: E402
from .errors import InputError  # noqa: E402
from .io import open_result, write_dataset  # noqa: E402

__all__ = ["Config", "ConfigError", "InputError", "load_config", "parse_config", "simulate",
           "open_result", "write_dataset", "__version__"]
