"""The interactive map of a run (issue #33): every embedded point, coloured, searchable, with the samples, their
similar pairs and their input-space neighbours.

``points.py`` holds the points as plain arrays; ``encoding.py`` the wire format (a JSON description and binary
blobs); ``page.py`` the HTML page (``assets/``: the viewer, no library); ``run_map.py`` a run's page, as the
evaluate stage makes it; ``folder.py`` reads an embeddings folder in chunks; ``server.py`` serves a map on
loopback (``drlim view``).
"""

from pipeline.lazy import lazy_exports

__all__ = [
    "MapPoints",
    "SimilarPairs",
    "encode",
    "input_neighbours",
    "page_html",
    "read_page",
    "write_page",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "MapPoints": "pipeline.explore.points",
        "SimilarPairs": "pipeline.explore.points",
        "input_neighbours": "pipeline.explore.points",
        "encode": "pipeline.explore.encoding",
        "page_html": "pipeline.explore.page",
        "read_page": "pipeline.explore.page",
        "write_page": "pipeline.explore.page",
    },
)
