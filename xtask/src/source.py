"""Sources for `cargo xtask bench --only rpc`, on 127.0.0.1 only.

GET /f/N: a small file (argv[1] bytes); /slow/N: a 1 GiB file sent 1 KiB a second (it
stays downloading); anything else: 404. Prints its port, then serves until its
standard input closes (the bench that started it is gone) or argv[2] seconds pass.
"""

import http.server
import os
import sys
import threading
import time

SMALL = b"x" * int(sys.argv[1])
MAX_SECONDS = float(sys.argv[2])
SLOW_SIZE = 1 << 30


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def answer(self, head):
        path = self.path.split("?")[0]
        if path.startswith("/f/"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(SMALL)))
            self.end_headers()
            if not head:
                self.wfile.write(SMALL)
        elif path.startswith("/slow/"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(SLOW_SIZE))
            self.end_headers()
            if head:
                return
            try:
                while True:
                    self.wfile.write(b"s" * 1024)
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                return
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


def until_stdin_closes():
    sys.stdin.read()
    os._exit(0)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=until_stdin_closes, daemon=True).start()
threading.Timer(MAX_SECONDS, lambda: os._exit(0)).start()
print(server.server_address[1], flush=True)
server.serve_forever()
