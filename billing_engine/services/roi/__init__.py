"""Care-manager ROI (``billing roi``): measured from the practice's own months, costed
from a staffing file or documented defaults, modelled over caseloads.

``report`` holds the frames every output reads; ``measure`` computes them from the
months' evaluations; ``model`` is the pure arithmetic of capacity, break-even,
scenarios and sensitivity; ``staffing`` reads the staffing file.
"""
