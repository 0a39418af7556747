#!/usr/bin/env python3
"""Writes a deterministic synthetic capture for benchmarks: many complete TCP connections
(handshake with options, request/response data, FIN exchange) over IPv4 and IPv6 on Ethernet,
with some UDP and ICMP echo mixed in. Checksums are correct, so -v output is meaningful.

usage: gen_capture.py OUT.pcap [--connections N] [--seed S]
Packets per connection average ~20, so 25k connections make about 500k packets.
"""
import argparse, array, random, struct, sys


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    a = array.array("H", data)
    if sys.byteorder == "little":
        a.byteswap()
    s = sum(a)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Writer:
    def __init__(self, f):
        self.f = f
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.n = 0

    def packet(self, ts_us: int, frame: bytes):
        self.f.write(struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)
        self.n += 1


def eth(src_mac, dst_mac, ethertype, payload):
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, ident, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, ttl, proto, 0, src, dst)
    c = csum(hdr)
    return hdr[:10] + struct.pack("!H", c) + hdr[12:] + payload


def ipv6(src, dst, nh, payload, hlim=64, flow=0):
    return struct.pack("!IHBB16s16s", (6 << 28) | flow, len(payload), nh, hlim, src, dst) + payload


def pseudo(src, dst, proto, length):
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def tcp(src, dst, sport, dport, seq, ack, flags, win, opts, payload):
    off = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off << 4, flags, win, 0, 0) + opts
    seg = hdr + payload
    c = csum(pseudo(src, dst, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, payload):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(pseudo(src, dst, 17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--connections", type=int, default=25000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    blob = bytes(rnd.getrandbits(8) for _ in range(65536))
    text = (b"GET /api/v1/items?page=%d HTTP/1.1\r\nHost: svc.local\r\nUser-Agent: bench\r\n\r\n" * 64)
    cmac, smac = bytes.fromhex("0242c0a83101"), bytes.fromhex("0242c0a83102")
    ts = 1_700_000_000_000_000
    with open(a.out, "wb") as f:
        w = Writer(f)
        for i in range(a.connections):
            v6 = i % 10 == 9
            if v6:
                cip = bytes.fromhex("fd000000000000000000000000%06x" % (0x10000 + i % 200))
                sip = bytes.fromhex("fd00000000000000000000000000%04x" % (2 + i % 50))
            else:
                cip = bytes([10, 1, 0, 1 + i % 200])
                sip = bytes([192, 168, 49, 2 + i % 50])
            # Unique 4-tuples: 200 client addresses, each with its own run of source ports.
            sport, dport = 1024 + (i // 200) % 64000, [8443, 55001, 49673, 30080][i % 4]
            isn_c, isn_s = rnd.getrandbits(32), rnd.getrandbits(32)
            tsv_c, tsv_s = rnd.getrandbits(32), rnd.getrandbits(32)
            ident = [rnd.getrandbits(16), rnd.getrandbits(16)]

            def emit(from_client, flags, seq, ack, payload=b"", opts=None):
                nonlocal ts
                ts += rnd.randint(5, 400)
                s, d = (cip, sip) if from_client else (sip, cip)
                sp, dp = (sport, dport) if from_client else (dport, sport)
                tsopt = struct.pack("!BBBBII", 1, 1, 8, 10, (tsv_c if from_client else tsv_s) + ts // 1000 % 100000,
                                    (tsv_s if from_client else tsv_c) + ts // 1000 % 100000)
                seg = tcp(s, d, sp, dp, seq, ack, flags, 502 if flags & 2 == 0 else 64240,
                          tsopt if opts is None else opts, payload)
                k = 0 if from_client else 1
                ident[k] += 1
                pkt = ipv6(s, d, 6, seg) if v6 else ipv4(s, d, 6, seg, ident[k])
                w.packet(ts, eth(cmac if from_client else smac, smac if from_client else cmac,
                                 0x86DD if v6 else 0x0800, pkt))

            synopt = struct.pack("!BBHBBBBIIBBBB", 2, 4, 1460, 4, 2, 8, 10, tsv_c, 0, 1, 3, 3, 7)
            emit(True, 0x02, isn_c, 0, opts=synopt)
            emit(False, 0x12, isn_s, isn_c + 1, opts=synopt)
            emit(True, 0x10, isn_c + 1, isn_s + 1)
            cseq, sseq = isn_c + 1, isn_s + 1
            for _ in range(rnd.randint(1, 4)):
                n = rnd.randint(60, 600)
                off = rnd.randrange(0, len(text) - n)
                req = text[off:off + n]
                emit(True, 0x18, cseq, sseq, req)
                cseq += len(req)
                resp_len = rnd.choice([200, 1448, 3000, 6000])
                while resp_len > 0:
                    n = min(1448, resp_len)
                    off = rnd.randrange(0, len(blob) - n)
                    emit(False, 0x18 if n < 1448 else 0x10, sseq, cseq, blob[off:off + n])
                    sseq += n
                    resp_len -= n
                    emit(True, 0x10, cseq, sseq)
            emit(True, 0x11, cseq, sseq)
            emit(False, 0x11, sseq, cseq + 1)
            emit(True, 0x10, cseq + 1, sseq + 1)
            if i % 25 == 0:
                ts += 100
                p = udp(cip, sip, 40000 + i % 1000, 9999, blob[:rnd.randint(20, 300)])
                w.packet(ts, eth(cmac, smac, 0x86DD if v6 else 0x0800, ipv6(cip, sip, 17, p) if v6 else ipv4(cip, sip, 17, p, i)))
            if i % 50 == 0 and not v6:
                body = struct.pack("!BBHHH", 8, 0, 0, i & 0xFFFF, 1) + blob[:56]
                body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
                w.packet(ts + 10, eth(cmac, smac, 0x0800, ipv4(cip, sip, 1, body, i)))
    print(f"{a.out}: {w.n} packets, {a.connections} TCP connections", file=sys.stderr)


if __name__ == "__main__":
    main()
