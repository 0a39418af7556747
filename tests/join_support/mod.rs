//! Synthetic connections for the joiner's tests and benchmark: a [`Conn`] is a TCP or UDP
//! connection (ISNs, TSvals, IP-IDs, payloads, times); a [`Sight`] is where a capture point
//! sees it (tuple as rewritten there, delay along the path, visible directions). Features
//! are filled through the same hooks the flow table calls.
#![allow(dead_code)]

use flowtrail::capture::Timestamp;
use flowtrail::decode::{Ip, Tcp, Udp, tcp_flags};
use flowtrail::join::{Nanos, ObservationFeatures, Proto};
use flowtrail::reassembly::Direction;
use std::net::SocketAddr;

pub const MS: Nanos = 1_000_000;
pub const US: Nanos = 1_000;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ts(ns: Nanos) -> Timestamp {
    Timestamp {
        sec: ns.div_euclid(1_000_000_000),
        nsec: ns.rem_euclid(1_000_000_000) as u64,
    }
}

/// One transport connection.
#[derive(Clone, Debug)]
pub struct Conn {
    pub proto: Proto,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub isn: [u32; 2],
    pub tsval: [u32; 2],
    pub ipid: [u16; 2],
    /// `[c2s, s2c]`.
    pub payload: [Vec<u8>; 2],
    pub syn_at: Nanos,
    pub c2s_data_at: Nanos,
    pub s2c_data_at: Nanos,
    /// When each side sends its FIN (TCP); `None`: right after its last data.
    pub fin_at: [Option<Nanos>; 2],
    pub mss: usize,
    /// UDP: datagram size.
    pub datagram: usize,
}

/// Deterministic payload lines like lab/client.py's (`ft s1 c0003 o0000000128 ...`).
pub fn payload(conn: u64, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut off = 0;
    while off < size {
        let head = format!("ft s1 c{conn:04} o{off:010} ");
        let mut line = head.into_bytes();
        while line.len() < 63 {
            line.push(b'A' + (line.len() % 26) as u8);
        }
        line.push(b'\n');
        out.extend_from_slice(&line);
        off += 64;
    }
    out.truncate(size);
    out
}

/// A cheap deterministic generator (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

impl Conn {
    pub fn tcp(
        rng: &mut Rng,
        client: &str,
        server: &str,
        syn_at: Nanos,
        c2s: Vec<u8>,
        s2c: Vec<u8>,
    ) -> Conn {
        Conn {
            proto: Proto::Tcp,
            client: addr(client),
            server: addr(server),
            isn: [rng.u32(), rng.u32()],
            tsval: [rng.u32(), rng.u32()],
            ipid: [rng.next() as u16 | 1, rng.next() as u16 | 1],
            payload: [c2s, s2c],
            syn_at,
            c2s_data_at: syn_at + MS,
            s2c_data_at: syn_at + 3 * MS,
            fin_at: [None, None],
            mss: 1448,
            datagram: 0,
        }
    }

    pub fn udp(
        rng: &mut Rng,
        client: &str,
        server: &str,
        at: Nanos,
        c2s: Vec<u8>,
        s2c: Vec<u8>,
        datagram: usize,
    ) -> Conn {
        Conn {
            proto: Proto::Udp,
            client: addr(client),
            server: addr(server),
            isn: [0, 0],
            tsval: [0, 0],
            ipid: [rng.next() as u16 | 1, rng.next() as u16 | 1],
            payload: [c2s, s2c],
            syn_at: at,
            c2s_data_at: at,
            s2c_data_at: at + MS,
            fin_at: [None, None],
            mss: 0,
            datagram,
        }
    }
}

/// Where a capture point sees a connection.
#[derive(Clone, Debug)]
pub struct Sight {
    pub point: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Position along the leg: c2s packets arrive `delay` later, s2c packets `delay` earlier.
    pub delay: Nanos,
    pub ttl: [u8; 2],
    /// Directions visible here.
    pub dirs: [bool; 2],
    /// Sequence shift added to each direction's numbers (and subtracted from the acks of the
    /// other), as a sequence-randomizing box does downstream of itself.
    pub shift: [u32; 2],
    /// The flow table calls the first packet's sender the client.
    pub first_sender_is_client: bool,
    /// Capture starts this late (midstream pickup).
    pub starts_at: Nanos,
}

impl Sight {
    pub fn at(point: u32, c: &Conn, delay: Nanos) -> Sight {
        Sight {
            point,
            client: c.client,
            server: c.server,
            delay,
            ttl: [64, 64],
            dirs: [true, true],
            shift: [0, 0],
            first_sender_is_client: true,
            starts_at: Nanos::MIN,
        }
    }
    pub fn tuple(mut self, client: &str, server: &str) -> Sight {
        self.client = addr(client);
        self.server = addr(server);
        self
    }
}

/// One packet of a [`Conn`] as the simulator sends it (`dir` 0: client to server; `data`:
/// the range of `payload[dir]` it carries).
pub struct Packet {
    pub dir: usize,
    pub at: Nanos,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub tsval: u32,
    pub tsecr: u32,
    pub ipid: u16,
    pub data: std::ops::Range<usize>,
}

/// Every packet of `c`, in the order sent: the schedule [`observe`] feeds the hooks and the
/// join benchmark writes to its pcaps.
pub fn packets(c: &Conn) -> Vec<Packet> {
    let mut v = Vec::new();
    let (ci, si) = (c.isn[0], c.isn[1]);
    let tick = |at: Nanos| ((at - c.syn_at).max(0) / MS) as u32;
    let mut ids = c.ipid;
    let mut id = |d: usize| {
        ids[d] = ids[d].wrapping_add(1);
        ids[d]
    };
    let tsv = |d: usize, at: Nanos| c.tsval[d].wrapping_add(tick(at));
    if c.proto == Proto::Udp {
        for d in 0..2 {
            let base = if d == 0 { c.c2s_data_at } else { c.s2c_data_at };
            let n = c.payload[d].len().div_ceil(c.datagram.max(1));
            for k in 0..n {
                let at = base + k as Nanos * 2 * MS;
                let r = k * c.datagram..((k + 1) * c.datagram).min(c.payload[d].len());
                v.push(Packet {
                    dir: d,
                    at,
                    seq: 0,
                    ack: 0,
                    flags: 0,
                    tsval: 0,
                    tsecr: 0,
                    ipid: id(d),
                    data: r,
                });
            }
        }
        v.sort_by_key(|p| p.at);
        return v;
    }
    let t0 = c.syn_at;
    let mut push = |dir: usize,
                    at: Nanos,
                    seq: u32,
                    ack: u32,
                    flags: u16,
                    data: std::ops::Range<usize>,
                    ipid: u16| {
        let tsecr = if flags == tcp_flags::SYN {
            0
        } else {
            tsv(1 - dir, at - 10 * US)
        };
        v.push(Packet {
            dir,
            at,
            seq,
            ack,
            flags,
            tsval: tsv(dir, at),
            tsecr,
            ipid,
            data,
        });
    };
    let ack = tcp_flags::ACK;
    push(0, t0, ci, 0, tcp_flags::SYN, 0..0, id(0));
    push(
        1,
        t0 + 10 * US,
        si,
        ci.wrapping_add(1),
        tcp_flags::SYN | ack,
        0..0,
        0,
    );
    push(
        0,
        t0 + 20 * US,
        ci.wrapping_add(1),
        si.wrapping_add(1),
        ack,
        0..0,
        id(0),
    );
    let (lc, ls) = (c.payload[0].len(), c.payload[1].len());
    let mut at = c.c2s_data_at;
    let mut off = 0;
    while off < lc {
        let end = (off + c.mss).min(lc);
        push(
            0,
            at,
            ci.wrapping_add(1 + off as u32),
            si.wrapping_add(1),
            ack | tcp_flags::PSH,
            off..end,
            id(0),
        );
        off = end;
        at += 10 * US;
    }
    push(
        1,
        at + 5 * US,
        si.wrapping_add(1),
        ci.wrapping_add(1 + lc as u32),
        ack,
        0..0,
        id(1),
    );
    push(
        0,
        c.fin_at[0].unwrap_or(at + 10 * US),
        ci.wrapping_add(1 + lc as u32),
        si.wrapping_add(1),
        ack | tcp_flags::FIN,
        0..0,
        id(0),
    );
    let mut at = c.s2c_data_at.max(at + 20 * US);
    let mut off = 0;
    while off < ls {
        let end = (off + c.mss).min(ls);
        push(
            1,
            at,
            si.wrapping_add(1 + off as u32),
            ci.wrapping_add(2 + lc as u32),
            ack | tcp_flags::PSH,
            off..end,
            id(1),
        );
        off = end;
        at += 10 * US;
    }
    let at = c.fin_at[1].unwrap_or(at);
    push(
        1,
        at,
        si.wrapping_add(1 + ls as u32),
        ci.wrapping_add(2 + lc as u32),
        ack | tcp_flags::FIN,
        0..0,
        id(1),
    );
    push(
        0,
        at + 10 * US,
        ci.wrapping_add(2 + lc as u32),
        si.wrapping_add(2 + ls as u32),
        ack,
        0..0,
        id(0),
    );
    v
}

/// The features a capture point at `s` would have for `c`.
pub fn observe(c: &Conn, s: &Sight) -> ObservationFeatures {
    let pk = packets(c);
    let first_dir = pk
        .iter()
        .find(|p| {
            s.dirs[p.dir] && p.at + if p.dir == 0 { s.delay } else { -s.delay } >= s.starts_at
        })
        .map_or(0, |p| p.dir);
    let flip = !s.first_sender_is_client && first_dir == 1;
    let (fc, fs) = if flip {
        (s.server, s.client)
    } else {
        (s.client, s.server)
    };
    let mut f = ObservationFeatures::new(s.point, c.proto, fc, fs);
    let mut delivered = [0u64; 2];
    let mut anchored = [false; 2];
    for p in &pk {
        if !s.dirs[p.dir] {
            continue;
        }
        let at = if p.dir == 0 {
            p.at + s.delay
        } else {
            p.at - s.delay
        };
        if at < s.starts_at {
            continue;
        }
        let dir = if (p.dir == 1) ^ flip {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        let (src, dst) = if p.dir == 0 {
            (s.client, s.server)
        } else {
            (s.server, s.client)
        };
        let ip = Ip {
            src: src.ip(),
            dst: dst.ip(),
            ttl: s.ttl[p.dir],
            ip_id: src.is_ipv4().then_some(p.ipid),
            fragmented: false,
        };
        let data = &c.payload[p.dir][p.data.clone()];
        match c.proto {
            Proto::Tcp => {
                let seq = p.seq.wrapping_add(s.shift[p.dir]);
                let ackn = p.ack.wrapping_add(s.shift[1 - p.dir]);
                let tcp = Tcp {
                    sport: src.port(),
                    dport: dst.port(),
                    seq,
                    ack: if p.flags & tcp_flags::ACK != 0 {
                        ackn
                    } else {
                        0
                    },
                    flags: p.flags,
                    window: 512,
                    ts: Some((p.tsval, p.tsecr)),
                    payload: data,
                    payload_len: data.len() as u32,
                    ..Tcp::default()
                };
                f.on_tcp(dir, ts(at), &ip, &tcp);
                if p.flags & tcp_flags::SYN != 0 {
                    anchored[p.dir] = true;
                }
                if !data.is_empty() {
                    // In-order delivery, as the reassembler would; offsets from the first
                    // byte seen when the SYN was missed.
                    let off = if anchored[p.dir] {
                        p.data.start as u64
                    } else {
                        delivered[p.dir]
                    };
                    f.on_stream_data(dir, off, data);
                    delivered[p.dir] = off + data.len() as u64;
                }
            }
            Proto::Udp => {
                let udp = Udp {
                    sport: src.port(),
                    dport: dst.port(),
                    payload: data,
                    payload_len: data.len() as u32,
                };
                f.on_udp(dir, ts(at), &ip, &udp);
            }
        }
    }
    f
}

/// The seed path of one client connection: leg 1 on host lo, leg 2 on both veth ends,
/// leg 3 after DNAT+MASQUERADE on br0 and the node's eth0. Points: 0 host-lo, 1 host-veth,
/// 2 vm-veth, 3 vm-br0, 4 node-eth0. Returns the five observations and the conntrack
/// entry of leg 3 (conntrack text format).
pub struct SeedPath {
    pub legs: [Conn; 3],
    pub sights: Vec<(usize, Sight)>,
    pub conntrack: String,
}

pub fn seed_path(rng: &mut Rng, i: u64, t0: Nanos, size: usize) -> SeedPath {
    seed_path_with(rng, i, t0, payload(i, size), 7 * MS, 4 * MS)
}

pub fn seed_path_with(
    rng: &mut Rng,
    i: u64,
    t0: Nanos,
    data: Vec<u8>,
    connect: Nanos,
    forward: Nanos,
) -> SeedPath {
    // Ports: unique per connection (wrapping within the ephemeral range).
    let p = |base: u64| 10_000 + ((base + i) % 50_000);
    let cport = p(0);
    let hport = p(7_919);
    let vport = p(23_459);
    let l1 = {
        let mut c = Conn::tcp(
            rng,
            &format!("127.0.0.1:{cport}"),
            "127.0.0.1:49673",
            t0,
            data.clone(),
            data.clone(),
        );
        c.c2s_data_at = t0 + 3 * MS;
        c.s2c_data_at = t0 + 3 * MS + 4 * forward;
        c
    };
    let mut l2 = Conn::tcp(
        rng,
        &format!("192.168.65.1:{hport}"),
        "192.168.65.2:49700",
        t0 + connect,
        data.clone(),
        data.clone(),
    );
    l2.c2s_data_at = l1.c2s_data_at.max(l2.syn_at + 50 * US) + forward;
    l2.s2c_data_at = l1.s2c_data_at - forward;
    let mut l3 = Conn::tcp(
        rng,
        &format!("127.0.0.1:{vport}"),
        "127.0.0.1:55001",
        l2.syn_at + connect / 7,
        data.clone(),
        data,
    );
    l3.c2s_data_at = l2.c2s_data_at.max(l3.syn_at + 50 * US) + forward / 4;
    l3.s2c_data_at = l2.s2c_data_at - forward / 4;
    let wire = (
        format!("192.168.49.1:{vport}"),
        "192.168.49.2:8443".to_string(),
    );
    let sights = vec![
        (0, Sight::at(0, &l1, 0)),
        (1, Sight::at(1, &l2, 0)),
        (1, Sight::at(2, &l2, 3 * US)),
        (2, Sight::at(3, &l3, 0).tuple(&wire.0, &wire.1)),
        (2, Sight::at(4, &l3, 4 * US).tuple(&wire.0, &wire.1)),
    ];
    let conntrack = format!(
        "tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport={vport} dport=55001 src=192.168.49.2 dst=192.168.49.1 sport=8443 dport={vport} [ASSURED] mark=0 use=1 id={}",
        1000 + i
    );
    SeedPath {
        legs: [l1, l2, l3],
        sights,
        conntrack,
    }
}

impl SeedPath {
    pub fn observations(&self) -> Vec<ObservationFeatures> {
        self.sights
            .iter()
            .map(|(l, s)| observe(&self.legs[*l], s))
            .collect()
    }
}

pub const SEED_POINTS: [&str; 5] = ["host-lo", "host-veth", "vm-veth", "vm-br0", "node-eth0"];
