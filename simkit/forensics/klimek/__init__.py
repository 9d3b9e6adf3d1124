"""Klimek et al.'s fraud model: the histogram fit, the maximum-likelihood fits and their shared density."""
