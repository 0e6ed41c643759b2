"""qbittorrent-api, unchanged, against `offline serve` as a qBittorrent.

Run by .ci/run with qbittorrent-api pinned:
`python qbittorrent_journey.py URL USERNAME PASSWORD PROVIDER PREFIX`, where URL is
the daemon's base URL, PROVIDER `6pan` or `123pan`, and PREFIX the daemon's
`--report-path-prefix`. Through qbittorrent-api's own calls, as Sonarr/Radarr use the
Web API:

- a wrong password fails to log in; the right one logs in (SID cookie);
- a category `tv` is made with the drive path `/Media/TV` as its save path;
- 6pan: a `.torrent` whose web seed is on loopback and a magnet link are added in it;
  123pan: an http link is added in it, and a magnet link is refused (`Fails.`);
- `torrents_info(category="tv")` is polled until every task reports complete
  (`pausedUP`, progress 1), with `save_path` and `content_path` under PREFIX;
- `torrents_files` names the torrent's file; `sync_maindata` counts `rid` up and
  sends only changes;
- everything is deleted (123pan: with its files, moved to the drive's trash) and the
  list is empty.

Exits non-zero, with the reason, on any difference.
"""

import hashlib
import os
import sys
import tempfile
import time

import qbittorrentapi
from source import serve, torrent

url, username, password, provider, prefix = sys.argv[1:6]

bad = qbittorrentapi.Client(host=url, username=username, password=password + "x")
try:
    bad.auth_log_in()
    sys.exit("a wrong password logged in")
except qbittorrentapi.LoginFailed:
    pass

client = qbittorrentapi.Client(host=url, username=username, password=password)
client.auth_log_in()
print("qBittorrent", client.app.version, "Web API", client.app.web_api_version)
assert client.app.default_save_path, "no default save path"

client.torrents_create_category(name="tv", save_path="/Media/TV")
categories = client.torrents_categories()
# A drive path given; the apps see it under the prefix, where the drive is mounted.
assert categories["tv"]["savePath"] == prefix + "/Media/TV", categories

names = {}
if provider == "6pan":
    payload = os.urandom(40_000)
    seed = serve(payload, "episode.mkv")
    metainfo = torrent("episode.mkv", payload, seed)
    with tempfile.NamedTemporaryFile(suffix=".torrent", delete=False) as f:
        f.write(metainfo)
    answer = client.torrents_add(torrent_files=f.name, category="tv", tags="sonarr")
    assert answer == "Ok.", answer
    magnet_hash = hashlib.sha1(b"qbittorrent-journey").hexdigest()
    magnet = f"magnet:?xt=urn:btih:{magnet_hash}&dn=pilot"
    answer = client.torrents_add(urls=magnet, category="tv")
    assert answer == "Ok.", answer
    # The same torrent again is a duplicate: not added.
    assert client.torrents_add(urls=magnet, category="tv") == "Fails."
    names = {"episode.mkv": len(payload), "pilot": None}
else:
    payload = os.urandom(30_000)
    link = serve(payload, "episode.mkv")
    answer = client.torrents_add(urls=link, category="tv", tags="sonarr")
    assert answer == "Ok.", answer
    refused = client.torrents_add(
        urls="magnet:?xt=urn:btih:" + hashlib.sha1(b"x").hexdigest(), category="tv"
    )
    assert refused == "Fails.", refused
    names = {"episode.mkv": len(payload)}

first = client.sync_maindata(rid=0)
assert first.get("full_update") is True, first
assert len(first["torrents"]) == len(names), first["torrents"]

deadline = time.monotonic() + 90
while True:
    torrents = client.torrents_info(category="tv")
    assert len(torrents) == len(names), [t.name for t in torrents]
    states = {t.name: (t.state, t.progress) for t in torrents}
    if all(t.state == "pausedUP" and t.progress == 1 for t in torrents):
        break
    errors = [t for t in torrents if t.state == "error"]
    assert not errors, [(t.name, t.state) for t in errors]
    if time.monotonic() > deadline:
        sys.exit(f"not complete in time: {states}")
    time.sleep(0.5)

for t in torrents:
    assert t.name in names, t.name
    assert t.category == "tv", t.category
    assert t.save_path.rstrip("/") == prefix + "/Media/TV", t.save_path
    assert t.content_path == f"{prefix}/Media/TV/{t.name}", t.content_path
    assert t.amount_left == 0, t.amount_left
    assert len(t.hash) == 40, t.hash
    if names[t.name] is not None:
        assert t.size == names[t.name], (t.name, t.size)
        files = client.torrents_files(torrent_hash=t.hash)
        assert [(f.name, f.size, f.progress) for f in files] == [
            (t.name, names[t.name], 1)
        ], files
sonarr = client.torrents_info(tag="sonarr")
assert [t.name for t in sonarr] == ["episode.mkv"], [t.name for t in sonarr]

later = client.sync_maindata(rid=first["rid"])
assert later["rid"] > first["rid"], (first["rid"], later["rid"])
assert not later.get("full_update"), later
for changed in later.get("torrents", {}).values():
    assert "name" not in changed or changed.get("state"), changed

hashes = [t.hash for t in torrents]
client.torrents_delete(delete_files=(provider == "123pan"), torrent_hashes=hashes)
deadline = time.monotonic() + 30
while client.torrents_info():
    if time.monotonic() > deadline:
        sys.exit("deleted torrents are still listed")
    time.sleep(0.2)
gone = client.sync_maindata(rid=later["rid"])
assert sorted(gone.get("torrents_removed", [])) == sorted(hashes), gone
client.auth_log_out()
print("qbittorrent-api journey:", provider, "ok")
