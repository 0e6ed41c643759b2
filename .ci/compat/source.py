"""What the compatibility journeys share: a loopback HTTP server serving one payload,
a torrent of a payload with that server as its web seed, and a wait for an end."""

import hashlib
import http.server
import sys
import threading
import time


def serve(payload: bytes, name: str) -> str:
    """Serves `payload` on 127.0.0.1 (an ephemeral port) from a daemon thread; its URL."""

    class Source(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/{name}"


def bencode(value) -> bytes:
    """Canonical bencode of ints, bytes/str, lists and dicts (keys sorted)."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(type(value))


def torrent(name: str, payload: bytes, seed: str) -> bytes:
    """A single-file torrent of `payload` named `name`, web seed `seed`."""
    piece = 16 * 1024
    pieces = b"".join(
        hashlib.sha1(payload[i : i + piece]).digest() for i in range(0, len(payload), piece)
    )
    info = {"length": len(payload), "name": name, "piece length": piece, "pieces": pieces}
    return bencode({"info": info, "url-list": seed})


def until_stopped(fetch, what: str, deadline_s: float = 60):
    deadline = time.monotonic() + deadline_s
    while True:
        found = fetch()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not end")
        time.sleep(0.2)
