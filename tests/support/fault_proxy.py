# A stand-in used only to inject faults a real server cannot produce; the real server answers the rest.
"""Fault-injecting HTTP/1.1 reverse proxy for scimsync's tests (Python standard library only).

    python3 fault_proxy.py --upstream http://127.0.0.1:PORT[/prefix] [--port 0] [--seed N]
        [--rate429 R] [--retry-after N] [--rate5xx R] [--reset R] [--stall R]
        [--stall-seconds S] [--truncate R] [--only-methods POST,PATCH]
        [--fail-auth-after N] [--log FILE]

Prints `LISTENING <port>` on stdout (flushed) once it accepts connections, then nothing more.

Each client connection is served request by request (keep-alive, as reqwest uses it); every
forwarded request goes to the upstream on a fresh connection, with the client's Host header.
Per request, one draw of a seeded RNG picks at most one fault, in this order of the rates:

  429       answer 429 with `Retry-After`, alternately delta-seconds (`--retry-after`) and an
            HTTP-date at least that far ahead; not forwarded.
  5xx       answer 500, 502 or 503 (half the 503s carry `Retry-After`); not forwarded.
  reset     close the client connection with a TCP RST (SO_LINGER 0), half the time before
            forwarding (`reset_before`: the request is lost) and half the time after
            (`reset_after`: the upstream processed it, the client never hears the answer).
  stall     forward, then wait `--stall-seconds` before answering normally.
  truncate  forward, then send the upstream's status line and headers with the full
            Content-Length but only half of the body, and close the connection (an answer
            without a body, such as a 204, arrives whole before the close).

`--only-methods` limits faults to those methods (others are always forwarded untouched).
`--fail-auth-after N`: once N requests have been forwarded (and answered by the upstream),
every request is answered 401, on any method.

`--log FILE` gets one JSON object per request, written just before the client can see the
answer (or the reset), so a client that has its answer finds the entry:
  seq             arrival order
  time            arrival, epoch seconds
  conn, client    client connection number; peer IP (on loopback, every request's is the same)
  method, path, query
  req             digest of method, target and body: the same for a retried request
  fault           none, 429, 5xx, reset_before, reset_after, stall, truncate, auth, or
                  upstream_error (the upstream failed; answered 502)
  status          as sent to the client; for reset_after the upstream's; null for reset_before
  body_bytes, sent_bytes   response body: its full length, the bytes the client got
  retry_after     the header value, on a 429 or a 503 that sent one
  retry_after_s   on a 429: seconds from arrival to the time it names
  since_429, prev_retry_after_s   seconds since the last 429 sent to this client, and the
                  retry_after_s of that 429 (null before any): a request honouring it has
                  since_429 >= prev_retry_after_s
  since_429_same, prev_retry_after_same_s   the same for the last 429 sent to an identical
                  request (same `req`)
Authorization headers and bodies are never logged.
"""

import argparse
import email.utils
import hashlib
import http.client
import json
import math
import random
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
MAX_LINE = 65536
MAX_HEADERS = 200


class BadRequest(Exception):
    pass


def read_line(rfile):
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line


def read_chunked(rfile):
    body = bytearray()
    while True:
        size_line = read_line(rfile)
        if not size_line:
            raise BadRequest("connection closed inside a chunked body")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while read_line(rfile) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += rfile.read(size)
        read_line(rfile)


def scim_error(status, detail):
    schemas = ["urn:ietf:params:scim:api:messages:2.0:Error"]
    return json.dumps({"schemas": schemas, "status": str(status), "detail": detail}).encode()


class State:
    """Everything the connection threads share, behind one lock."""

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.Lock()
        self.rng = random.Random(opts.seed)
        self.seq = 0
        self.conns = 0
        self.forwarded = 0
        self.count429 = 0
        self.last429 = {}  # client -> (time, retry_after_s)
        self.last429_same = {}  # req digest -> (time, retry_after_s)
        self.log = open(opts.log, "a", encoding="utf-8") if opts.log else None
        up = urllib.parse.urlsplit(opts.upstream)
        if up.scheme != "http" or not up.hostname:
            sys.exit(f"fault_proxy: --upstream must be an http:// URL, not {opts.upstream!r}")
        self.up_host = up.hostname
        self.up_port = up.port or 80
        self.up_prefix = up.path.rstrip("/")
        only = opts.only_methods
        self.methods = {m.strip().upper() for m in only.split(",")} if only else None

    def next_conn(self):
        with self.lock:
            self.conns += 1
            return self.conns

    def arrive(self, client, method, req):
        """Numbers the request, decides its fault and what the log says about earlier 429s."""
        o = self.opts
        with self.lock:
            self.seq += 1
            now = time.time()
            entry = {"seq": self.seq, "time": round(now, 6)}
            info = {}
            for key, table, name in ((client, self.last429, ""), (req, self.last429_same, "_same")):
                prev = table.get(key)
                info["since_429" + name] = round(now - prev[0], 6) if prev else None
                info["prev_retry_after" + name + "_s"] = prev[1] if prev else None
            if o.fail_auth_after is not None and self.forwarded >= o.fail_auth_after:
                return entry, info, "auth", None
            if self.methods is not None and method not in self.methods:
                return entry, info, "none", None
            r = self.rng.random()
            extra = self.rng.random()  # picks the variant of the fault
            for fault, rate in (
                ("429", o.rate429),
                ("5xx", o.rate5xx),
                ("reset", o.reset),
                ("stall", o.stall),
                ("truncate", o.truncate),
            ):
                if r < rate:
                    break
                r -= rate
            else:
                return entry, info, "none", None
            if fault == "reset":
                fault = "reset_before" if extra < 0.5 else "reset_after"
            elif fault == "429":
                self.count429 += 1
                if self.count429 % 2:
                    value = str(o.retry_after)
                    wait = float(o.retry_after)
                else:
                    at = math.ceil(now + o.retry_after)
                    value = email.utils.formatdate(at, usegmt=True)
                    wait = round(at - now, 6)
                self.last429[client] = (now, wait)
                self.last429_same[req] = (now, wait)
                info["retry_after"] = value
                info["retry_after_s"] = wait
            return entry, info, fault, extra

    def count_forward(self):
        with self.lock:
            self.forwarded += 1

    def write_log(self, entry):
        if self.log is None:
            return
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self.lock:
            self.log.write(line)
            self.log.flush()


class Handler(socketserver.StreamRequestHandler):
    state: State
    timeout = 600  # an idle keep-alive connection is dropped after this long

    def setup(self):
        super().setup()
        self.entry = None
        self.conn_id = self.state.next_conn()
        self.client = self.client_address[0]

    def handle(self):
        try:
            while self.serve_one():
                pass
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away

    def serve_one(self):
        """Serves one request; False once the connection is to be closed."""
        try:
            line = read_line(self.rfile)
            if not line:
                return False
            if line in (b"\r\n", b"\n"):
                return True  # tolerated between requests (RFC 9112 §2.2)
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError
            headers = http.client.parse_headers(self.rfile)
            if len(headers) > MAX_HEADERS:
                raise BadRequest("too many headers")
        except (ValueError, http.client.HTTPException, BadRequest):
            self.send_plain(400, "Bad Request", scim_error(400, "malformed request"), close=True)
            return False
        if headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                body = read_chunked(self.rfile)
            else:
                body = self.rfile.read(int(headers.get("Content-Length") or 0))
        except (ValueError, BadRequest):
            self.send_plain(400, "Bad Request", scim_error(400, "malformed body"), close=True)
            return False
        conn_tokens = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
        close = "close" in conn_tokens or (version == "HTTP/1.0" and "keep-alive" not in conn_tokens)

        split = urllib.parse.urlsplit(target)
        req = hashlib.sha256(b"\0".join([method.encode(), target.encode("latin-1"), body])).hexdigest()[:16]
        entry, info, fault, extra = self.state.arrive(self.client, method, req)
        entry.update(
            conn=self.conn_id,
            client=self.client,
            method=method,
            path=split.path,
            query=split.query,
            req=req,
            fault=fault,
            status=None,
        )
        entry.update(info)
        self.entry = entry
        try:
            return self.answer(entry, fault, extra, method, target, headers, body, close)
        finally:
            self.log_entry()  # if it failed before logging

    def log_entry(self):
        """Logs the current request; called before the client can see the answer, so a test
        that has read an answer finds its entry in the log."""
        if self.entry is not None:
            self.state.write_log(self.entry)
            self.entry = None

    def answer(self, entry, fault, extra, method, target, headers, body, close):
        o = self.state.opts
        if fault == "auth":
            entry["status"] = 401
            extra_headers = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
            return self.send_fault(entry, 401, "Unauthorized", "token expired", close, extra_headers)
        if fault == "429":
            extra_headers = [("Retry-After", entry["retry_after"])]
            return self.send_fault(entry, 429, "Too Many Requests", "too many requests", close, extra_headers)
        if fault == "5xx":
            status = (500, 502, 503)[min(int(extra * 3), 2)]
            extra_headers = []
            if status == 503 and extra * 3 - 2 >= 0.5:
                extra_headers.append(("Retry-After", str(o.retry_after)))
                entry["retry_after"] = str(o.retry_after)
            reason = http.client.responses[status]
            return self.send_fault(entry, status, reason, "injected server error", close, extra_headers)
        if fault == "reset_before":
            self.log_entry()
            self.reset()
            return False

        try:
            status, reason, resp_headers, resp_body = self.forward(method, target, headers, body)
        except (OSError, http.client.HTTPException) as e:
            entry["fault"] = "upstream_error"
            print(f"fault_proxy: upstream {method} {entry['path']}: {e}", file=sys.stderr, flush=True)
            return self.send_fault(entry, 502, "Bad Gateway", "upstream unreachable", close, [])
        self.state.count_forward()
        entry["status"] = status
        entry["body_bytes"] = len(resp_body)

        if fault == "reset_after":
            entry["sent_bytes"] = 0
            self.log_entry()
            self.reset()
            return False
        if fault == "stall":
            time.sleep(o.stall_seconds)
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        out = [f"HTTP/1.1 {status} {reason}"]
        for name, value in resp_headers:
            lname = name.lower()
            if lname in HOP_BY_HOP or (lname == "content-length" and not no_body):
                continue
            out.append(f"{name}: {value}")
        if not no_body:
            out.append(f"Content-Length: {len(resp_body)}")
        if fault == "truncate":
            close = True
        if close:
            out.append("Connection: close")
        head = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
        payload = b"" if no_body else resp_body
        if fault == "truncate":
            payload = payload[: len(payload) // 2]
        entry["sent_bytes"] = len(payload)
        self.log_entry()
        self.wfile.write(head + payload)
        if close:
            self.finish_close()
        return not close

    def forward(self, method, target, headers, body):
        s = self.state
        conn = http.client.HTTPConnection(s.up_host, s.up_port, timeout=s.opts.upstream_timeout)
        try:
            conn.putrequest(method, s.up_prefix + target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            resp_body = resp.read()
            return resp.status, resp.reason, resp.getheaders(), resp_body
        finally:
            conn.close()

    def send_fault(self, entry, status, reason, detail, close, extra_headers):
        entry["status"] = status
        body = scim_error(status, detail)
        entry["body_bytes"] = entry["sent_bytes"] = len(body)
        self.log_entry()
        self.send_plain(status, reason, body, close, extra_headers)
        if close:
            self.finish_close()
        return not close

    def send_plain(self, status, reason, body, close, extra_headers=()):
        lines = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/scim+json",
            f"Content-Length: {len(body)}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
        ]
        lines += [f"{n}: {v}" for n, v in extra_headers]
        if close:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def reset(self):
        """Closes the client connection with a TCP RST instead of a FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket is closed for real only once its file objects are, so close those first.
        self.wfile.close()
        self.rfile.close()
        self.connection.close()

    def finish_close(self):
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def rate(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, not {text}")
    return value


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT[/prefix] to forward to")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate429", type=rate, default=0.0)
    p.add_argument("--retry-after", type=int, default=1, help="seconds a 429 asks the client to wait")
    p.add_argument("--rate5xx", type=rate, default=0.0)
    p.add_argument("--reset", type=rate, default=0.0)
    p.add_argument("--stall", type=rate, default=0.0)
    p.add_argument("--stall-seconds", type=float, default=5.0)
    p.add_argument("--truncate", type=rate, default=0.0)
    p.add_argument("--only-methods", default="", help="comma-separated methods faults apply to")
    p.add_argument("--fail-auth-after", type=int, default=None)
    p.add_argument("--upstream-timeout", type=float, default=60.0)
    p.add_argument("--log", default=None, help="JSON-lines request log")
    opts = p.parse_args()
    total = opts.rate429 + opts.rate5xx + opts.reset + opts.stall + opts.truncate
    if total > 1.0 + 1e-9:
        p.error(f"the fault rates add up to {total}, more than 1")

    Handler.state = State(opts)
    with Server((opts.host, opts.port), Handler) as server:
        print(f"LISTENING {server.server_address[1]}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
