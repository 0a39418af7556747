#!/usr/bin/env python3
"""Bounded test client for the flowtrail lab; its log is the ground truth for tests.

Makes N connections (TCP) or N sockets (UDP) to one address, each sending a known,
deterministic payload and reading the echo back, and writes one JSON object per
connection (JSON lines) to --log (default: stdout).

Payload: 64-byte text lines, each naming the seed, the connection index and its own
byte offset in the stream, e.g. ``ft s1 c0003 o0000000128 ABCDEF...\\n`` (truncated to the
requested size). So any byte of a reassembled stream tells where it belongs.

TCP modes (comma lists in --size/--mode cycle over the connections):
  halfclose  send all, shutdown(SHUT_WR), read until EOF, close      (FIN from client first)
  close      send all, read until the whole echo is back, close()    (FIN after the echo)
  reset      send all, read the whole echo, close with SO_LINGER 0   (RST from client)

UDP (--udp): each "connection" is one connected socket that sends --datagrams datagrams
of the given size and waits for each echo (a refused port shows up as error "refused").

Everything is bounded: --timeout per socket operation, --deadline for the whole run
(no new connection starts after it), at most --count connections.

Concurrency: --parallel N runs up to N connections at once (connection i starts as soon as
a worker is free; log lines in completion order). --start-at T waits until UNIX time T
first (at most --deadline), so several clients can start together.

Log record (fields may be added, not renamed):
  {"i", "proto", "mode", "local", "local_port", "remote", "size", "sent", "received",
   "sha256_sent", "sha256_received", "echo_ok", "start", "connected", "end", "error"}
Addresses are "IP:PORT", or "[IPv6]:PORT". Times are UNIX seconds (float).
Exit status: 0 if every connection echoed correctly (or --allow-errors), 1 otherwise.
"""

import argparse
import hashlib
import json
import socket
import struct
import sys
import threading
import time

LINE = 64
FILL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def payload(seed: int, conn: int, size: int) -> bytes:
    """Deterministic payload: 64-byte lines that carry their own offset."""
    out = bytearray()
    off = 0
    while off < size:
        head = b"ft s%d c%04d o%010d " % (seed, conn, off)
        line = head + FILL[: LINE - 1 - len(head)] + b"\n"
        out += line
        off += LINE
    return bytes(out[:size])


def parse_addr(text: str):
    """'1.2.3.4:80' or '[::1]:80' -> (family, host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    if ":" in host:
        raise ValueError(f"IPv6 address must be bracketed: {text}")
    return socket.AF_INET, host, int(port)


def fmt_addr(sockaddr) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cycle(values, i):
    return values[i % len(values)]


def tcp_one(args, i, size, mode, fam, host, port):
    rec = {"i": i, "proto": "tcp", "mode": mode, "local": None, "local_port": None,
           "remote": fmt_addr((host, port)), "size": size, "sent": 0, "received": 0,
           "sha256_sent": None, "sha256_received": None, "echo_ok": False,
           "start": time.time(), "connected": None, "end": None, "error": None}
    data = payload(args.seed, i, size)
    rec["sha256_sent"] = hashlib.sha256(data).hexdigest()
    got = bytearray()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    reader_err = []

    def reader():
        try:
            while True:
                if mode != "halfclose" and len(got) >= len(data):
                    return
                chunk = s.recv(65536)
                if not chunk:
                    return
                got.extend(chunk)
        except OSError as e:  # timeout, reset
            reader_err.append(e)

    try:
        if args.bind or args.src_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bind_host = args.bind or ("::" if fam == socket.AF_INET6 else "0.0.0.0")
            s.bind((bind_host, args.src_port + i if args.src_port else 0))
        s.connect((host, port))
        rec["connected"] = time.time()
        local = s.getsockname()
        rec["local"], rec["local_port"] = fmt_addr(local), local[1]
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        s.sendall(data)
        rec["sent"] = len(data)
        if mode == "halfclose":
            s.shutdown(socket.SHUT_WR)
        t.join(args.timeout * 2 + 1)
        if t.is_alive():
            raise TimeoutError("echo not complete in time")
        if reader_err:
            raise reader_err[0]
        if mode == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, TimeoutError) as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
    rec["end"] = time.time()
    rec["received"] = len(got)
    rec["sha256_received"] = hashlib.sha256(bytes(got)).hexdigest()
    rec["echo_ok"] = rec["error"] is None and bytes(got) == data
    return rec


def udp_one(args, i, size, mode, fam, host, port):
    rec = {"i": i, "proto": "udp", "mode": "echo", "local": None, "local_port": None,
           "remote": fmt_addr((host, port)), "size": size, "datagrams": args.datagrams,
           "sent": 0, "received": 0, "sha256_sent": None, "sha256_received": None,
           "echo_ok": False, "start": time.time(), "connected": None, "end": None,
           "error": None}
    hs, hr = hashlib.sha256(), hashlib.sha256()
    ok = True
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    try:
        if args.bind or args.src_port:
            bind_host = args.bind or ("::" if fam == socket.AF_INET6 else "0.0.0.0")
            s.bind((bind_host, args.src_port + i if args.src_port else 0))
        s.connect((host, port))
        rec["connected"] = time.time()
        local = s.getsockname()
        rec["local"], rec["local_port"] = fmt_addr(local), local[1]
        for d in range(args.datagrams):
            data = payload(args.seed, i * 1000 + d, size)
            hs.update(data)
            s.send(data)
            rec["sent"] += len(data)
            back = s.recv(65536)
            hr.update(back)
            rec["received"] += len(back)
            ok = ok and back == data
            if args.interval:
                time.sleep(args.interval)
    except ConnectionRefusedError:
        rec["error"] = "refused"
    except OSError as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    finally:
        s.close()
    rec["end"] = time.time()
    rec["sha256_sent"], rec["sha256_received"] = hs.hexdigest(), hr.hexdigest()
    rec["echo_ok"] = rec["error"] is None and ok
    return rec


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--connect", default="127.0.0.1:49673", help="IP:PORT or [IPv6]:PORT")
    p.add_argument("-n", "--count", type=int, default=3, help="connections (max 10000)")
    p.add_argument("--size", default="1000", help="payload bytes, comma list cycles")
    p.add_argument("--mode", default="halfclose", help="halfclose|close|reset, comma list cycles")
    p.add_argument("--udp", action="store_true", help="UDP echo instead of TCP")
    p.add_argument("--datagrams", type=int, default=1, help="UDP datagrams per socket")
    p.add_argument("--bind", default=None, help="local IP to bind")
    p.add_argument("--src-port", type=int, default=0, help="connection i binds port BASE+i")
    p.add_argument("--seed", type=int, default=1, help="payload seed")
    p.add_argument("--interval", type=float, default=0.0, help="pause between connections")
    p.add_argument("--timeout", type=float, default=10.0, help="per socket operation, s")
    p.add_argument("--deadline", type=float, default=120.0, help="whole run, s")
    p.add_argument("--log", default="-", help="JSON lines output file (- = stdout)")
    p.add_argument("--allow-errors", action="store_true", help="exit 0 even on failures")
    p.add_argument("--parallel", type=int, default=1, help="connections at once (1..64)")
    p.add_argument("--start-at", type=float, default=0.0, help="wait until this UNIX time")
    args = p.parse_args()

    if not 0 <= args.count <= 10000:
        p.error("--count must be within 0..10000")
    sizes = [int(x) for x in args.size.split(",")]
    modes = args.mode.split(",")
    for m in modes:
        if m not in ("halfclose", "close", "reset"):
            p.error(f"unknown mode {m}")
    if not 1 <= args.parallel <= 64:
        p.error("--parallel must be within 1..64")
    fam, host, port = parse_addr(args.connect)
    if args.start_at:
        time.sleep(min(max(0.0, args.start_at - time.time()), args.deadline))
    out = sys.stdout if args.log == "-" else open(args.log, "a", encoding="utf-8")
    t_end = time.monotonic() + args.deadline
    failures = 0
    lock = threading.Lock()
    next_i = [0]

    def worker():
        nonlocal failures
        while True:
            with lock:
                i = next_i[0]
                if i >= args.count:
                    return
                if time.monotonic() > t_end:
                    print(f"client: deadline reached after {i} connections", file=sys.stderr)
                    failures += 1
                    next_i[0] = args.count
                    return
                next_i[0] += 1
            one = udp_one if args.udp else tcp_one
            rec = one(args, i, cycle(sizes, i), cycle(modes, i), fam, host, port)
            with lock:
                out.write(json.dumps(rec, sort_keys=True) + "\n")
                out.flush()
                if not rec["echo_ok"]:
                    failures += 1
                    print(f"client: connection {i} failed: {rec['error'] or 'echo mismatch'}",
                          file=sys.stderr)
            if args.interval and i + 1 < args.count:
                time.sleep(args.interval)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(args.parallel)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(args.deadline + 4 * args.timeout + 5)
    if out is not sys.stdout:
        out.close()
    return 0 if failures == 0 or args.allow_errors else 1


if __name__ == "__main__":
    sys.exit(main())
