"""Figures (matplotlib); functions return figures and never write files or set a backend themselves."""
