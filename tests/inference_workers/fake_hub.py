"""A local Hugging Face Hub that speaks the file API as huggingface_hub calls it (read in its source):

- ``GET /api/models/<repo>/revision/<rev>?blobs=true``: the commit ``sha`` and the ``siblings`` with sizes
  (``HfApi.model_info(files_metadata=True)``);
- ``HEAD /<repo>/resolve/<commit>/<file>``: ``X-Repo-Commit``, ``ETag`` and ``Content-Length``, which
  ``hf_hub_download`` requires before it fetches (``get_hf_file_metadata``);
- ``GET`` of the same, honouring ``Range: bytes=N-`` (a resumed download);
- errors as the Hub sends them: 404 with ``X-Error-Code: RepoNotFound``, ``RevisionNotFound`` or ``EntryNotFound``.

A repo is ``{"files": {name: bytes}, "refs": {"main": ...}, "token": None or the bearer token it needs}``; each
repo has one commit, named by the hash of its files.
"""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .chat_server import ServedInThread


def folder_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class FakeHub(ServedInThread):
    def __init__(self, port: int = 0):
        self.repos: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (method, path)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hub.handle(self, body=True)

            def do_HEAD(self):
                hub.handle(self, body=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", token: str | None = None) -> str:
        commit = hashlib.sha1(
            b"".join(k.encode() + v for k, v in sorted(files.items())), usedforsecurity=False
        ).hexdigest()
        self.repos[repo_id] = {"files": files, "commit": commit, "refs": {branch: commit}, "token": token}
        return commit

    def fetched(self) -> set[str]:
        """The file names whose bytes were sent (GET on resolve/)."""
        return {
            path.split("/resolve/", 1)[1].split("/", 1)[1]
            for m, path in self.requests
            if m == "GET" and "/resolve/" in path
        }

    # --- serving ------------------------------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = unquote(urlsplit(req.path).path)
        with self.lock:
            self.requests.append((req.command, path))
        if path.startswith("/api/models/") and "/revision/" in path:
            repo_id, revision = path[len("/api/models/") :].split("/revision/", 1)
            repo = self._repo(req, repo_id, revision)
            if repo is None:
                return
            siblings = [
                {
                    "rfilename": name,
                    "size": len(data),
                    "blobId": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
                    **(
                        {"lfs": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}}
                        if name.endswith((".safetensors", ".bin"))
                        else {}
                    ),
                }
                for name, data in sorted(repo["files"].items())
            ]
            info = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo["commit"],
                "private": repo["token"] is not None,
                "siblings": siblings,
            }
            self._send(req, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
            return
        if "/resolve/" in path:
            repo_id, rest = path.lstrip("/").split("/resolve/", 1)
            revision, _, filename = rest.partition("/")
            repo = self._repo(req, repo_id, revision)
            if repo is None:
                return
            data = repo["files"].get(filename)
            headers = {"X-Repo-Commit": repo["commit"]}
            if data is None:
                self._send(req, 404, b"Entry not found", {**headers, "X-Error-Code": "EntryNotFound"}, body)
                return
            headers |= {
                "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            start = 0
            if (spec := req.headers.get("Range", "")).startswith("bytes="):
                start = int(spec[len("bytes=") :].split("-", 1)[0] or 0)
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._send(req, 206 if start else 200, data[start:], headers, body)
            return
        self._send(req, 404, b"Not found", {}, body)

    def _repo(self, req, repo_id: str, revision: str) -> dict | None:
        repo = self.repos.get(repo_id)
        if repo is not None and repo["token"] and req.headers.get("Authorization") != f"Bearer {repo['token']}":
            repo = None  # the Hub answers a private repo without the right token as if it did not exist
        if repo is None:
            self._send(req, 401, b"Repository not found", {"X-Error-Code": "RepoNotFound"}, req.command == "GET")
            return None
        if revision != repo["commit"] and revision not in repo["refs"]:
            self._send(req, 404, b"Revision not found", {"X-Error-Code": "RevisionNotFound"}, req.command == "GET")
            return None
        return repo

    @staticmethod
    def _send(req, status: int, data: bytes, headers: dict, body: bool) -> None:
        req.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            req.send_header(name, value)
        req.end_headers()
        if body:
            req.wfile.write(data)
