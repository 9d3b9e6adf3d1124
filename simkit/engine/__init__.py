"""The engine: plans runs, owns chunking, parallelism and I/O, and turns the pure models' draws into xarray Datasets."""
