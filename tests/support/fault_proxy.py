# A stand-in used only to inject faults a real server cannot produce; the real server answers the rest.
"""Fault-injecting HTTP/1.1 reverse proxy for scimsync's tests (Python standard library only).

    python3 fault_proxy.py --upstream http://127.0.0.1:PORT[/prefix] [--port 0] [--seed N]
        [--rate429 R] [--retry-after N] [--rate5xx R] [--reset R] [--stall R]
        [--stall-seconds S] [--truncate R] [--only-methods POST,PATCH]
        [--fail-auth-after N] [--reject-patch REGEX ...] [--reject-patch-all]
        [--noop-writes-matching REGEX] [--conflict-as-500] [--log FILE]

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

Three modes make the upstream look like a server that implements less of RFC 7644. Each is off
by default, involves no randomness, and takes precedence over the random faults above (not over
`--fail-auth-after`):

  reject_patch  `--reject-patch REGEX` (repeatable): a PATCH whose JSON body has an operation
                whose `path` matches REGEX (Python `re.search`) is answered `501 Not
                Implemented` with a SCIM error whose `detail` is empty; not forwarded. The
                special form `--reject-patch remove-members-filter` matches any `remove`
                operation (the op name in any case) whose path starts with `members[`.
                `--reject-patch-all` answers every PATCH so (a server without PATCH). A body
                that is not a PatchOp is forwarded.
  noop_write    `--noop-writes-matching REGEX`: a PATCH or PUT whose URL path (the client's,
                before any upstream prefix) matches REGEX is not forwarded; the proxy GETs the
                same resource from the upstream instead (same headers, no body, no If-Match)
                and answers with that GET's status, headers and body: a 200 with the
                unchanged resource, "done" while nothing changed.
  conflict_as_500  `--conflict-as-500`: a POST the upstream answers 409 is answered
                `500 Internal Server Error` with a SCIM error instead (a server that reports a
                duplicate userName as an internal error). The upstream did process it.

`--log FILE` gets one JSON object per request, written just before the client can see the
answer (or the reset), so a client that has its answer finds the entry:
  seq             arrival order
  time            arrival, epoch seconds
  conn, client    client connection number; peer IP (on loopback, every request's is the same)
  method, path, query
  req             digest of method, target and body: the same for a retried request
  fault           none, 429, 5xx, reset_before, reset_after, stall, truncate, auth,
                  reject_patch, noop_write, conflict_as_500, or upstream_error (the upstream
                  failed; answered 502)
  upstream_status for conflict_as_500, the upstream's status (409); for noop_write, the
                  status of the GET the proxy sent instead
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
import re
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
# Request headers a noop_write's GET leaves out: it has no body, and it must not be made
# conditional by the write's preconditions.
NOT_ON_NOOP_GET = {"content-type", "content-length", "if-match", "if-none-match", "if-unmodified-since"}
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


# The `--reject-patch` form that stands for "remove by members[...] filter".
REMOVE_MEMBERS_FILTER = "remove-members-filter"


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
        self.reject_members_filter = REMOVE_MEMBERS_FILTER in opts.reject_patch
        self.reject_paths = [re.compile(r) for r in opts.reject_patch if r != REMOVE_MEMBERS_FILTER]
        self.noop_writes = re.compile(opts.noop_writes_matching) if opts.noop_writes_matching else None

    def dialect_fault(self, method, path, body):
        """reject_patch or noop_write when a mode says the request is answered so, else None."""
        if method == "PATCH" and (self.opts.reject_patch_all or self.rejects_operation(body)):
            return "reject_patch"
        if method in ("PATCH", "PUT") and self.noop_writes is not None and self.noop_writes.search(path):
            return "noop_write"
        return None

    def rejects_operation(self, body):
        """Whether an operation of a PatchOp body matches a `--reject-patch` form."""
        if not self.reject_paths and not self.reject_members_filter:
            return False
        try:
            doc = json.loads(body)
        except ValueError:
            return False
        ops = doc.get("Operations") if isinstance(doc, dict) else None
        for op in ops if isinstance(ops, list) else []:
            path = op.get("path") if isinstance(op, dict) else None
            if not isinstance(path, str):
                continue
            if any(r.search(path) for r in self.reject_paths):
                return True
            name = op.get("op")
            if self.reject_members_filter and isinstance(name, str) and name.lower() == "remove":
                if path.startswith("members["):
                    return True
        return False

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
        if fault != "auth":
            fault = self.state.dialect_fault(method, split.path, body) or fault
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
        if fault == "reject_patch":
            return self.send_fault(entry, 501, "Not Implemented", "", close, [])
        if fault == "noop_write":
            # The write is dropped; what the client reads back is the resource as it stands.
            method = "GET"
            body = b""
            headers = {n: v for n, v in headers.items() if n.lower() not in NOT_ON_NOOP_GET}

        try:
            status, reason, resp_headers, resp_body = self.forward(method, target, headers, body)
        except (OSError, http.client.HTTPException) as e:
            entry["fault"] = "upstream_error"
            print(f"fault_proxy: upstream {method} {entry['path']}: {e}", file=sys.stderr, flush=True)
            return self.send_fault(entry, 502, "Bad Gateway", "upstream unreachable", close, [])
        self.state.count_forward()
        if fault == "noop_write":
            entry["upstream_status"] = status
        if o.conflict_as_500 and method == "POST" and status == 409 and fault == "none":
            fault = entry["fault"] = "conflict_as_500"
            entry["upstream_status"] = status
            status, reason = 500, "Internal Server Error"
            resp_body = scim_error(500, "internal server error")
            resp_headers = [(n, v) for n, v in resp_headers if n.lower() != "content-type"]
            resp_headers.append(("Content-Type", "application/scim+json"))
        return self.relay(entry, fault, method, (status, reason, resp_headers, resp_body), close)

    def relay(self, entry, fault, method, resp, close):
        """Sends the upstream's answer `(status, reason, headers, body)`, as the fault (none,
        reset_after, stall, truncate or a dialect mode) says."""
        status, reason, resp_headers, resp_body = resp
        entry["status"] = status
        entry["body_bytes"] = len(resp_body)

        if fault == "reset_after":
            entry["sent_bytes"] = 0
            self.log_entry()
            self.reset()
            return False
        if fault == "stall":
            time.sleep(self.state.opts.stall_seconds)
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


def regex(text):
    if text == REMOVE_MEMBERS_FILTER:
        return text
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {e}") from None
    return text


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
    p.add_argument(
        "--reject-patch",
        action="append",
        default=[],
        type=regex,
        metavar="REGEX",
        help=f"answer 501 to a PATCH with an operation path matching REGEX, or {REMOVE_MEMBERS_FILTER}",
    )
    p.add_argument("--reject-patch-all", action="store_true", help="answer 501 to every PATCH")
    p.add_argument(
        "--noop-writes-matching",
        type=regex,
        default=None,
        metavar="REGEX",
        help="answer a PATCH or PUT to a matching URL path with a GET of the unchanged resource",
    )
    p.add_argument("--conflict-as-500", action="store_true", help="answer 500 where the upstream answers a POST 409")
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
