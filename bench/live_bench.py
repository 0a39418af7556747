#!/usr/bin/env python3
"""Live capture benchmark: one flowtrail process on every point vs one tcpdump per point.

Builds a seed-path lab (lab/seedpath.sh, fresh namespaces, torn down on any exit), offers
UDP load at rising packet rates and, at each rate, captures the same three points
(VM br0, VM bridge port veth-node, NODE eth0: every datagram crosses all three) with

  flowtrail -w    one process, all points, writing one pcapng
  tcpdump -w      one process per point, one pcap each (run inside the point's namespace)
  flowtrail -nn   one process, printing to /dev/null
  tcpdump -nn     one process per point, printing to /dev/null (TZ=UTC)

With --pin (the default on two or more CPUs) the sender runs on CPU 0 and the capture
processes on CPU 1, so both tools get the same single-core budget and neither slows the
sender by competing for its core (the kernel's per-socket ring copies still run in the
sender's context, as on a real host).

It reports, per rate and tool: packets sent, captured, dropped by kernel (each tool's own
end-of-capture statistics, summed over its processes) and CPU seconds (user+sys from
rusage, summed). The drop-free ceiling of a tool is the highest offered rate at which its
kernel drop counter stayed 0 (and every rate below it too).

Load: a small Python sender in the VM namespace sends COUNT datagrams of SIZE bytes to
NODE 192.168.49.2:9 (a NODE iptables rule drops them silently after capture, so no ICMP
comes back), paced in 1 ms slices; COUNT = rate x --seconds, so every step is bounded in
count and time. Nothing leaves the lab's namespaces.

Usage (root): bench/live_bench.py [--rates 20000,50000,...] [--seconds 2] [--size 64] [--buffer KIB]
              [--flowtrail target/release/flowtrail] [--modes w,print] [--json FILE]
"""

import argparse
import atexit
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.join(ROOT, "lab", "seedpath.sh")

SENDER = r"""
import socket, sys, time
dst, port, count, rate, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
payload = b"x" * size
addr = (dst, port)
sent = 0
t0 = time.perf_counter()
deadline = t0 + count / rate * 3 + 5      # hard time bound
send = s.sendto
while sent < count:
    now = time.perf_counter()
    if now > deadline:
        break
    due = min(count, int((now - t0) * rate) + 1)
    while sent < due:
        try:
            send(payload, addr)
        except OSError:
            pass                          # ENOBUFS: offered but not sent; counted below
        sent += 1
    if sent < count and (now - t0) * rate < sent:
        time.sleep(max(0.0, sent / rate - (time.perf_counter() - t0)))
el = time.perf_counter() - t0
print(sent, el)
"""

lab_id = None


def sh(*args, check=True, **kw):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def lab_down():
    global lab_id
    if lab_id:
        subprocess.run([LAB, "down", lab_id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lab_id = None


def lab_up():
    global lab_id
    lab_id = "ftbench%d" % os.getpid()
    atexit.register(lab_down)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    out = sh(LAB, "up", env=dict(os.environ, FT_LAB_ID=lab_id)).stdout
    env = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    ipt = env.get("FT_IPTABLES", "iptables")
    # Drop the load in NODE after capture (no ICMP port unreachable back).
    sh("ip", "netns", "exec", env["FT_NODE_NS"], ipt, "-A", "INPUT", "-p", "udp", "--dport", "9", "-j", "DROP")
    return env


def wait_listening(errfile, n, timeout=20):
    t0 = time.time()
    while time.time() - t0 < timeout:
        with open(errfile) as f:
            if f.read().count("listening on") >= n:
                return
        time.sleep(0.02)
    raise RuntimeError("capture did not start: " + open(errfile).read())


def stop(procs):
    """SIGINT every process, wait; returns [(stderr text, utime+stime)]."""
    for p, _ in procs:
        try:
            os.kill(p.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
    res = []
    for p, err in procs:
        t0 = time.time()
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() - t0 > 30:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.01)
        p.returncode = status
        res.append((open(err).read(), ru.ru_utime + ru.ru_stime))
    return res


def stat(text, what):
    """The last 'N packets <what>' total line."""
    m = re.findall(r"^(\d+) packets? " + what + "$", text, re.M)
    return int(m[-1]) if m else None


def run_step(env, tool, mode, rate, seconds, size, ft, work, pin, buffer_kib):
    points = [(env["FT_VM_NS"], env["FT_VM_BR"]), (env["FT_VM_NS"], env["FT_VM_BRPORT"]), (env["FT_NODE_NS"], env["FT_NODE_IF"])]
    procs = []
    envv = dict(os.environ, TZ="UTC")
    if tool == "flowtrail":
        args = (["taskset", "-c", "1"] if pin else []) + [ft]
        for ns, i in points:
            args += ["-i", "%s/%s" % (ns, i)]
        args += ["-w", os.path.join(work, "ft.pcapng")] if mode == "w" else ["-nn"]
        args += ["-B", str(buffer_kib)] if buffer_kib else []
        err = os.path.join(work, "ft.err")
        out = open(os.devnull, "w")
        procs.append((subprocess.Popen(args, stdout=out, stderr=open(err, "w"), env=envv), err))
        wait_listening(err, len(points))
    else:
        for k, (ns, i) in enumerate(points):
            args = ["ip", "netns", "exec", ns] + (["taskset", "-c", "1"] if pin else []) + ["tcpdump", "-i", i]
            args += ["-w", os.path.join(work, "td%d.pcap" % k)] if mode == "w" else ["-nn"]
            args += ["-B", str(buffer_kib)] if buffer_kib else []
            err = os.path.join(work, "td%d.err" % k)
            procs.append((subprocess.Popen(args, stdout=open(os.devnull, "w"), stderr=open(err, "w"), env=envv), err))
        for _, err in procs:
            wait_listening(err, 1)
    count = int(rate * seconds)
    snd = sh("ip", "netns", "exec", env["FT_VM_NS"], *(["taskset", "-c", "0"] if pin else []),
             "timeout", str(int(seconds * 3 + 10)), sys.executable, "-c", SENDER,
             env["FT_NODE_ADDR"], "9", str(count), str(rate), str(size))
    sent, elapsed = snd.stdout.split()
    time.sleep(1.2)  # let rings drain (tcpdump -w retires its last block after 1 s)
    res = stop(procs)
    dropped = sum(stat(t, "dropped by kernel") or 0 for t, _ in res)
    captured = sum(stat(t, "captured") or 0 for t, _ in res)
    cpu = sum(c for _, c in res)
    for f in os.listdir(work):
        if f.endswith(".pcap") or f.endswith(".pcapng"):
            os.unlink(os.path.join(work, f))
    return {"tool": tool, "mode": mode, "rate": rate, "sent": int(sent), "send_pps": int(int(sent) / float(elapsed)),
            "expected": int(sent) * len(points), "captured": captured, "dropped": dropped, "cpu_s": round(cpu, 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="20000,50000,100000,150000,200000,300000")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--flowtrail", default=os.path.join(ROOT, "target", "release", "flowtrail"))
    ap.add_argument("--modes", default="w,print")
    ap.add_argument("--json", default=None)
    ap.add_argument("--buffer", type=int, default=0, help="-B KiB for both tools (default: libpcap's 2 MiB)")
    ap.add_argument("--no-pin", action="store_true", help="don't pin sender (CPU 0) and captures (CPU 1)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("live_bench: needs root (network namespaces)")
    if not os.path.exists(a.flowtrail):
        sys.exit("live_bench: build first: cargo build --release")
    rates = [int(r) for r in a.rates.split(",")]
    pin = not a.no_pin and os.cpu_count() >= 2
    work = "/tmp/flowtrail-live-bench-%d" % os.getpid()
    os.makedirs(work, exist_ok=True)
    env = lab_up()
    rows = []
    try:
        for mode in a.modes.split(","):
            for rate in rates:
                for tool in ("flowtrail", "tcpdump"):
                    r = run_step(env, tool, mode, rate, a.seconds, a.size, a.flowtrail, work, pin, a.buffer)
                    rows.append(r)
                    print("%-9s %-5s offered %7d pps (sent %7d at %7d pps): captured %8d of %8d, dropped %7d, cpu %6.2f s"
                          % (tool, mode, rate, r["sent"], r["send_pps"], r["captured"], r["expected"], r["dropped"], r["cpu_s"]),
                          flush=True)
    finally:
        lab_down()
        subprocess.run(["rm", "-rf", work])
    print()
    print("| mode | offered pps | flowtrail: sender pps | captured/expected | kernel drops | CPU s | tcpdump x3: sender pps | captured/expected | kernel drops | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode in a.modes.split(","):
        for rate in rates:
            f = next(r for r in rows if r["tool"] == "flowtrail" and r["mode"] == mode and r["rate"] == rate)
            t = next(r for r in rows if r["tool"] == "tcpdump" and r["mode"] == mode and r["rate"] == rate)
            print("| %s | %d | %d | %d/%d | %d | %.2f | %d | %d/%d | %d | %.2f |" % (
                "-w" if mode == "w" else "-nn >/dev/null", rate, f["send_pps"], f["captured"], f["expected"], f["dropped"], f["cpu_s"],
                t["send_pps"], t["captured"], t["expected"], t["dropped"], t["cpu_s"]))
    print()
    for mode in a.modes.split(","):
        for tool in ("flowtrail", "tcpdump"):
            ceiling, achieved, cpu = 0, 0, 0.0
            for rate in rates:
                r = next(r for r in rows if r["tool"] == tool and r["mode"] == mode and r["rate"] == rate)
                if r["dropped"] == 0:
                    ceiling, achieved, cpu = rate, max(achieved, r["send_pps"]), r["cpu_s"]
                else:
                    break
            print("drop-free ceiling %-9s %-3s: offered %d pps, highest sent without drops %d pps (x3 points = %d frames/s), CPU there %.2f s"
                  % (tool, "-w" if mode == "w" else "-nn", ceiling, achieved, achieved * 3, cpu))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
