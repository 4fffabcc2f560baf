"""A local HTTP server that speaks the OpenAI chat-completions protocol, with scripted 429 and 500 answers."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ServedInThread:
    """A local HTTP(S) server (``self.httpd``) that answers from a daemon thread while the ``with`` block runs."""

    httpd: ThreadingHTTPServer

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]


class ChatServer(ServedInThread):
    """Answers POST /v1/chat/completions; ``failures`` is a list of statuses served first, in order."""

    def __init__(self, api_key: str, failures=(), delay_s: float = 0.05, retry_after: str = "0"):
        self.api_key = api_key
        self.failures = list(failures)
        self.delay_s = delay_s
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, handler, status: int, payload: dict, headers: dict | None = None):
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(body)
        with self.lock:
            self.statuses.append(status)

    def answer(self, body: dict) -> str:
        """What the model says to a request (a subclass may answer otherwise)."""
        question = body["messages"][-1]["content"]
        return f"**Answer** to: {question}\n\n- first point\n- second point"

    def handle(self, handler):
        length = int(handler.headers.get("Content-Length", 0))
        body = json.loads(handler.rfile.read(length))
        if handler.path != "/v1/chat/completions":
            return self.reply(handler, 404, {"error": {"message": "not found"}})
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            # As OpenAI does, the refusal quotes the key it was given.
            presented = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {presented}."
            return self.reply(handler, 401, {"error": {"message": message, "type": "invalid_request_error"}})
        with self.lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failure = self.failures.pop(0) if self.failures else None
        try:
            time.sleep(self.delay_s)
            if failure == 429:
                return self.reply(
                    handler, 429, {"error": {"message": "rate limited"}}, {"Retry-After": self.retry_after}
                )
            if failure is not None:
                return self.reply(handler, failure, {"error": {"message": "server error"}})
            answer = self.answer(body)
            prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
            completion_tokens = min(len(answer.split()), body.get("max_tokens") or 10**6)
            return self.reply(
                handler,
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                },
            )
        finally:
            with self.lock:
                self.in_flight -= 1
