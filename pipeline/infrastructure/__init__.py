"""Infrastructure: where outputs live (``location``), how they are written safely (``atomic``, ``tables``), the Ray
runtime (``runtime``), MLflow (``tracking``: the only module that talks to it) and the reaper of a killed driver's
Ray processes. Stages build on these; these know no stage."""
