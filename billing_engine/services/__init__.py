"""Stage 4, use: what the commands ask of the engine, with the shipped rulebook.

Evaluate a month, revenue over months, explain one patient's month.
"""
