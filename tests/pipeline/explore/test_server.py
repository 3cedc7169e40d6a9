import json
import socket
import threading
import urllib.request

import numpy as np
import pytest

from pipeline.errors import DrlimError
from pipeline.explore.encoding import encode
from pipeline.explore.points import MapPoints
from pipeline.explore.server import MapServer


def test_the_server_sends_the_page_the_description_and_the_binary_blobs_on_loopback():
    points = MapPoints(np.arange(8, dtype=np.float32).reshape(4, 2), np.arange(4), labels=np.array([1, 1, 2, 2]))
    meta, blobs = encode(points)
    server = MapServer([(meta, blobs)], "four points", port=0)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        assert server.address.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(server.address, timeout=10).read().decode()
        assert "<title>four points</title>" in page and '"url":"data/0/"' in page
        assert json.loads(urllib.request.urlopen(server.address + "data/0/meta.json", timeout=10).read()) == meta
        body = urllib.request.urlopen(server.address + "data/0/blob/position", timeout=10).read()
        assert np.frombuffer(body, np.float32).tolist() == list(range(8))
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.address + "data/1/meta.json", timeout=10)
    finally:
        server.httpd.shutdown()
        thread.join(10)


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DrlimError, match=f"port {port} on 127.0.0.1 is in use; choose another with --port N"):
            MapServer([], "t", port=port)
