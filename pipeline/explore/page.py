"""The explorer page: one HTML file holding the viewer (``assets/explorer.js``, ``explorer.css``: no CDN, nothing
fetched) and either the maps' data inline (a file MLflow shows as an artifact, that works offline) or the
address it fetches them from (``drlim view``). Two maps on one page are drawn side by side with linked selection.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import DataError
from pipeline.explore.encoding import encode
from pipeline.explore.points import MapPoints
from pipeline.infrastructure.atomic import atomic_path

Encoded = tuple[dict[str, Any], dict[str, bytes]]
BLOB = re.compile(r'<script type="application/octet-stream" id="drlim-(\d+)-([\w-]+)">([A-Za-z0-9+/=]*)</script>')
CONFIG = re.compile(r'<script type="application/json" id="drlim-config">(.*?)</script>', re.S)


def _asset(name: str) -> str:
    return (resources.files("pipeline.explore") / "assets" / name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    # "</" would end the script element early
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def page_html(title: str, maps: list[Encoded] | None = None, urls: list[str] | None = None) -> str:
    """The page for ``maps`` (inline) or for the maps served at ``urls`` (``meta.json`` and ``blob/NAME`` below
    each)."""
    if maps is not None:
        config = {"datasets": [{"meta": meta, "inline": True} for meta, _ in maps]}
        blobs = "\n".join(
            f'<script type="application/octet-stream" id="drlim-{i}-{name}">{base64.b64encode(data).decode()}</script>'
            for i, (_, named) in enumerate(maps)
            for name, data in named.items()
        )
    else:
        config, blobs = {"datasets": [{"url": url} for url in urls or []]}, ""
    return (
        _asset("explorer.html")
        .replace("{{title}}", html.escape(title))
        .replace("{{css}}", _asset("explorer.css"))
        .replace("{{config}}", _script_json(config))
        .replace("{{blobs}}", blobs)
        .replace("{{js}}", _asset("explorer.js"))
    )


def side_by_side(maps: list[Encoded]) -> list[Encoded]:
    """``maps`` for one page, without the thumbnails of a map whose ids an earlier map has with its own: the page
    finds a sample's thumbnail by id in any map (two runs of one job's samples need one sprite)."""
    out: list[Encoded] = []
    for meta, blobs in maps:
        shared = any(
            "sprite" in earlier and earlier["id"] == blobs["id"] and m["id_dtype"] == meta["id_dtype"]
            for m, earlier in out
        )
        if shared and "sprite" in blobs:
            meta = {k: v for k, v in meta.items() if k != "thumbnails"}
            blobs = {k: v for k, v in blobs.items() if k != "sprite"}
        out.append((meta, blobs))
    return out


def write_page(path: Path, maps: list[MapPoints], title: str | None = None) -> Path:
    """A self-contained page of ``maps`` (one, or two side by side) at ``path``."""
    return write_encoded(path, side_by_side([encode(points) for points in maps]), title or maps[0].title)


def write_encoded(path: Path, maps: list[Encoded], title: str) -> Path:
    with atomic_path(path, "the interactive map") as tmp:
        tmp.write_text(page_html(title, maps), encoding="utf-8")
    return path


def read_page(text: str, where: str = "the page") -> list[Encoded]:
    """The maps a page written by ``write_page`` carries, as ``(meta, blobs)`` (for ``drlim view`` of a run)."""
    config = CONFIG.search(text)
    if config is None:
        raise DataError(f"{where} is not an explorer page written by drlim (no drlim-config); re-run the job")
    datasets = json.loads(config.group(1).replace("<\\/", "</"))["datasets"]
    maps: list[Encoded] = [(d["meta"], {}) for d in datasets if d.get("inline")]
    for found in BLOB.finditer(text):
        maps[int(found.group(1))][1][found.group(2)] = base64.b64decode(found.group(3))
    return maps
