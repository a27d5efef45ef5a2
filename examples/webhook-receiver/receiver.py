#!/usr/bin/env python3
"""A receiver of Tollgate's event webhooks and claims hook, in plain Python (no packages needed).

Run it with the secret Tollgate signs with, and point WEBHOOK_URLS (and CLAIMS_HOOK_URL) at it:

    WEBHOOK_SECRET='whsec_...' python3 receiver.py 8001
    # Tollgate: WEBHOOK_URLS=http://127.0.0.1:8001/webhooks WEBHOOK_SECRET='whsec_...'
    #           CLAIMS_HOOK_URL=http://127.0.0.1:8001/claims

It checks each request as the Standard Webhooks specification says (the `standardwebhooks`
package does the same: `Webhook(secret).verify(body, headers)`), answers 204 to an event it
accepts, and 400 to one it refuses, which Tollgate does not send again. An event may arrive
more than once (a delivery whose answer was lost is retried), always with the same
`webhook-id`: the receiver handles each id once.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How far the sender's clock may be from ours: older requests may be replays.
TOLERANCE_SECONDS = 5 * 60


def keys_from(secret):
    """The keys of WEBHOOK_SECRET: `whsec_<base64>`, several separated by spaces."""
    return [
        base64.b64decode(part.removeprefix("whsec_"))
        for part in secret.replace(",", " ").split()
    ]


def verify(keys, headers, body):
    """The event if the request is signed with one of `keys` and recent; None otherwise."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "").split()
    try:
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            return None
    except ValueError:
        return None
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for key in keys:
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        if any(hmac.compare_digest(expected, given) for given in signatures):
            return json.loads(body)
    return None


class Handler(BaseHTTPRequestHandler):
    keys = []
    seen = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        event = verify(self.keys, self.headers, body)
        if event is None:
            self.send_response(400)
            self.end_headers()
            return
        if self.path == "/claims":
            # The claims hook: Tollgate waits for this answer before it signs the tokens.
            answer = json.dumps(claims_for(event)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        msg_id = self.headers["webhook-id"]
        if msg_id not in self.seen:
            self.seen.add(msg_id)
            handle(event)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def handle(event):
    """What the application does with an event; here, print it."""
    data = event["data"]
    user = data.get("user") or {}
    who = user.get("username") or data.get("identifier") or data.get("user_id")
    print(f"{event['timestamp']} {event['type']}: {who}", flush=True)


def claims_for(call):
    """The claims hook's answer: claims for the tokens, fields for the login's answer."""
    user = call["user"]
    answer = {"claims": {"nickname": user["first_name"] or user["username"]}}
    if call["event"] == "login":
        answer["response"] = {"greeting": f"welcome back, {user['username']}"}
    return answer


def main():
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        sys.exit("set WEBHOOK_SECRET to Tollgate's WEBHOOK_SECRET (whsec_...)")
    Handler.keys = keys_from(secret)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8001
    print(f"listening on http://127.0.0.1:{port}/webhooks and /claims", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
