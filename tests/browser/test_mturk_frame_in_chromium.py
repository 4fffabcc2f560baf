"""MTurk shows an ExternalQuestion in an iframe on its worker site (issue 14, finding 4).

A framing page is served over HTTPS (a self-signed certificate made here) under MTurk's production and
sandbox worker origins and under an origin MTurk does not use; Chromium maps those host names to the
local server (``--host-resolver-rules``). The rater's MTurk URL, framed from each, must load inside the
frame for MTurk's origins and be blocked for the other.
"""

import ssl
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from playwright.sync_api import sync_playwright

from ratings.models import Recruitment
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.inference_workers.chat_server import ServedInThread
from tests.ratings.rating_setup import rating_study

ALLOWED = ("worker.mturk.com", "workersandbox.mturk.com")  # production and sandbox worker sites
REFUSED = ("evil.example", "www.mturk.com.evil.example")
BLOCKED_FRAME = "chrome-error://chromewebdata/"


class FramingSite(ServedInThread):
    """An HTTPS server whose every page is an iframe of ``target`` (the rater's URL)."""

    def __init__(self, tmp_path, target: str):
        key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mturk-frame-test"]
            + ["-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
        body = f'<!doctype html><title>HIT</title><iframe id="hit" src="{target}" width="800" height="600"></iframe>'

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)


def framed(browser, origin_host: str) -> tuple[str, str]:
    """(the iframe's URL, its text) once the HIT page of ``origin_host`` has loaded and its iframe has
    committed a document: our page, or Chromium's error page for a blocked frame."""
    page = browser.new_page()
    try:
        page.goto(f"https://{origin_host}/projects/hit", wait_until="load")
        frame = page.frames[1]
        for _ in range(300):  # a generous ceiling; the frame's URL is what moves
            if frame.url not in ("", "about:blank"):
                break
            page.wait_for_timeout(100)
        frame.wait_for_load_state("load")
        return frame.url, frame.evaluate("document.body ? document.body.innerText : ''")
    finally:
        page.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_rater_page_loads_framed_by_mturk_and_is_blocked_framed_elsewhere(live_server, tmp_path):
    study = rating_study(n_prompts=1, recruitment=Recruitment.MTURK)
    # The HIT as MTurk frames it before the worker accepts (a preview: no rater is created).
    preview = "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1"
    target = f"{live_server.url}{reverse('rater:enter', args=[study.token])}{preview}"
    with FramingSite(tmp_path, target) as site, sync_playwright() as p:
        rules = ", ".join(f"MAP {host} 127.0.0.1:{site.port}" for host in ALLOWED + REFUSED)
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}", "--ignore-certificate-errors"],
        )
        try:
            seen = {host: framed(browser, host) for host in ALLOWED + REFUSED}
        finally:
            browser.close()
    for host in ALLOWED:
        url, text = seen[host]
        assert url.startswith(live_server.url) and "Accept the HIT" in text, (host, url, text[:200])
    for host in REFUSED:
        url, text = seen[host]
        assert url == BLOCKED_FRAME and "Accept the HIT" not in text, (host, url, text[:200])
