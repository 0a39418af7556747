#!/usr/bin/env python3
"""Bounded TCP forwarder for the flowtrail lab: accepts on --listen, waits --delay seconds,
then connects to --connect and copies bytes both ways (a FIN is passed on as a half-close,
a reset as a close). One forked process per connection, like `socat fork`, so each pair of
legs has its own owning process. With --fork-delay the parent holds each accepted socket
alone that long before forking (a busy host's slow fork). Logs one JSON line per connection to --log:
{"peer": "IP:PORT", "in_local": .., "out_local": .., "out_remote": .., "pid": N,
 "accepted": T, "connected": T}. Exits after --lifetime seconds or --max-conns connections.
"""

import argparse
import json
import os
import select
import signal
import socket
import sys
import time


def parse_addr(text):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    return socket.AF_INET, host, int(port)


def fmt(sa):
    return f"[{sa[0]}]:{sa[1]}" if ":" in sa[0] else f"{sa[0]}:{sa[1]}"


def pump(a, b, idle):
    open_ = {a: True, b: True}
    peer = {a: b, b: a}
    while any(open_.values()):
        r, _, _ = select.select([s for s in (a, b) if open_[s]], [], [], idle)
        if not r:
            return
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if data:
                peer[s].sendall(data)
            else:
                open_[s] = False
                try:
                    peer[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass


def serve(conn, peer_addr, args, log):
    fam, host, port = parse_addr(args.connect)
    if args.delay:
        time.sleep(args.delay)
    out = socket.socket(fam, socket.SOCK_STREAM)
    out.settimeout(args.idle)
    out.connect((host, port))
    rec = {"peer": fmt(peer_addr), "in_local": fmt(conn.getsockname()),
           "out_local": fmt(out.getsockname()), "out_remote": fmt(out.getpeername()),
           "pid": os.getpid(), "connected": time.time()}
    with open(log, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")
    out.settimeout(None)
    conn.settimeout(None)
    pump(conn, out, args.idle)
    conn.close()
    out.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", required=True)
    p.add_argument("--connect", required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--fork-delay", type=float, default=0.0)
    p.add_argument("--log", required=True)
    p.add_argument("--lifetime", type=float, default=300.0)
    p.add_argument("--max-conns", type=int, default=1000)
    p.add_argument("--idle", type=float, default=10.0)
    args = p.parse_args()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    fam, host, port = parse_addr(args.listen)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(128)
    ls.settimeout(1.0)
    print("ready", flush=True)
    end = time.monotonic() + args.lifetime
    served = 0
    while time.monotonic() < end and served < args.max_conns:
        try:
            conn, peer = ls.accept()
        except socket.timeout:
            continue
        served += 1
        if args.fork_delay:
            time.sleep(args.fork_delay)
        if os.fork() == 0:
            ls.close()
            signal.alarm(int(args.idle * 3 + args.delay + 5))
            try:
                serve(conn, peer, args, args.log)
            except OSError as e:
                print(f"forwarder: {e}", file=sys.stderr)
            os._exit(0)
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
