"""A loopback web server for the monitoring tests: feeds, pages, robots.txt and a webhook,
each path scripted (status, headers, body, a delay, a slow drip, a redirect), every request
recorded. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # answer 304 to a request that names it
    delay: float = 0.0  # seconds before answering at all
    drip: float = 0.0  # seconds between bytes of the body (a server that never finishes)
    redirect: str | None = None  # Location of a 302
    statuses: list[int] = field(default_factory=list)  # answers in turn, then `status`


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class WebServer:
    """`with WebServer() as web:` then `web.route("/feed.xml", Route(...))`, `web.url(path)`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self, "GET")

            def do_POST(self) -> None:
                server._answer(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def hits(self, path: str, method: str = "GET") -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path == path and r.method == method]

    def posted(self, path: str) -> list[dict]:
        return [json.loads(r.body) for r in self.hits(path, "POST")]

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        seen = Seen(method, handler.path, dict(handler.headers.items()), body, time.monotonic())
        with self.lock:
            self.requests.append(seen)
            route = self.routes.get(handler.path)
            status = route.statuses.pop(0) if route and route.statuses else None
        if route is None:
            handler.send_error(404)
            return
        if route.delay:
            time.sleep(route.delay)
        if route.redirect:
            handler.send_response(302)
            handler.send_header("Location", route.redirect)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if route.etag and handler.headers.get("if-none-match") == route.etag:
            handler.send_response(304)
            handler.send_header("ETag", route.etag)
            handler.end_headers()
            return
        payload = route.body.encode() if isinstance(route.body, str) else route.body
        handler.send_response(status or route.status)
        handler.send_header("Content-Type", route.content_type)
        if route.etag:
            handler.send_header("ETag", route.etag)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if not route.drip:
            handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        try:
            if route.drip:
                for i in range(len(payload)):
                    handler.wfile.write(payload[i : i + 1])
                    handler.wfile.flush()
                    time.sleep(route.drip)
            else:
                handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


# --- Documents --------------------------------------------------------------------------


def rss(items: list[tuple[str, str, str]], title: str = "Example News") -> str:
    """An RSS 2.0 feed of (guid, link, title) items."""
    body = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><link>{link}</link>"
        f"<title>{headline}</title><pubDate>Mon, 30 Nov 2026 08:00:00 GMT</pubDate></item>"
        for guid, link, headline in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>{title}</title><link>http://example.invalid/</link>{body}</channel></rss>"
    )


def atom(items: list[tuple[str, str, str]], title: str = "Example Atom") -> str:
    """An Atom 1.0 feed of (id, link, title) entries."""
    body = "".join(
        f"<entry><id>{entry_id}</id><link rel='alternate' href='{link}'/><title>{headline}"
        "</title><updated>2026-11-30T08:00:00Z</updated></entry>"
        for entry_id, link, headline in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<title>{title}</title><id>urn:feed</id><updated>2026-11-30T08:00:00Z</updated>"
        f"{body}</feed>"
    )


def news_sitemap(items: list[tuple[str, str]]) -> str:
    """A news sitemap of (loc, title) pages."""
    body = "".join(
        f"<url><loc>{loc}</loc><news:news><news:publication><news:name>Example</news:name>"
        "<news:language>en</news:language></news:publication><news:publication_date>"
        f"2026-11-30T08:00:00+00:00</news:publication_date><news:title>{headline}</news:title>"
        "</news:news></url>"
        for loc, headline in items
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
        "xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
        f"{body}</urlset>"
    )


def article_page(title: str, paragraphs: list[str], site: str = "Example News") -> str:
    """An article's web page, with navigation and a footer around the text."""
    text = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title>"
        f"<meta property='og:site_name' content='{site}'></head><body>"
        "<nav><a href='/'>Home</a> <a href='/politics'>Politics</a></nav>"
        f"<article><h1>{title}</h1>{text}</article>"
        "<footer>Copyright Example News. All rights reserved.</footer></body></html>"
    )
