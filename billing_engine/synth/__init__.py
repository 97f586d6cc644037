"""The synthetic practice: deterministic demo data, test data and benchmark input.

Not part of the engine: it knows codes and fees only to make believable data.
"""
