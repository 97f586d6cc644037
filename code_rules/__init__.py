"""Code families: one package per family, each with its rule, parameters and README.

Rule modules refer to codes and thresholds by parameter name only; the values, their
effective dates and sources are in each family's ``parameters.yaml``.
"""
