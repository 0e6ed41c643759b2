"""aria2p, unchanged, against `offline serve` (which stands in for aria2c).

Run by .ci/run with aria2p pinned: `python aria2p_journey.py HOST PORT SECRET`. It
serves a source file on loopback, then through aria2p's own API: listens to
notifications over the WebSocket, adds the link with a `dir`, follows it with
`tellStatus` until `complete`, expects `aria2.onDownloadComplete` for its GID, lists
the downloads, removes the result and purges. Exits non-zero, with the reason, on any
difference.
"""

import os
import sys
import threading
import time

import aria2p
from source import serve

host, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
payload = os.urandom(120_000)

source = serve(payload, "aria2p.bin")

api = aria2p.API(aria2p.Client(host=host, port=port, secret=secret))
completed = threading.Event()
seen = []


def on_complete(_api, gid):
    seen.append(gid)
    completed.set()


api.listen_to_notifications(threaded=True, on_download_complete=on_complete)
time.sleep(0.5)

download = api.add_uris([source], options={"dir": "/aria2p/journey"})
deadline = time.monotonic() + 60
while True:
    download.update()
    if download.status in ("complete", "error"):
        break
    if time.monotonic() > deadline:
        sys.exit(f"{download.gid} did not end: {download.status}")
    time.sleep(0.2)
assert download.status == "complete", download.error_message
assert download.dir.as_posix() == "/aria2p/journey", download.dir
assert completed.wait(10), "no aria2.onDownloadComplete notification"
assert download.gid in seen, seen
assert download.gid in [d.gid for d in api.get_downloads()]
api.remove([download])
api.purge()
assert download.gid not in [d.gid for d in api.get_downloads()]
api.stop_listening()
version = api.client.get_version()
print(f"aria2p journey ok: {download.gid} complete in {download.dir}, notified; offline serve {version['version']}")
