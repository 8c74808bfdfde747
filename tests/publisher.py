"""A local stand-in for the hosts published weights come from, on 127.0.0.1.

It serves files under the URL paths of the real hosts and answers the way each does where the
package depends on it:

- torchvision (``/models/<name>-<digest>.pth``) and Google Cloud Storage, keras.applications' host
  (``/tensorflow/keras-applications/...``): the file itself, with GCS's ``x-goog-hash: md5=...``;
- the Hugging Face Hub (``/timm/<repo>/resolve/main/model.safetensors``): a redirect to its
  storage host carrying ``X-Linked-Etag: "<sha256>"``, the digest of the file as published.

A test points the package at it with ``LIGHTNETS_WEIGHTS_MIRROR`` (see the ``host`` fixture in
tests/weights) and publishes files with :meth:`Publisher.publish`. The digest stated is the one
of the published content, so a file corrupted afterwards on the host fails its check.
"""

import base64
import hashlib
import http.server
import threading
from pathlib import Path
from urllib.parse import urlsplit


class Publisher:
    """Serves published files on 127.0.0.1 in a thread and records the requests made."""

    def __init__(self, root):
        self.root = Path(root)
        self.requests = []  # (method, path)
        self.sha256 = {}  # URL path → SHA-256 stated by the "Hub"
        self.md5 = {}  # URL path → MD5 stated by "GCS"
        publisher = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                publisher._answer(self, body=False)

            def do_GET(self):
                publisher._answer(self, body=True)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, url, content):
        """Puts ``content`` where the real ``url`` (https://host/path) would serve it; returns the local path."""
        path = urlsplit(url).path
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if "/resolve/" in path:
            self.sha256[path] = hashlib.sha256(content).hexdigest()
        else:
            self.md5[path] = base64.b64encode(hashlib.md5(content).digest()).decode()
        return target

    def downloads(self):
        """The GET requests made for published files (the storage host's, for Hub files)."""
        return [path for method, path in self.requests if method == "GET"]

    def _answer(self, handler, *, body):
        path = urlsplit(handler.path).path
        self.requests.append((handler.command, path))
        if path in self.sha256:  # the Hub: a redirect stating the digest
            handler.send_response(302)
            handler.send_header("X-Linked-Etag", f'"{self.sha256[path]}"')
            handler.send_header("Location", f"/lfs-storage{path}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        file = self.root / path.removeprefix("/lfs-storage").lstrip("/")
        if not file.is_file():
            handler.send_error(404)
            return
        content = file.read_bytes()
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(content)))
        if path in self.md5 and not path.startswith("/models/"):  # GCS: the MD5 of the object as uploaded
            handler.send_header("x-goog-hash", f"crc32c=AAAAAA==, md5={self.md5[path]}")
        handler.end_headers()
        if body:
            handler.wfile.write(content)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
