"""A loopback HTTP server serving one payload, for the compatibility journeys."""

import http.server
import threading


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
