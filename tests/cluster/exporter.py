#!/usr/bin/env python3
"""Test exporter for Prometheus: gauges and counters that tests set over HTTP (Python 3 standard library only).

    GET  /metrics  Prometheus text format 0.0.4 of every series currently set
    GET  /series   JSON list of the series (for debugging)
    GET  /healthz  "ok"
    POST /set      {"name": "...", "labels": {"k": "v"}, "value": 1.5}   value may also be
                   "NaN", "+Inf", "-Inf" or a numeric string
                   {"name": "...", "labels": {...}, "value": 0, "rate": 2.5}   a counter: it starts at
                   value and grows by rate per second (so rate() over it answers rate); a name with
                   any such series is exposed as TYPE counter
    POST /delete   {"name": "...", "labels": {...}}   removes that one series (404 if absent)
    POST /reset    removes every series

Usage: exporter.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
With --port 0 the OS picks a free port; the port actually bound is written to --port-file
(atomically) and printed on stdout, so a caller can wait for the file instead of racing for a port.
"""

import argparse
import json
import math
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_lock = threading.Lock()
_series = {}  # (name, ((label, value), ...)) -> (value, rate per second or None, time set)


class BadRequest(Exception):
    pass


def escape_label_value(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def parse_value(v):
    if isinstance(v, bool):
        raise BadRequest("value must be a number or a string like \"NaN\"")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        special = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
        if s.lower() in special:
            return special[s.lower()]
        try:
            return float(s)
        except ValueError:
            pass
    raise BadRequest("value must be a number or a string like \"NaN\", got %r" % (v,))


def parse_key(body):
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not METRIC_RE.match(name):
        raise BadRequest("invalid metric name %r" % (name,))
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise BadRequest("labels must be an object")
    items = []
    for k, v in labels.items():
        if not isinstance(k, str) or not LABEL_RE.match(k) or k.startswith("__"):
            raise BadRequest("invalid label name %r" % (k,))
        if not isinstance(v, str):
            raise BadRequest("label %s: value must be a string" % k)
        items.append((k, v))
    return name, tuple(sorted(items))


def current(entry, now):
    value, rate, since = entry
    return value if rate is None else value + rate * (now - since)


def render():
    now = time.monotonic()
    with _lock:
        snapshot = sorted(_series.items())
    counters = {name for (name, _), (_, rate, _) in snapshot if rate is not None}
    out = []
    last_name = None
    for (name, labels), entry in snapshot:
        value = current(entry, now)
        if name != last_name:
            out.append("# TYPE %s %s\n" % (name, "counter" if name in counters else "gauge"))
            last_name = name
        if labels:
            lbl = ",".join('%s="%s"' % (k, escape_label_value(v)) for k, v in labels)
            out.append("%s{%s} %s\n" % (name, lbl, format_value(value)))
        else:
            out.append("%s %s\n" % (name, format_value(value)))
    return "".join(out).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "champion-test-exporter/1"

    def log_message(self, fmt, *args):  # one line per request on stderr
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _send(self, code, body, ctype="text/plain; charset=utf-8"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, render(), CONTENT_TYPE)
        elif path == "/healthz":
            self._send(200, "ok\n")
        elif path == "/series":
            with _lock:
                now = time.monotonic()
                data = [
                    {"name": n, "labels": dict(l), "value": format_value(current(e, now)), "rate": e[1]}
                    for (n, l), e in sorted(_series.items())
                ]
            self._send(200, json.dumps(data) + "\n", "application/json")
        else:
            self._send(404, "not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if path == "/reset":
                with _lock:
                    n = len(_series)
                    _series.clear()
                self._send(200, "reset %d series\n" % n)
                return
            if path not in ("/set", "/delete"):
                self._send(404, "not found\n")
                return
            try:
                body = json.loads(raw.decode("utf-8") or "null")
            except ValueError as e:
                raise BadRequest("invalid JSON: %s" % e)
            key = parse_key(body)
            if path == "/set":
                if "value" not in body:
                    raise BadRequest("missing value")
                value = parse_value(body["value"])
                rate = body.get("rate")
                if rate is not None:
                    rate = parse_value(rate)
                    if not math.isfinite(rate) or rate < 0 or not math.isfinite(value):
                        raise BadRequest("a counter needs a finite value and a finite rate >= 0")
                with _lock:
                    _series[key] = (value, rate, time.monotonic())
                self._send(200, "ok\n")
            else:
                with _lock:
                    found = _series.pop(key, None) is not None
                self._send(200 if found else 404, "deleted\n" if found else "no such series\n")
        except BadRequest as e:
            self._send(400, "%s\n" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("exporter listening on http://%s:%d" % (args.host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
