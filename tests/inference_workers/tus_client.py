"""A tus 1.0.0 client over raw HTTP (requests, and http.client for a connection cut mid-chunk), logged in as a
Django session with its CSRF token: what the browser's upload.js does, for the tests and bench/upload.py."""

import base64
import hashlib
import http.client
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(1024**2):
            digest.update(data)
    return digest.hexdigest()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class TusClient:
    def __init__(self, base_url: str, sessionid: str, page_path: str):
        """Logged in with ``sessionid``; the CSRF cookie comes from a GET of ``page_path`` (the upload page)."""
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.cookies.set("sessionid", sessionid)
        response = self.http.get(self.base_url + page_path)
        response.raise_for_status()
        self.csrf = self.http.cookies["csrftoken"]

    def headers(self, **extra) -> dict:
        return {**TUS, "X-CSRFToken": self.csrf, **{k.replace("_", "-"): str(v) for k, v in extra.items()}}

    def create(self, create_path: str, path: Path, sha256: str | None = None) -> requests.Response:
        metadata = f"filename {b64(path.name)},sha256 {b64(sha256 or file_sha256(path))}"
        return self.http.post(
            self.base_url + create_path,
            headers=self.headers(Upload_Length=path.stat().st_size, Upload_Metadata=metadata),
        )

    def offset(self, location: str) -> int:
        response = self.http.head(self.base_url + location, headers=self.headers())
        response.raise_for_status()
        return int(response.headers["Upload-Offset"])

    def patch(self, location: str, offset: int, data: bytes, checksum: bool = True) -> requests.Response:
        extra = {"Upload_Checksum": "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()}
        return self.http.patch(
            self.base_url + location,
            data=data,
            headers=self.headers(Upload_Offset=offset, Content_Type=OCTETS, **(extra if checksum else {})),
        )

    def open_patch(self, location: str, offset: int, content_length: int) -> http.client.HTTPConnection:
        """A PATCH whose headers are sent and whose body the caller sends (``conn.send``), as slowly as it likes."""
        url = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.putrequest("PATCH", location)
        cookies = f"sessionid={self.http.cookies['sessionid']}; csrftoken={self.csrf}"
        headers = self.headers(Upload_Offset=offset, Content_Type=OCTETS, Content_Length=content_length, Cookie=cookies)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        return conn

    def cut_off(self, location: str, path: Path, offset: int, send_bytes: int) -> None:
        """A PATCH announcing the rest of the file whose connection drops after ``send_bytes`` (a lost network)."""
        conn = self.open_patch(location, offset, path.stat().st_size - offset)
        with open(path, "rb") as fh:
            fh.seek(offset)
            left = send_bytes
            while left:
                data = fh.read(min(1024**2, left))
                conn.send(data)
                left -= len(data)
        conn.sock.close()

    def resume(self, location: str, path: Path, chunk_bytes: int, max_tries: int = 50) -> requests.Response:
        """PATCH the rest of the file from the offset the server reports, chunk by chunk, as a client that
        lost its connection does; a 423 (the dropped request still writing) or 409 means: ask HEAD again."""
        size = path.stat().st_size
        offset = self.offset(location)
        with open(path, "rb") as fh:
            for _ in range(max_tries * max(1, size // chunk_bytes)):
                if offset >= size:
                    break
                fh.seek(offset)
                response = self.patch(location, offset, fh.read(chunk_bytes))
                if response.status_code == 204:
                    offset = int(response.headers["Upload-Offset"])
                    if offset == size:
                        return response
                elif response.status_code in (409, 423):
                    time.sleep(0.2)
                    offset = self.offset(location)
                else:
                    return response
        # Every byte is on the server, but the request that sent the last ones was lost: an empty PATCH attaches it.
        return self.patch(location, size, b"")
