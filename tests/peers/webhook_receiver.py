"""A Standard Webhooks receiver for the integration tests (tests/it/webhook_peer.rs).

The relay signs its webhook deliveries; this receiver checks them with the `standardwebhooks`
package from PyPI, so the tests verify our signatures with code we did not write. It serves
HTTPS on --port (0: a free one) and plain HTTP for the test's control calls on a free port of
127.0.0.1, prints `listening <https port> control <http port>` once ready, and exits when its
stdin closes (so a test that dies does not leave it running).

Both ports answer:
  POST /hooks/<anything>  a delivery: verified against each configured secret (verified if any
                          passes) and recorded; then, while failures are pending, one is used
                          up (mode 500: status 500; timeout: no answer for --timeout-sleep
                          seconds, then the connection closes; drop: the connection is reset
                          without an answer), else 204 if verified and 401 if not.
  POST /_control          JSON {"secrets": ["whsec_..."], "fail": N, "mode": "500"|"timeout"|"drop"},
                          each key optional, sets what is given; 204.
  GET  /_deliveries       JSON list of the deliveries in arrival order: webhook_id,
                          webhook_timestamp, signature (the headers, null if missing), verified,
                          error (why not, else null), answered (status, "timeout" or "drop"),
                          body (parsed JSON, else the text) and path.
"""

import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

MODES = ("500", "timeout", "drop")


class State:
    """Secrets, the failure plan and the deliveries, shared by the handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = []
        self.fail = 0
        self.mode = "500"
        self.deliveries = []


def verify(secrets, body, headers):
    """(verified, error) of a delivery against each secret in turn."""
    if not secrets:
        return False, "no secret configured"
    errors = []
    for secret in secrets:
        try:
            Webhook(secret).verify(body, headers, json_parse=False)
            return True, None
        except Exception as e:  # the library's errors, and its ValueErrors on bad headers
            errors.append(f"{type(e).__name__}: {e}")
    return False, "; ".join(errors)


def parse_body(body):
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zhida-webhook-receiver"

    def read_body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status, payload=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def reset(self):
        """Close the connection with a TCP reset and no answer."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def do_GET(self):
        if self.path != "/_deliveries":
            return self.answer(404)
        with self.server.state.lock:
            deliveries = list(self.server.state.deliveries)
        self.answer(200, deliveries)

    def do_POST(self):
        body = self.read_body()
        if self.path == "/_control":
            return self.control(body)
        if not self.path.startswith("/hooks/"):
            return self.answer(404)
        state = self.server.state
        with state.lock:
            secrets = list(state.secrets)
        verified, error = verify(secrets, body, dict(self.headers.items()))
        with state.lock:
            if state.fail > 0:
                state.fail -= 1
                answered = 500 if state.mode == "500" else state.mode
            else:
                answered = 204 if verified else 401
            state.deliveries.append({
                "webhook_id": self.headers.get("webhook-id"),
                "webhook_timestamp": self.headers.get("webhook-timestamp"),
                "signature": self.headers.get("webhook-signature"),
                "verified": verified,
                "error": error,
                "answered": answered,
                "body": parse_body(body),
                "path": self.path,
            })
        if answered == "timeout":
            time.sleep(self.server.timeout_sleep)
            self.reset()
        elif answered == "drop":
            self.reset()
        else:
            self.answer(answered)

    def control(self, body):
        try:
            plan = json.loads(body or b"{}")
            secrets = plan.get("secrets")
            fail = plan.get("fail")
            mode = plan.get("mode")
            if secrets is not None and not all(isinstance(s, str) for s in secrets):
                raise ValueError("secrets must be strings")
            if fail is not None and not (isinstance(fail, int) and fail >= 0):
                raise ValueError("fail must be a count")
            if mode is not None and mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}")
        except (ValueError, AttributeError, TypeError) as e:
            return self.answer(400, {"error": str(e)})
        state = self.server.state
        with state.lock:
            if secrets is not None:
                state.secrets = list(secrets)
            if fail is not None:
                state.fail = fail
            if mode is not None:
                state.mode = mode
        self.answer(204)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state, timeout_sleep, tls=None):
        super().__init__(address, Handler)
        self.state = state
        self.timeout_sleep = timeout_sleep
        self.tls = tls

    def finish_request(self, request, client_address):
        """Serves a connection in its own thread, after the TLS handshake if this is HTTPS."""
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except OSError:
                return
            request.settimeout(None)
        try:
            super().finish_request(request, client_address)
        finally:
            request.close()


def exit_when_stdin_closes():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--cert", required=True, help="server certificate (PEM)")
    args.add_argument("--key", required=True, help="its private key (PEM)")
    args.add_argument("--port", type=int, default=0, help="HTTPS port, 0: a free one")
    args.add_argument("--timeout-sleep", type=float, default=30.0,
                      help="seconds a 'timeout' failure waits before closing the connection")
    args = args.parse_args()

    state = State()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    hooks = Server(("127.0.0.1", args.port), state, args.timeout_sleep, tls)
    control = Server(("127.0.0.1", 0), state, args.timeout_sleep)

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(f"listening {hooks.server_address[1]} control {control.server_address[1]}", flush=True)
    hooks.serve_forever()


if __name__ == "__main__":
    main()
