#!/usr/bin/env python3
"""Printing benchmark: flowtrail against tcpdump on the same capture, in the same run.

Builds release, generates (once, cached under target/bench/) a capture of >= 500k packets and
>= 20k TCP connections with gen_capture.py, then times `-nn` and `-nn -X` for both tools
(best of --runs, output to a file), checks the outputs are identical, and prints the wall-time
ratios and flowtrail's peak resident memory. tcpdump runs with TZ=UTC (its fastest: without
TZ glibc re-reads /etc/localtime per packet). Not a test: it never fails on a slow ratio,
only on differing output.

usage: bench/print_bench.py [--connections N] [--runs R] [--flags "-nn" --flags "-nn -X"]
"""
import argparse, hashlib, os, shlex, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, out_path):
    """Runs cmd with stdout to out_path; returns (wall seconds, peak RSS KiB, cpu seconds)."""
    with open(out_path, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=dict(os.environ, TZ="UTC"))
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed with status {status}")
    return wall, ru.ru_maxrss, ru.ru_utime + ru.ru_stime


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=25000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--flags", action="append")
    a = ap.parse_args()
    flag_sets = a.flags or ["-nn", "-nn -X"]
    tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    ft = os.path.join(ROOT, "target/release/flowtrail")
    bdir = os.path.join(ROOT, "target/bench")
    os.makedirs(bdir, exist_ok=True)
    cap = os.path.join(bdir, f"print-{a.connections}.pcap")
    if not os.path.exists(cap):
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_capture.py"), cap,
                        "--connections", str(a.connections)], check=True)
    size = os.path.getsize(cap)
    print(f"capture: {cap} ({size / 1e6:.0f} MB, {a.connections} TCP connections)")
    print(f"{'flags':10} {'tcpdump s':>10} {'flowtrail s':>12} {'ratio':>7} {'ft peak RSS':>12} {'ft cpu s':>9} identical")
    ok = True
    for flags in flag_sets:
        fl = shlex.split(flags)
        best = {}
        for tool, cmd in (("tcpdump", [tcpdump] + fl + ["-r", cap]), ("flowtrail", [ft] + fl + ["-r", cap])):
            outp = os.path.join(bdir, f"out-{tool}.txt")
            res = [run(cmd, outp) for _ in range(a.runs)]
            best[tool] = (min(r[0] for r in res), max(r[1] for r in res), min(r[2] for r in res), digest(outp))
        same = best["tcpdump"][3] == best["flowtrail"][3]
        if flags == flag_sets[0]:
            with open(os.path.join(bdir, "out-tcpdump.txt"), "rb") as f:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            print(f"  ({lines} output lines for {flags})")
        ok &= same
        ratio = best["flowtrail"][0] / best["tcpdump"][0]
        print(f"{flags:10} {best['tcpdump'][0]:10.2f} {best['flowtrail'][0]:12.2f} {ratio:7.2f} "
              f"{best['flowtrail'][1] / 1024:9.1f} MiB {best['flowtrail'][2]:9.2f} {'yes' if same else 'NO'}")
    if not ok:
        sys.exit("outputs differ between flowtrail and tcpdump")


if __name__ == "__main__":
    main()
