"""Digit tests: second digit (2BL), last digit, round numbers (0 and 5), and their shared helpers."""
