"""Billing and reimbursement eligibility engine for care management.

The machinery only: schemas, ingest and validation, the parameter loader, the
calendar, normalization of facts, the rule framework, conflict resolution, outputs
and the store. Code numbers, thresholds and fees live in ``code_rules``.
"""

__version__ = "0.1.0"
