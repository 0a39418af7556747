#!/usr/bin/env python3
"""Bounded echo server for the flowtrail lab (TCP and UDP, IPv4 and IPv6).

TCP: echoes bytes as they arrive; on the peer's FIN it half-closes too (shutdown(SHUT_WR))
and closes, so a half-closing client reads the whole echo and then EOF. A reset from the
peer just ends the connection. Each connection has an idle timeout.
UDP: sends every datagram back to its sender.

It exits by itself after --lifetime seconds, and serves at most --max-conns connections.
Prints "ready" on stdout once every socket listens.
"""

import argparse
import selectors
import socket
import sys
import threading
import time


def parse_addr(text: str):
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    return socket.AF_INET, host, int(port)


def serve_tcp_conn(conn: socket.socket, idle: float):
    conn.settimeout(idle)
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                conn.shutdown(socket.SHUT_WR)
                break
            conn.sendall(chunk)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tcp", action="append", default=[], help="listen IP:PORT / [IPv6]:PORT")
    p.add_argument("--udp", action="append", default=[], help="bind IP:PORT / [IPv6]:PORT")
    p.add_argument("--lifetime", type=float, default=1800.0, help="exit after this many s")
    p.add_argument("--idle", type=float, default=60.0, help="per TCP connection idle timeout")
    p.add_argument("--max-conns", type=int, default=100000)
    args = p.parse_args()

    sel = selectors.DefaultSelector()
    for spec in args.tcp:
        fam, host, port = parse_addr(spec)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "tcp")
    for spec in args.udp:
        fam, host, port = parse_addr(spec)
        s = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "udp")
    print("ready", flush=True)

    end = time.monotonic() + args.lifetime
    served = 0
    while served < args.max_conns:
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s = key.fileobj
            try:
                if key.data == "tcp":
                    conn, _ = s.accept()
                    conn.setblocking(True)
                    served += 1
                    threading.Thread(target=serve_tcp_conn, args=(conn, args.idle),
                                     daemon=True).start()
                else:
                    data, peer = s.recvfrom(65536)
                    s.sendto(data, peer)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                print(f"server: {e}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
