"""Stage 2, evaluate: one month of a bundle against a rulebook.

The month's context, the facts, the criteria kernel and its primitives, what a family
returns, conflicts, the pipeline and explain.
"""
