"""A tiny loopback peer speaking the AWS KMS JSON protocol (Encrypt / Decrypt), for what moto does
not model: throttling, malformed answers, and a slow KMS (the GIL benchmark). Real HTTP on
127.0.0.1, driven by the library's real AWS SDK client.

Modes: "ok" (answers; the "ciphertext" is b"peer:" + plaintext), "error:<AWS error type>" (400
with that __type, e.g. ThrottlingException), "garbage" (200 with a body that is not JSON). `delay` seconds are slept
before every answer.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class KmsPeer:
    def __init__(self, mode: str = "ok", delay: float = 0.0) -> None:
        self.mode = mode
        self.delay = delay
        self.calls = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                target = self.headers.get("X-Amz-Target", "")
                peer.calls += 1
                if peer.delay:
                    threading.Event().wait(peer.delay)
                if peer.mode.startswith("error:"):
                    error_type = peer.mode.split(":", 1)[1]
                    return self.answer(400, {"__type": error_type, "message": "refused by peer"})
                if peer.mode == "garbage":
                    return self.answer(200, None, raw=b"\x00not json at all")
                if target.endswith(".Encrypt"):
                    plaintext = base64.b64decode(body["Plaintext"])
                    blob = base64.b64encode(b"peer:" + plaintext).decode()
                    return self.answer(200, {"CiphertextBlob": blob, "KeyId": body["KeyId"]})
                if target.endswith(".Decrypt"):
                    blob = base64.b64decode(body["CiphertextBlob"])
                    if not blob.startswith(b"peer:"):
                        return self.answer(400, {"__type": "InvalidCiphertextException", "message": "no"})
                    plaintext = base64.b64encode(blob[5:]).decode()
                    return self.answer(200, {"Plaintext": plaintext, "KeyId": body.get("KeyId", "")})
                return self.answer(400, {"__type": "UnknownOperationException", "message": target})

            def answer(self, status, obj, raw=None):
                data = raw if raw is not None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "KmsPeer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    """``python kms_peer.py MODE DELAY_SECONDS``: serves in its own process (so its threads never
    take the GIL of the process under test), prints ``PORT <n>``, stops at stdin EOF."""
    import sys

    peer = KmsPeer(sys.argv[1], float(sys.argv[2]))
    print(f"PORT {peer.server.server_address[1]}", flush=True)
    sys.stdin.read()
    peer.close()


if __name__ == "__main__":
    main()
