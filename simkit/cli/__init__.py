"""The command line: ``simkit run | validate | summary`` and the subcommands of the analysis modules."""
