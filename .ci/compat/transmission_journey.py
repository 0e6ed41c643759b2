"""transmission-rpc, unchanged, against `offline serve` as a Transmission.

Run by .ci/run with transmission-rpc pinned:
`python transmission_journey.py HOST PORT USERNAME PASSWORD PROVIDER PREFIX`. Through
transmission-rpc's own calls (its client does the `X-Transmission-Session-Id`
handshake and HTTP Basic itself):

- a wrong password is refused (401);
- 6pan: a `.torrent` whose web seed is on loopback (`add_torrent` of its bytes, with
  `download_dir` and `labels`) and a magnet link; 123pan: an http link, and a magnet
  link refused with the drive's reason;
- `get_torrent` until each is finished (`percent_done` 1, `left_until_done` 0,
  `is_finished`), with `download_dir` under PREFIX and the torrent's file listed;
- `remove_torrent` (123pan: with `delete_data`) until `get_torrents` is empty.

Exits non-zero, with the reason, on any difference.
"""

import hashlib
import os
import sys
import time

import transmission_rpc
from source import serve, torrent

host, port, username, password, provider, prefix = sys.argv[1:7]
port = int(port)

try:
    transmission_rpc.Client(host=host, port=port, username=username, password=password + "x")
    sys.exit("a wrong password was let in")
except transmission_rpc.TransmissionAuthError:
    pass

client = transmission_rpc.Client(host=host, port=port, username=username, password=password)
session = client.get_session()
print("Transmission", session.version, "RPC", session.rpc_version)

expected = {}
if provider == "6pan":
    payload = os.urandom(45_000)
    seed = serve(payload, "movie.mkv")
    added = client.add_torrent(
        torrent("movie.mkv", payload, seed), download_dir=prefix + "/Media/Movies", labels=["radarr"]
    )
    expected[added.id] = ("movie.mkv", len(payload))
    magnet = "magnet:?xt=urn:btih:" + hashlib.sha1(b"transmission-journey").hexdigest()
    other = client.add_torrent(magnet, download_dir="/Media/Movies")
    expected[other.id] = (other.name, None)
    again = client.add_torrent(magnet, download_dir="/Media/Movies")
    assert again.id == other.id, (again.id, other.id)
else:
    payload = os.urandom(35_000)
    link = serve(payload, "movie.mkv")
    added = client.add_torrent(link, download_dir="/Media/Movies", labels=["radarr"])
    expected[added.id] = ("movie.mkv", len(payload))
    try:
        client.add_torrent("magnet:?xt=urn:btih:" + hashlib.sha1(b"y").hexdigest())
        sys.exit("123pan took a magnet link")
    except transmission_rpc.TransmissionError as e:
        print("magnet refused:", e.message if hasattr(e, "message") else e)

deadline = time.monotonic() + 90
while True:
    done = [client.get_torrent(i) for i in expected]
    if all(t.is_finished and t.percent_done == 1 for t in done):
        break
    failed = [t for t in done if t.error != 0]
    assert not failed, [(t.name, t.error_string) for t in failed]
    if time.monotonic() > deadline:
        sys.exit(f"not finished in time: {[(t.name, t.status, t.percent_done) for t in done]}")
    time.sleep(0.5)

for t in done:
    name, size = expected[t.id]
    assert t.name == name, (t.name, name)
    assert t.left_until_done == 0, t.left_until_done
    assert t.download_dir.rstrip("/") == prefix + "/Media/Movies", t.download_dir
    assert len(t.hash_string) == 40, t.hash_string
    if size is not None:
        assert t.total_size == size, (t.total_size, size)
        files = t.get_files()
        assert [(f.name, f.size, f.completed) for f in files] == [(name, size, size)], files
labelled = [t for t in client.get_torrents() if "radarr" in t.labels]
assert [t.id for t in labelled] == [added.id], [(t.id, t.labels) for t in labelled]

client.remove_torrent(list(expected), delete_data=(provider == "123pan"))
deadline = time.monotonic() + 30
while client.get_torrents():
    if time.monotonic() > deadline:
        sys.exit("removed torrents are still listed")
    time.sleep(0.2)
print("transmission-rpc journey:", provider, "ok")
