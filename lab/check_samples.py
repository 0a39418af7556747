#!/usr/bin/env python3
"""Check a directory recorded by lab/record-samples.sh and write its manifest.json.

usage: check_samples.py DIR [--no-manifest]

Checks (exit 1 with a list of failures otherwise):
  * every expected capture exists and has packets (vm-lo: only the VM-local control
    connection to 127.0.0.1:55002, none of the seed path's packets);
  * every packet is Ethernet carrying ARP, IPv4 or IPv6 (no extension headers) with TCP,
    UDP, ICMP or ICMPv6 inside, and `tcpdump -n -r` prints no application protocol;
  * the seed path: each client connection (seedpath-client.jsonl) appears on host-lo with
    its own port and exact byte counts; on host-veth and vm-veth as 192.168.65.1:* ->
    192.168.65.2:49700; on vm-br0, vm-brport and node-eth0 as the DNAT'ed and masqueraded
    192.168.49.1:* -> 192.168.49.2:8443 with the same tuples on all three, in the same
    order and with the same bytes; conntrack in the VM maps each to 127.0.0.1:55001;
  * vm-all.pcapng has the VM's four interfaces with the same flows as the single files;
  * the IPv6/UDP/ICMP captures contain what their clients logged, ND for IPv6, the ICMP
    port unreachable and the IPv4 fragments;
  * the whole directory stays under 1 MB.
"""

import hashlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pcapsummary import summarize  # noqa: E402

SEED = ["host-lo", "host-veth", "vm-veth", "vm-lo", "vm-br0", "vm-brport", "node-eth0"]
OTHER = ["tcp6", "udp", "udp6", "icmp", "icmp6"]
MAX_TOTAL = 1_000_000

# Application protocols tcpdump could name in one-line output; none may appear.
DENY = re.compile(r"\b(HTTP|domain|NTP|DHCP|BOOTP|mDNS|LLMNR|igmp|STP|SNMP|syslog|NBT|SMB|"
                  r"SIP|RTP|RTCP|VXLAN|Geneve|BFD|QUIC|TLS|SSL|RIP|ISAKMP|RADIUS|LDAP|"
                  r"Kerberos|NFS|telnet|FTP|SMTP|BGP|OpenFlow|RESP|multicast listener|"
                  r"router solicitation|router advertisement|HBH)\b")
# What a line may look like (after the timestamp).
ALLOW = re.compile(
    r"^\S+ (?:"
    r"IP6? \S+ > \S+: Flags \[[^\]]*\].*"
    r"|IP6? \S+ > \S+: UDP, (?:bad )?length \d+.*"
    r"|IP \S+ > \S+: ip-proto-17"
    r"|IP \S+ > \S+: ICMP (?:echo (?:request|reply), id \d+, seq \d+, length \d+"
    r"|\S+ udp port \d+ unreachable, length \d+)"
    r"|IP6 \S+ > \S+: ICMP6, (?:echo (?:request|reply), id \d+, seq \d+, length \d+"
    r"|neighbor (?:solicitation|advertisement), \S+ (?:has|is) \S+, length \d+)"
    r"|ARP, (?:Request who-has \S+ tell \S+|Reply \S+ is-at \S+), length \d+"
    r")$")


class Checker:
    def __init__(self, d):
        self.d = d
        self.failures = []
        self.summaries = {}

    def fail(self, msg):
        self.failures.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond

    def path(self, name):
        return os.path.join(self.d, name)

    def summary(self, name):
        if name not in self.summaries:
            self.summaries[name] = summarize(self.path(name))
        return self.summaries[name]

    def jsonl(self, name):
        with open(self.path(name), encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def flows(self, name, iface=0, proto="tcp"):
        return [f for f in self.summary(name)["interfaces"][iface]["flows"]
                if f["proto"] == proto]

    # --- generic ---------------------------------------------------------------------
    def check_file_basics(self, name):
        if not self.expect(os.path.exists(self.path(name)), f"{name}: missing"):
            return
        s = self.summary(name)
        self.expect(s["packets"] > 0, f"{name}: no packets")
        for i in s["interfaces"]:
            self.expect(i["disallowed"] == 0,
                        f"{name}/{i['name']}: {i['disallowed']} packets outside the allowed "
                        f"protocols: {i['protocols']}")
            self.expect(i["linktype"] == 1, f"{name}: linktype {i['linktype']} not Ethernet")
        out = subprocess.run(["tcpdump", "-n", "-r", self.path(name)], capture_output=True,
                             text=True, check=False)
        self.expect(out.returncode == 0, f"{name}: tcpdump -r failed: {out.stderr.strip()}")
        lines = out.stdout.splitlines()
        self.expect(len(lines) == s["packets"],
                    f"{name}: tcpdump printed {len(lines)} lines for {s['packets']} packets")
        for line in lines:
            if DENY.search(line):
                self.fail(f"{name}: application protocol in: {line}")
            elif not ALLOW.match(line):
                self.fail(f"{name}: unexpected line shape: {line}")

    # --- seed path ---------------------------------------------------------------------
    def check_seed(self):
        conns = self.jsonl("seedpath-client.jsonl")
        self.expect(len(conns) > 0 and all(c["echo_ok"] for c in conns),
                    "seedpath-client.jsonl: not every connection echoed correctly")
        want = [[c["sent"], c["received"]] for c in conns]

        lo = self.flows("host-lo.pcap")
        for c in conns:
            m = [f for f in lo if f["client"] == c["local"] and f["server"] == c["remote"]]
            if self.expect(len(m) == 1, f"host-lo: connection {c['local']} not seen once"):
                self.expect(m[0]["bytes"] == [c["sent"], c["received"]] and m[0]["syn"] == 2,
                            f"host-lo: {c['local']}: bytes {m[0]['bytes']} != "
                            f"{[c['sent'], c['received']]}")
        self.expect(len(lo) == len(conns), f"host-lo: {len(lo)} flows, want {len(conns)}")

        def leg(name, client_ip, server):
            fl = self.flows(name)
            ok = self.expect(len(fl) == len(conns), f"{name}: {len(fl)} flows, want {len(conns)}")
            for f in fl:
                ok &= self.expect(f["client"].rsplit(":", 1)[0] == client_ip
                                  and f["server"] == server,
                                  f"{name}: unexpected flow {f['client']} -> {f['server']}")
            got = [f["bytes"] for f in fl]
            ok &= self.expect(got == want, f"{name}: bytes {got} != client log {want}")
            return [f["client"] for f in fl]

        h = leg("host-veth.pcap", "192.168.65.1", "192.168.65.2:49700")
        v = leg("vm-veth.pcap", "192.168.65.1", "192.168.65.2:49700")
        self.expect(h == v, "host-veth and vm-veth disagree on the tuples")
        b = leg("vm-br0.pcap", "192.168.49.1", "192.168.49.2:8443")
        p = leg("vm-brport.pcap", "192.168.49.1", "192.168.49.2:8443")
        n = leg("node-eth0.pcap", "192.168.49.1", "192.168.49.2:8443")
        self.expect(b == p == n, "vm-br0, vm-brport and node-eth0 disagree on the tuples")

        # VM lo: only the control connection, nothing of the seed path.
        vl = self.summary("vm-lo.pcap")["interfaces"][0]["flows"]
        seedports = {"49673", "49700", "55001", "8443"}
        for f in vl:
            ports = {f["client"].rsplit(":", 1)[1], f["server"].rsplit(":", 1)[1]}
            self.expect(not ports & seedports, f"vm-lo: seed-path packets: {f}")
        ctl = self.jsonl("vm-lo-client.jsonl")
        self.expect([(f["client"], f["server"]) for f in vl]
                    == [(c["local"], c["remote"]) for c in ctl],
                    f"vm-lo: flows {vl} are not exactly the control connection {ctl}")

        # conntrack: each bridge tuple is the reply side of a DNAT'ed 127.0.0.1:55001 entry.
        ct = open(self.path("vm-conntrack.txt"), encoding="utf-8").read()
        for c in b:
            port = c.rsplit(":", 1)[1]
            pat = (rf"src=127\.0\.0\.1 dst=127\.0\.0\.1 sport=\d+ dport=55001 .*"
                   rf"src=192\.168\.49\.2 dst=192\.168\.49\.1 sport=8443 dport={port}\b")
            self.expect(re.search(pat, ct), f"vm-conntrack.txt: no DNAT entry for {c}")
        ev = open(self.path("vm-conntrack-events.txt"), encoding="utf-8").read()
        self.expect(ev.count("[NEW]") >= 2 * len(conns),
                    "vm-conntrack-events.txt: fewer NEW events than legs")

        # pcapng: the VM's four interfaces, same flows as the per-interface files.
        s = self.summary("vm-all.pcapng")
        names = [i["name"] for i in s["interfaces"]]
        self.expect(names == ["veth-host", "lo", "br0", "veth-node"],
                    f"vm-all.pcapng: interfaces {names}")
        for idx, single in [(0, "vm-veth.pcap"), (2, "vm-br0.pcap"), (3, "vm-brport.pcap")]:
            if idx < len(s["interfaces"]):
                got = [(f["client"], f["server"], f["bytes"])
                       for f in s["interfaces"][idx]["flows"]]
                exp = [(f["client"], f["server"], f["bytes"]) for f in self.flows(single)]
                self.expect(got == exp, f"vm-all.pcapng/{names[idx]} != {single}")
        if len(s["interfaces"]) > 1:
            lof = [(f["client"], f["server"]) for f in s["interfaces"][1]["flows"]]
            self.expect(lof == [(f["client"], f["server"]) for f in vl],
                        "vm-all.pcapng/lo != vm-lo.pcap")

    def check_brnf(self):
        name = "vm-br0-brnf.pcap"
        if not os.path.exists(self.path(name)):
            return
        self.check_file_basics(name)
        conns = self.jsonl("brnf-client.jsonl")
        fl = self.flows(name)
        out = [f for f in fl if f["client"].startswith("192.168.49.1:")]
        back = [f for f in fl if f["client"].startswith("127.0.0.1:")]
        self.expect(len(out) == len(conns) and len(back) == len(conns),
                    f"{name}: expected the request direction as 192.168.49.1:P and the "
                    f"reply direction as 127.0.0.1:P (br_netfilter de-NAT), got {fl}")

    # --- other captures ----------------------------------------------------------------
    def check_client_flows(self, name, log, server_port, proto):
        conns = [c for c in self.jsonl(log) if c["remote"].endswith(f":{server_port}")]
        fl = self.flows(name, proto=proto)
        for c in conns:
            m = [f for f in fl if f["client"] == c["local"] and f["server"] == c["remote"]]
            if self.expect(len(m) == 1, f"{name}: {c['local']} -> {c['remote']} not seen"):
                self.expect(m[0]["bytes"] == [c["sent"], c["received"]],
                            f"{name}: {c['local']}: bytes {m[0]['bytes']} != "
                            f"{[c['sent'], c['received']]}")
        return conns

    def protos(self, name):
        return self.summary(name)["interfaces"][0]["protocols"]

    def check_other(self):
        self.check_client_flows("tcp6.pcap", "tcp6-client.jsonl", 49700, "tcp")
        p = self.protos("tcp6.pcap")
        self.expect(p.get("ipv6/icmp6/135") and p.get("ipv6/icmp6/136"), "tcp6: no ND")

        self.check_client_flows("udp.pcap", "udp-client.jsonl", 41000, "udp")
        p = self.protos("udp.pcap")
        self.expect(p.get("ipv4/icmp/3"), "udp.pcap: no ICMP port unreachable")
        self.expect(p.get("ipv4/frag/17"), "udp.pcap: no IPv4 fragments")
        self.expect(p.get("arp"), "udp.pcap: no ARP")

        self.check_client_flows("udp6.pcap", "udp6-client.jsonl", 41000, "udp")
        p = self.protos("udp6.pcap")
        self.expect(p.get("ipv6/icmp6/135"), "udp6.pcap: no ND")

        p = self.protos("icmp.pcap")
        self.expect(p.get("ipv4/icmp/8") == 3 and p.get("ipv4/icmp/0") == 3,
                    f"icmp.pcap: want 3 echo requests and replies, got {p}")
        p = self.protos("icmp6.pcap")
        self.expect(p.get("ipv6/icmp6/128") == 3 and p.get("ipv6/icmp6/129") == 3
                    and p.get("ipv6/icmp6/135"), f"icmp6.pcap: want 3+3 echoes and ND, got {p}")

    def run(self):
        files = [f"{n}.pcap" for n in SEED + OTHER] + ["vm-all.pcapng"]
        for f in files:
            self.check_file_basics(f)
        if self.failures:  # missing files: the rest would only repeat that
            return
        self.check_seed()
        self.check_brnf()
        self.check_other()
        total = sum(os.path.getsize(self.path(f)) for f in os.listdir(self.d))
        self.expect(total < MAX_TOTAL, f"total size {total} >= {MAX_TOTAL}")

    def manifest(self):
        out = {}
        for f in sorted(os.listdir(self.d)):
            if not f.endswith((".pcap", ".pcapng")):
                continue
            s = self.summary(f)
            with open(self.path(f), "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            out[f] = {
                "bytes": os.path.getsize(self.path(f)), "sha256": digest,
                "packets": s["packets"],
                "interfaces": [{"name": i["name"], "packets": i["packets"],
                                "protocols": i["protocols"],
                                "flows": [{k: fl[k] for k in ("proto", "client", "server",
                                                              "packets", "bytes")}
                                          for fl in i["flows"]]}
                               for i in s["interfaces"]],
            }
        return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    c = Checker(sys.argv[1])
    c.run()
    if c.failures:
        for f in c.failures:
            print(f"check: FAIL {f}", file=sys.stderr)
        return 1
    if "--no-manifest" not in sys.argv:
        with open(c.path("manifest.json"), "w", encoding="utf-8") as f:
            json.dump(c.manifest(), f, indent=1, sort_keys=True)
            f.write("\n")
    print(f"check: ok ({len(c.summaries)} captures)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
