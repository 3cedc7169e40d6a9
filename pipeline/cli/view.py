"""``drlim view``: a run's map, a model's or an embeddings folder's, served on loopback (or written as one page)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pipeline.cli.models import tracker
from pipeline.errors import ConfigError

VIEW_DESCRIPTION = """\
Show the interactive map of a run, of the run that logged a model, or of an embeddings Parquet file or folder
(a run's embeddings.parquet, or what drlim embed writes; millions of rows are read in chunks and sent to the page
in binary). Two targets are drawn side by side, linked by sample id. Serves the page on 127.0.0.1 until Ctrl-C,
or writes it as one self-contained HTML file with --out.
"""


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "view",
        help="serve the interactive map of a run, a model or an embeddings folder on loopback",
        description=VIEW_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  drlim view 3f2a...e9 (a run id, as drlim run prints it)\n"
        "  drlim view models:/drlim-mnist-4-9@champion --port 8800\n"
        "  drlim view emb.parquet\n"
        "  drlim view RUN_KNN RUN_INVARIANT --out compare.html",
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="RUN_ID, MODEL_URI or EMBEDDINGS (one, or two)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: %(default)s; 0: any free)")
    p.add_argument("--out", type=Path, help="write one self-contained HTML page here instead of serving")
    p.add_argument("--workdir", help="where the default MLflow store lives (default: current directory)")
    p.set_defaults(func=view)


def view(args: argparse.Namespace) -> None:
    from pipeline.explore.page import side_by_side, write_encoded
    from pipeline.explore.server import MapServer
    from pipeline.orchestration.view import load_maps

    if len(args.targets) > 2:
        raise ConfigError(f"drlim view shows one map or two side by side, got {len(args.targets)} targets")
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port {args.port}: choose a port from 1 to 65535, or 0 for any free one")
    store = tracker(args.workdir)
    with tempfile.TemporaryDirectory(prefix="drlim-view-") as scratch:
        maps = side_by_side([m for target in args.targets for m in load_maps(target, store, Path(scratch))])
    title = " | ".join(meta["title"] or "map" for meta, _ in maps)
    points = sum(meta["n"] for meta, _ in maps)
    if args.out is not None:
        print(f"wrote {write_encoded(args.out, maps, title)} ({points:,} points)")
        return
    server = MapServer(maps, title, port=args.port)
    print(f"serving {points:,} points at {server.address} (Ctrl-C stops)", flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        print("stopped")
