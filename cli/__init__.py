"""Thin click commands over the ``billing_engine`` library."""
