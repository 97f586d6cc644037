"""Pricing: fee data and payment parameters (issue 4)."""
