"""offline serve's web page in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium (PyPI, pinned by .ci/run).

`python web_journey.py HOST PORT USER PASSWORD`: serves a source file on loopback,
opens the page at http://USER:PASSWORD@HOST:PORT/ (the daemon runs with
--web-password, so the page and its WebSocket are authorized by HTTP Basic), types the
link into the box, clicks Add, waits (60 s at most) until its row says `complete` with
the progress bar at 100 %, removes it and waits until the row is gone. Exits non-zero,
with the reason, on any difference.
"""

import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from source import serve

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
payload = os.urandom(90_000)
name = "web-journey.bin"
source = serve(payload, name)

options = webdriver.ChromeOptions()
options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
    options.add_argument(arg)
service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
driver = webdriver.Chrome(options=options, service=service)
try:
    driver.set_page_load_timeout(30)
    driver.get(f"http://{user}:{password}@{host}:{port}/")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.find_element(By.ID, "connection").text == "connected")
    assert password not in driver.page_source, "the password is in the page"

    driver.find_element(By.ID, "add-url").send_keys(source)
    driver.find_element(By.ID, "add-button").click()

    # The page redraws its rows each second: read them in one script, not element by
    # element (an element read between two redraws is stale).
    rows_js = """return Array.from(document.querySelectorAll('tr[data-gid]')).map(r => ({
        gid: r.dataset.gid,
        name: r.querySelector('.name').textContent,
        provider: r.querySelector('.provider').textContent,
        status: r.querySelector('.status').textContent,
        error: r.querySelector('.status').title,
        percent: r.querySelector('.progress').dataset.percent,
    }));"""

    def row():
        return next((r for r in driver.execute_script(rows_js) if r["name"] == name), None)

    deadline = time.monotonic() + 60
    seen = None
    while True:
        r = row()
        if r is not None:
            seen = r
            if r["status"] == "complete" and r["percent"] == "100":
                break
            if r["status"] == "error":
                sys.exit(f"the download failed: {r['error']}")
        if time.monotonic() > deadline:
            sys.exit(f"the row did not reach complete at 100 % in 60 s: {seen}")
        time.sleep(0.2)
    gid, provider = r["gid"], r["provider"]
    assert provider == "123pan", provider

    driver.execute_script(
        "document.querySelector(`tr[data-gid='${arguments[0]}'] button.remove`).click()", gid
    )
    WebDriverWait(driver, 20).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, f'tr[data-gid="{gid}"]')
    )
    print(f"web journey ok: {gid} added in the page, complete at 100 % ({provider}), removed")
finally:
    driver.quit()
