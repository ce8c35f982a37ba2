"""A hostile (or broken) API server on loopback, for the tests of issue 11.

Every request, whatever its path, gets the answer of the current `mode`:

  redirect      302 to another origin (`evil`, a second loopback server that records
                whether a key reached it)
  redirect-307  the same with 307 (what a proxy answers to an upload)
  redirect-hold 307 at once, then neither reading the request body nor closing
  trickle       the status line and headers one byte every `delay` seconds, forever
  trickle-body  headers at once, then the body one byte every `delay` seconds
  next-loop     a page whose `next` link names itself
  huge          a 200 list answer of `huge_bytes` bytes (streamed, never built in memory)
  echo-key      401 whose body echoes the key header it received
  echo-key-cut  401 whose message holds the key across character 300 (where it is cut)
  echo-key-upper 401 whose message echoes the key in upper case
  echo-key-part 200 {"error": ...} holding 12 consecutive characters of the key
  error-200     200 {"error": ...} (echoing the key too)
  retry-after   503 with `Retry-After: 86400`
  ok-empty      200 [] (a server that knows nothing)
  escapes       terminal escapes and CRs in every text it gives: telescope names (lists
                and details), organisation names, the detail of a 400 to every POST
                (`ESCAPES`); other lists are empty
  page-404      telescope lists whose page 2 answers 404; the organisation `known`
                exists, any other (and its telescope list) answers 404
  silent        reads the request, then never answers (nor closes) until closed
  no-uuid       every list holds an object without `uuid`; telescope details 404
  not-object    every list holds an entry that is not an object; telescope details 404
  pages         every list page links to one more, without end (a new link each time)

It records (method, path, key header) of every request in `seen`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY_HEADER = "X-Arcsecond-API-Authorization"
# The key the tests give a hostile server (every output is searched for it), and the
# settings that give up on such a server soon.
KEY = "h0st1le5ecretc0ffee0123456789abcd"
QUICK = {"connect_timeout": 0.5, "read_timeout": 0.5, "retries": 1, "backoff_base": 0.01,
         "backoff_max": 0.2}
MODES = ("redirect", "redirect-307", "redirect-hold", "trickle", "trickle-body", "next-loop",
         "huge", "echo-key", "error-200", "retry-after", "ok-empty", "escapes",
         "page-404", "silent", "no-uuid", "not-object", "pages",
         "echo-key-cut", "echo-key-upper", "echo-key-part")
# Retitle the terminal, clear the screen (ESC and C1 CSI), then overwrite the line.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b2J\rAll files uploaded."


class Hostile:
    def __init__(self, mode: str = "ok-empty", *, delay: float = 2.0,
                 huge_bytes: int = 20 << 20, evil: Hostile | None = None):
        self.mode = mode
        self.delay = delay
        self.huge_bytes = huge_bytes
        self.evil = evil
        self.seen: list[tuple[str, str, str | None]] = []
        self.closing = threading.Event()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                key = self.headers.get(KEY_HEADER)
                hostile.seen.append((self.command, self.path, key))
                try:
                    hostile.answer(self, key)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client gave up (or was told to): that is the test
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # --- answers ---------------------------------------------------------------------

    def answer(self, handler: BaseHTTPRequestHandler, key: str | None) -> None:
        mode = self.mode
        if mode.startswith("redirect"):
            target = (self.evil.url if self.evil else "https://evil.example") + handler.path
            self._send(handler, 302 if mode == "redirect" else 307, b"",
                       {"Location": target})
            if mode == "redirect-hold":
                # A proxy that answers before reading the upload, and neither reads nor
                # closes: the client's send blocks.
                self.closing.wait(60)
        elif mode == "trickle":
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                if self.closing.wait(self.delay):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
        elif mode == "trickle-body":
            body = b"[" + b" " * 10_000 + b"]"
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            for index in range(len(body)):
                handler.wfile.write(body[index:index + 1])
                handler.wfile.flush()
                if self.closing.wait(self.delay):
                    return
        elif mode == "next-loop":
            path = handler.path.split("?")[0]
            self._json(handler, 200, {"count": 2, "next": f"{self.url}{path}?page=2",
                                      "results": []})
        elif mode == "huge":
            item = b'{"uuid": "00000000-0000-0000-0000-000000000000", "name": "x"},'
            count = self.huge_bytes // len(item)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(1 + count * len(item) + 2))
            handler.end_headers()
            handler.wfile.write(b"[")
            block = item * 1000
            for _ in range(count // 1000):
                handler.wfile.write(block)
            handler.wfile.write(item * (count % 1000))
            handler.wfile.write(b"{}]")
        elif mode == "echo-key":
            self._json(handler, 401, {"detail": f"Invalid key: {key} is not a key we know"})
        elif mode.startswith("echo-key-"):
            secret = (key or "").removeprefix("Key ")
            if mode == "echo-key-cut":
                self._json(handler, 401, {"detail": "." * 285 + f"{secret} is not a key"})
            elif mode == "echo-key-upper":
                self._json(handler, 401, {"detail": f"INVALID KEY {secret.upper()}"})
            else:
                self._json(handler, 200, {"error": f"no such key ...{secret[10:22]}..."})
        elif mode == "error-200":
            self._json(handler, 200, {"error": f"database unavailable while checking {key}"})
        elif mode == "retry-after":
            self._json(handler, 503, {"detail": "down for maintenance"},
                       {"Retry-After": "86400"})
        elif mode == "escapes":
            self._escapes(handler)
        elif mode == "page-404":
            self._page_404(handler)
        elif mode == "silent":
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            self.closing.wait(120)
        elif mode in ("no-uuid", "not-object", "pages"):
            self._odd_list(handler, mode)
        else:
            self._json(handler, 200, [])

    def _escapes(self, handler) -> None:
        path = handler.path.split("?")[0]
        scope = {"uuid": "00000000-0000-4000-8000-000000000001", "name": f"Scope {ESCAPES}",
                 "alias": f"alias{ESCAPES}"}
        if handler.command == "POST":
            self._json(handler, 400, {"detail": f"refused {ESCAPES}"})
        elif path.endswith("/telescopes/"):
            self._json(handler, 200, [scope])
        elif "/telescopes/" in path:
            self._json(handler, 200, scope)
        elif path.startswith("/organisations/"):
            self._json(handler, 200, {"subdomain": path.split("/")[2],
                                      "name": f"Org {ESCAPES}"})
        else:
            self._json(handler, 200, [])

    def _page_404(self, handler) -> None:
        path, _, query = handler.path.partition("?")
        missing = (path.startswith("/organisations/") and path != "/organisations/known/"
                   or "telescopes" in path and not path.startswith(("/known/", "/telescopes/"))
                   or "page=2" in query)
        if missing:
            self._json(handler, 404, {"detail": "Not found."})
        else:
            scope = {"uuid": "00000000-0000-4000-8000-000000000002", "name": "Page one"}
            self._json(handler, 200, {"count": 2, "next": f"{self.url}{path}?page=2",
                                      "results": [scope]} if "telescopes" in path
                       else {"subdomain": "known", "name": "Known"})

    def _odd_list(self, handler, mode: str) -> None:
        path, _, query = handler.path.partition("?")
        parts = [p for p in path.split("/") if p]
        if handler.command != "GET" or len(parts) >= 2 and parts[-2] == "telescopes":
            self._json(handler, 404, {"detail": "Not found."})
            return
        if mode == "pages":
            page = int(query.split("page=")[1]) if "page=" in query else 1
            self._json(handler, 200, {"count": 10**6, "next": f"{self.url}{path}?page={page + 1}",
                                      "results": [{"uuid": f"u{page}", "name": f"n{page}"}]})
            return
        odd = {"name": "Main scope", "alias": "main", "date": "2021-06-01"}
        self._json(handler, 200, {"count": 1, "next": None,
                                  "results": [odd if mode == "no-uuid" else "Main scope"]})

    def _json(self, handler, status: int, data, headers: dict | None = None) -> None:
        self._send(handler, status, json.dumps(data).encode(), headers)

    @staticmethod
    def _send(handler, status: int, body: bytes, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Hostile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
