#!/usr/bin/env python3
"""Summarise pcap/pcapng files: packets, protocols, TCP/UDP flows (pure stdlib).

Used by lab/record-samples.sh to check the recorded samples and to write
samples/manifest.json; also handy by hand:  lab/pcapsummary.py samples/*.pcap*

Per file (and per pcapng interface) it reports the packet count, a protocol census
(e.g. "ipv4/tcp", "arp", "ipv6/icmp6/135"), packets outside the allowed set
(Ethernet|ARP|IPv4|IPv6|TCP|UDP|ICMP|ICMPv6, IPv6 without extension headers), and flows:
TCP/UDP 4-tuples oriented client -> server (TCP: the sender of the first bare SYN; else
the first packet's sender), with packets and transport payload bytes per direction, taken
from IP lengths, so it does not depend on the snap length.
"""

import json
import struct
import sys
from collections import Counter, OrderedDict
from ipaddress import IPv4Address, IPv6Address

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276


def read_packets(path):
    """Yield (iface_id, ts_float, linktype, caplen, origlen, bytes). Also returns interfaces."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        return _read_pcapng(data)
    return _read_pcap(data)


def _read_pcap(data):
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
        magic = struct.unpack(">I", data[:4])[0]
    else:
        raise ValueError("not a pcap/pcapng file")
    nsec = magic == 0xA1B23C4D
    _, _, _, _, _, linktype = struct.unpack(e + "HHiIII", data[4:24])
    ifaces = [{"name": None, "linktype": linktype}]
    pkts = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        ts = sec + frac / (1e9 if nsec else 1e6)
        pkts.append((0, ts, linktype, caplen, origlen, data[off:off + caplen]))
        off += caplen
    return ifaces, pkts


def _read_pcapng(data):
    ifaces, pkts = [], []
    off = 0
    e = "<"
    tsres = []
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8:off + 12]
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            linktype = struct.unpack(e + "H", body[:2])[0]
            name, res = None, 6
            o = 8
            while o + 4 <= len(body):
                code, olen = struct.unpack(e + "HH", body[o:o + 4])
                val = body[o + 4:o + 4 + olen]
                if code == 0:
                    break
                if code == 2:
                    name = val.decode("utf-8", "replace")
                if code == 9:
                    res = val[0]
                o += 4 + olen + (-olen % 4)
            ifaces.append({"name": name, "linktype": linktype})
            tsres.append(res)
        elif btype == 6:  # EPB
            iface, hi, lo, caplen, origlen = struct.unpack(e + "IIIII", body[:20])
            res = tsres[iface]
            div = (2 ** (res & 0x7F)) if res & 0x80 else 10 ** res
            ts = ((hi << 32) | lo) / div
            pkts.append((iface, ts, ifaces[iface]["linktype"], caplen, origlen,
                         body[20:20 + caplen]))
        elif btype == 3:  # SPB
            origlen = struct.unpack(e + "I", body[:4])[0]
            caplen = min(origlen, len(body) - 4)
            pkts.append((0, 0.0, ifaces[0]["linktype"], caplen, origlen, body[4:4 + caplen]))
        off += blen
    return ifaces, pkts


def fmt(ip, port):
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def decode(linktype, b):
    """Return a dict: proto (census key), allowed (bool), and for TCP/UDP the tuple."""
    d = {"allowed": True}
    if linktype == LINKTYPE_ETHERNET:
        if len(b) < 14:
            return {"proto": "eth/short", "allowed": False}
        etype = struct.unpack("!H", b[12:14])[0]
        b = b[14:]
    elif linktype == LINKTYPE_LINUX_SLL:
        etype = struct.unpack("!H", b[14:16])[0]
        b = b[16:]
    elif linktype == LINKTYPE_LINUX_SLL2:
        etype = struct.unpack("!H", b[0:2])[0]
        b = b[20:]
    elif linktype == LINKTYPE_RAW:
        etype = 0x0800 if b and b[0] >> 4 == 4 else 0x86DD
    else:
        return {"proto": f"linktype/{linktype}", "allowed": False}
    if etype == 0x0806:
        return {"proto": "arp", "allowed": True}
    if etype == 0x0800:
        if len(b) < 20:
            return {"proto": "ipv4/short", "allowed": False}
        ihl = (b[0] & 0xF) * 4
        total = struct.unpack("!H", b[2:4])[0]
        frag = struct.unpack("!H", b[6:8])[0]
        proto = b[9]
        src, dst = str(IPv4Address(b[12:16])), str(IPv4Address(b[16:20]))
        l4 = b[ihl:total]
        l4len = total - ihl
        fam = "ipv4"
        if frag & 0x1FFF:  # not the first fragment: no transport header
            return {"proto": f"ipv4/frag/{proto}", "allowed": proto in (1, 6, 17),
                    "src": src, "dst": dst}
        if frag & 0x2000:
            d["first_fragment"] = True
    elif etype == 0x86DD:
        if len(b) < 40:
            return {"proto": "ipv6/short", "allowed": False}
        plen = struct.unpack("!H", b[4:6])[0]
        proto = b[6]
        src, dst = str(IPv6Address(b[8:24])), str(IPv6Address(b[24:40]))
        l4 = b[40:40 + plen]
        l4len = plen
        fam = "ipv6"
    else:
        return {"proto": f"ethertype/0x{etype:04x}", "allowed": False}
    d.update(src=src, dst=dst)
    if proto == 6:
        sport, dport, seq, ack, offflags = struct.unpack("!HHIIH", l4[:14])
        hl = (offflags >> 12) * 4
        flags = offflags & 0x1FF
        d.update(proto=f"{fam}/tcp", l4="tcp", sport=sport, dport=dport, flags=flags,
                 payload=l4len - hl)
    elif proto == 17:
        sport, dport, ulen = struct.unpack("!HHH", l4[:6])
        d.update(proto=f"{fam}/udp", l4="udp", sport=sport, dport=dport,
                 payload=(ulen - 8) if d.get("first_fragment") else l4len - 8)
    elif proto == 1 and fam == "ipv4":
        d.update(proto=f"ipv4/icmp/{l4[0]}", icmp_type=l4[0])
    elif proto == 58 and fam == "ipv6":
        d.update(proto=f"ipv6/icmp6/{l4[0]}", icmp_type=l4[0])
    else:
        d.update(proto=f"{fam}/proto/{proto}", allowed=False)
    return d


SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


def summarize(path):
    ifaces, pkts = read_packets(path)
    per = OrderedDict()
    for i, iface in enumerate(ifaces):
        per[i] = {"name": iface["name"], "linktype": iface["linktype"], "packets": 0,
                  "protocols": Counter(), "disallowed": 0, "flows": OrderedDict(),
                  "first": None, "last": None}
    for iface, ts, lt, caplen, origlen, b in pkts:
        s = per[iface]
        s["packets"] += 1
        s["first"] = ts if s["first"] is None else s["first"]
        s["last"] = ts
        try:
            d = decode(lt, b)
        except (struct.error, IndexError, ValueError):
            d = {"proto": "truncated", "allowed": False}
        s["protocols"][d["proto"]] += 1
        if not d["allowed"]:
            s["disallowed"] += 1
        if "l4" not in d:
            continue
        a, z = (d["src"], d["sport"]), (d["dst"], d["dport"])
        key = (d["l4"],) + tuple(sorted([a, z]))
        fl = s["flows"].get(key)
        if fl is None:
            client, server = a, z  # first sender, or the sender of a bare SYN
            if d["l4"] == "tcp" and d["flags"] & (SYN | ACK) == (SYN | ACK):
                client, server = z, a
            fl = {"proto": d["l4"], "client": fmt(*client), "server": fmt(*server),
                  "packets": [0, 0], "bytes": [0, 0], "syn": 0, "fin": 0, "rst": 0,
                  "first": ts, "last": ts, "_c": client}
            s["flows"][key] = fl
        di = 0 if a == fl["_c"] else 1
        fl["packets"][di] += 1
        fl["bytes"][di] += max(d["payload"], 0)
        fl["last"] = ts
        if d["l4"] == "tcp":
            fl["syn"] += bool(d["flags"] & SYN)
            fl["fin"] += bool(d["flags"] & FIN)
            fl["rst"] += bool(d["flags"] & RST)
    out = {"file": path, "packets": len(pkts), "interfaces": []}
    for s in per.values():
        flows = []
        for fl in s["flows"].values():
            fl.pop("_c")
            flows.append(fl)
        s["flows"] = flows
        s["protocols"] = dict(sorted(s["protocols"].items()))
        out["interfaces"].append(s)
    return out


def main():
    for path in sys.argv[1:]:
        print(json.dumps(summarize(path), indent=1))


if __name__ == "__main__":
    main()
