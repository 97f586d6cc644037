"""The rulebook's numbers: effective-dated parameters with their sources.

Also the conflict table's data and what a run carries past the verified dates.
"""
