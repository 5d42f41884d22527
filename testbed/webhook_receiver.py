"""The fleet's pager: an HTTP receiver for Alertmanager's webhook notifications (its `webhook_config`
posts one JSON document per notification: {"status", "alerts": [{"status", "labels", ...}], ...}).

`python3 webhook_receiver.py --host ADDR --port 9095` in a namespace of its own (testbed/monitoring.py).
POST any path: the body is kept (and appended to --log as one JSON line); GET /_received answers
every notification so far, oldest first, as a JSON list. Anything that is not JSON gets 400, as a
real receiver would refuse it.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RECEIVED: list[dict] = []
LOCK = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    log_path = ""

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            return self._answer(400, {"error": "the body is not JSON"})
        entry = {"path": self.path, "body": body}
        with LOCK:
            RECEIVED.append(entry)
            if self.log_path:
                with open(self.log_path, "a") as log:
                    log.write(json.dumps(entry) + "\n")
        self._answer(200, {"ok": True})

    def do_GET(self):  # noqa: N802
        if self.path != "/_received":
            return self._answer(404, {"error": "GET /_received lists the notifications"})
        with LOCK:
            self._answer(200, list(RECEIVED))

    def _answer(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # the log file has the notifications; no access lines
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--log", default="")
    args = parser.parse_args()
    Receiver.log_path = args.log
    ThreadingHTTPServer((args.host, args.port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
