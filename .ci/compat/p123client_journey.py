"""p123client, unchanged but for the base URL, against the emulator's 123pan half.

Run by .ci/run with p123client pinned: `python p123client_journey.py BASE_URL CLIENT_ID
CLIENT_SECRET`. It serves a source file on loopback, then drives p123client's own
`login`, `fs_mkdir`, `offline_download`, `offline_process`, `fs_list` and
`download_info` (p123client sends the mkdir body and the list query with lowercased
keys, and absent options as they come), fetches the download URL and checks the bytes
and the MD5 etag. Exits non-zero, with the reason, on any difference.
"""

import hashlib
import os
import sys
import time
import urllib.request

from p123client import P123OpenClient, check_response
from source import serve

base, client_id, client_secret = sys.argv[1:4]
payload = os.urandom(150_000)

source = serve(payload, "payload.bin")


def ok(resp):
    return check_response(resp)["data"]


client = P123OpenClient()
client.login(client_id, client_secret, base_url=base)
assert client.token, "login gave no token"

# A name of its own: the emulator may have served other clients before (schemathesis).
top = f"Movies-{os.getpid()}-{time.time_ns()}"
movies = ok(client.fs_mkdir(top, base_url=base))["dirID"]
year = ok(client.fs_mkdir("2026", parent_id=movies, base_url=base))["dirID"]

task = ok(
    client.offline_download(
        {"url": source, "dirID": year, "fileName": "payload.bin", "callBackUrl": None},
        base_url=base,
    )
)["taskID"]
deadline = time.monotonic() + 60
while True:
    progress = ok(client.offline_process(task, base_url=base))
    if progress["status"] in (1, 2):
        break
    if time.monotonic() > deadline:
        sys.exit(f"task {task} did not end: {progress}")
    time.sleep(0.2)
assert progress["status"] == 2, f"task failed: {progress}"

names, last = [], 0
while last != -1:
    page = ok(client.fs_list({"parentFileId": 0, "lastFileId": last}, base_url=base))
    names += [e["filename"] for e in page["fileList"]]
    last = page["lastFileId"]
assert top in names, names
listing = ok(client.fs_list(year, base_url=base))
assert listing["lastFileId"] == -1, listing
entries = [e for e in listing["fileList"] if not e["trashed"]]
assert [(e["filename"], e["size"]) for e in entries] == [("payload.bin", len(payload))], entries
entry = entries[0]

url = ok(client.download_info(entry["fileId"], base_url=base))["downloadUrl"]
data = urllib.request.urlopen(url, timeout=30).read()
assert data == payload, f"downloaded {len(data)} bytes that differ from the source"
assert entry["etag"] == hashlib.md5(payload).hexdigest(), entry

print(f"p123client journey ok: /{top}/2026/payload.bin, {len(payload)} bytes, etag {entry['etag']}")
