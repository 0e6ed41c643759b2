"""aria2p, unchanged, against `offline --provider 6pan serve --watch DIR`.

Run by .ci/run with aria2p pinned: `python aria2p_6pan_journey.py HOST PORT SECRET
WATCH_DIR`. It serves two payloads on loopback and makes a single-file torrent of
each, whose web seed (BEP 19 `url-list`) is that loopback URL (the emulator downloads
torrents through loopback web seeds). Through aria2p's own API: `add_torrent` of the
first, followed with `tellStatus` until `complete`, its file and length as the
torrent says; then the second torrent is dropped in the watch folder, and is expected
among `tellStopped`'s downloads, complete, with the file moved to
`WATCH_DIR/.submitted/`. Exits non-zero, with the reason, on any difference.
"""

import os
import sys
import tempfile
import time

import aria2p
from source import serve, torrent, until_stopped

host, port, secret, watch = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


api = aria2p.API(aria2p.Client(host=host, port=port, secret=secret))

# addTorrent through aria2p (it reads the file and sends it base64).
first = os.urandom(50_000)
seed = serve(first, "first.bin")
with tempfile.NamedTemporaryFile(suffix=".torrent", delete=False) as f:
    f.write(torrent("first.bin", first, seed))
download = api.add_torrent(f.name)


def first_done():
    download.update()
    return download if download.status in ("complete", "error") else None


until_stopped(first_done, download.gid)
assert download.status == "complete", download.error_message
assert download.total_length == len(first), download.total_length
assert [f.length for f in download.files] == [len(first)], download.files
assert download.bittorrent is not None, "no bittorrent struct"

# A .torrent dropped in the watch folder.
second = os.urandom(40_000)
seed = serve(second, "dropped.bin")
part = os.path.join(watch, "dropped.torrent.part")
with open(part, "wb") as f:
    f.write(torrent("dropped.bin", second, seed))
os.rename(part, os.path.join(watch, "dropped.torrent"))


def dropped_done():
    for status in api.client.tell_stopped(0, 100):
        name = status.get("bittorrent", {}).get("info", {}).get("name")
        if name == "dropped.bin" and status["status"] in ("complete", "error"):
            return status
    return None


status = until_stopped(dropped_done, "the dropped torrent")
assert status["status"] == "complete", status
assert status["totalLength"] == str(len(second)), status
assert os.path.exists(os.path.join(watch, ".submitted", "dropped.torrent")), os.listdir(watch)
dropped = api.get_download(status["gid"])
assert dropped.is_complete, dropped.status
version = api.client.get_version()
print(
    f"aria2p 6pan journey ok: addTorrent {download.gid} and the watch folder's "
    f"{dropped.gid} complete; offline serve {version['version']}"
)
