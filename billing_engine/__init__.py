"""Billing and reimbursement eligibility engine for care management.

The machinery only, one folder per stage (docs/architecture.md): ``io`` (the bundle
in), ``params`` (dated parameters), ``engine`` (facts, criteria, conflicts, the
pipeline), ``pricing``, ``store`` and ``services``; ``synth`` is the demo practice.
Code numbers, thresholds and fees live in ``code_rules``, which hands the engine its
rulebook.
"""

__version__ = "0.1.0"
