"""Orchestration: the stages in order (``run``), a search over training settings (``tune`` over ``search``'s grid),
the results page (``report``) and a job on a cluster (``submit``)."""
