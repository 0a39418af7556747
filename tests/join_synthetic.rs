//! The joiner on synthetic features: the seed path, NAT, half observations, conntrack,
//! forwarders with identical payloads, UDP, sequence shifts, reused tuples, midstream.

mod join_support;

use flowtrail::conntrack::{CtEntry, text};
use flowtrail::join::{
    Evidence, JoinConfig, JoinKind, Joiner, Model, Nanos, ObservationFeatures, ObservationId,
    Owner, Proto, Side, Source,
};
use join_support::*;

fn ct(line: &str) -> CtEntry {
    let (mut v, errs) = text::parse_entries(line);
    assert!(errs.is_empty(), "{errs:?}");
    v.remove(0)
}

fn join(
    obs: &[ObservationFeatures],
    cts: &[CtEntry],
    setup: impl FnOnce(&mut Joiner<'_>),
) -> Model {
    let mut j = Joiner::new(JoinConfig::default());
    for (i, l) in SEED_POINTS.iter().enumerate() {
        j.set_point(i as u32, *l, None);
    }
    for (i, f) in obs.iter().enumerate() {
        j.add_observation(ObservationId(i as u64), f);
    }
    for e in cts {
        j.add_conntrack_in(e, "vm");
    }
    setup(&mut j);
    j.join()
}

/// Observation ids per path, per leg (sorted), for comparing with the truth.
fn shape(m: &Model) -> Vec<Vec<Vec<u64>>> {
    m.paths
        .iter()
        .map(|p| {
            p.legs
                .iter()
                .map(|l| {
                    l.observations
                        .iter()
                        .flat_map(|o| o.ids.iter().copied())
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn has(ev: &[flowtrail::join::Scored], f: impl Fn(&Evidence) -> bool) -> bool {
    ev.iter().any(|s| f(&s.evidence))
}

#[test]
fn seed_path_with_conntrack() {
    let mut rng = Rng(7);
    let sp = seed_path(&mut rng, 3, 1_795_928_336_000_000_000, 1500);
    let obs = sp.observations();
    let m = join(&obs, &[ct(&sp.conntrack)], |_| {});
    assert_eq!(m.paths.len(), 1, "{m}");
    let p = &m.paths[0];
    assert_eq!(
        shape(&m),
        vec![vec![vec![0], vec![1, 2], vec![3, 4]]],
        "{m}"
    );
    assert_eq!(p.client, Some(sp.legs[0].client));
    assert_eq!(p.server, Some(addr("192.168.49.2:8443")));
    // Leg 1: one observation.
    assert_eq!(p.legs[0].join.kind, JoinKind::None);
    // Leg 2: the two veth ends, same tuple, in travel order, ~3 us apart.
    let l2 = &p.legs[1];
    assert_eq!(l2.join.kind, JoinKind::SameTuple);
    assert_eq!(
        l2.observations
            .iter()
            .map(|o| &*o.point)
            .collect::<Vec<_>>(),
        ["host-veth", "vm-veth"]
    );
    assert!(has(&l2.join.evidence(), |e| matches!(
        e,
        Evidence::Isn { .. }
    )));
    assert_eq!(l2.hops[0].latency.c2s_us, Some(3.0));
    assert_eq!(l2.hops[0].latency.s2c_us, Some(3.0));
    assert!(l2.hops[0].changes.is_empty());
    // Leg 3: conntrack's pre-NAT tuple first, then br0, then the node.
    let l3 = &p.legs[2];
    assert_eq!(l3.join.kind, JoinKind::Nat);
    assert_eq!(
        l3.observations
            .iter()
            .map(|o| &*o.point)
            .collect::<Vec<_>>(),
        ["vm/conntrack", "vm-br0", "node-eth0"]
    );
    assert_eq!(l3.observations[0].source, Source::Conntrack);
    assert_eq!(l3.observations[0].dst, addr("127.0.0.1:55001"));
    assert!(l3.observations[0].ids.is_empty());
    let rw = l3.rewrite.as_ref().unwrap();
    assert_eq!(rw.dst.unwrap()[1], addr("192.168.49.2:8443"));
    assert_eq!(rw.src.unwrap()[0], sp.legs[2].client);
    assert!(has(&l3.join.evidence(), |e| matches!(
        e,
        Evidence::Conntrack { .. }
    )));
    assert_eq!(l3.hops[1].latency.c2s_us, Some(4.0));
    // Two forwarder hops, payload both ways.
    assert_eq!(p.via.len(), 2);
    for v in &p.via {
        assert!(
            has(&v.evidence, |e| matches!(
                e,
                Evidence::Payload { bytes: 1024, .. }
            )),
            "{m}"
        );
        assert!(v.process.is_none());
    }
    assert!(p.ambiguous.is_empty());
}

#[test]
fn seed_path_without_conntrack() {
    let mut rng = Rng(8);
    let sp = seed_path(&mut rng, 1, 1_000_000_000_000, 64);
    let m = join(&sp.observations(), &[], |_| {});
    assert_eq!(
        shape(&m),
        vec![vec![vec![0], vec![1, 2], vec![3, 4]]],
        "{m}"
    );
    assert_eq!(m.paths[0].legs[2].join.kind, JoinKind::SameTuple);
    for v in &m.paths[0].via {
        assert!(has(&v.evidence, |e| matches!(
            e,
            Evidence::Payload { bytes: 64, .. }
        )));
    }
}

/// Ground truth: path of each observation is its connection, leg its (connection, leg).
fn precision_recall(m: &Model, truth: &dyn Fn(u64) -> (u64, usize)) -> (f64, f64, f64, f64) {
    let mut ids: Vec<(u64, u64, usize)> = Vec::new(); // (id, path, leg index within model)
    let mut leg_serial = 0;
    for p in &m.paths {
        for l in &p.legs {
            leg_serial += 1;
            for o in &l.observations {
                for &id in &o.ids {
                    ids.push((id, p.id, leg_serial));
                }
            }
        }
    }
    let (mut tp_l, mut fp_l, mut fn_l, mut tp_p, mut fp_p, mut fn_p) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (ids[i], ids[j]);
            let (ta, tb) = (truth(a.0), truth(b.0));
            let same_leg = a.2 == b.2;
            let true_leg = ta == tb;
            match (same_leg, true_leg) {
                (true, true) => tp_l += 1,
                (true, false) => fp_l += 1,
                (false, true) => fn_l += 1,
                _ => {}
            }
            let same_path = a.1 == b.1;
            let true_path = ta.0 == tb.0;
            match (same_path, true_path) {
                (true, true) => tp_p += 1,
                (true, false) => fp_p += 1,
                (false, true) => fn_p += 1,
                _ => {}
            }
        }
    }
    let r = |tp: u64, x: u64| {
        if tp + x == 0 {
            1.0
        } else {
            tp as f64 / (tp + x) as f64
        }
    };
    (r(tp_l, fp_l), r(tp_l, fn_l), r(tp_p, fp_p), r(tp_p, fn_p))
}

#[test]
fn many_concurrent_seed_paths() {
    let mut rng = Rng(9);
    let mut obs = Vec::new();
    let mut cts = Vec::new();
    let mut truth = Vec::new();
    for i in 0..300u64 {
        // A new connection every 200 us: dozens overlap.
        let sp = seed_path(
            &mut rng,
            i,
            5_000_000_000 + i as i64 * 200 * US,
            64 + (i as usize * 97) % 5000,
        );
        for (k, f) in sp.observations().into_iter().enumerate() {
            truth.push((i, sp.sights[k].0));
            obs.push(f);
        }
        cts.push(ct(&sp.conntrack));
    }
    let m = join(&obs, &cts, |_| {});
    let (lp, lr, pp, pr) = precision_recall(&m, &|id| truth[id as usize]);
    println!(
        "legs precision {lp} recall {lr}, paths precision {pp} recall {pr}; {:?}",
        m.stats
    );
    assert_eq!((lp, lr, pp, pr), (1.0, 1.0, 1.0, 1.0));
    assert_eq!(m.paths.len(), 300);
    assert_eq!(m.stats.synthetic, 300);
}

#[test]
fn bridge_nf_half_observations_merge() {
    let mut rng = Rng(10);
    let c = Conn::tcp(
        &mut rng,
        "192.168.49.1:53340",
        "192.168.49.2:8443",
        2_000_000_000,
        payload(0, 1000),
        payload(0, 1000),
    );
    let mut req = Sight::at(3, &c, 0);
    req.dirs = [true, false];
    let mut rep = Sight::at(3, &c, 0).tuple("127.0.0.1:53340", "192.168.49.2:8443");
    rep.dirs = [false, true];
    rep.first_sender_is_client = false; // the flow table calls the SYN-ACK's sender the client
    let mut port = Sight::at(4, &c, 2 * US);
    port.ttl = [64, 64];
    let obs = vec![observe(&c, &req), observe(&c, &rep), observe(&c, &port)];
    assert_eq!(obs[1].client.to_string(), "192.168.49.2:8443");
    let m = join(&obs, &[], |_| {});
    assert_eq!(shape(&m), vec![vec![vec![0, 1, 2]]], "{m}");
    let l = &m.paths[0].legs[0];
    assert_eq!(l.observations.len(), 2);
    let br0 = &l.observations[0];
    assert_eq!(&*br0.point, "vm-br0");
    assert_eq!(
        (br0.src, br0.dst),
        (addr("192.168.49.1:53340"), addr("192.168.49.2:8443"))
    );
    let r = br0.reply.as_ref().unwrap();
    assert_eq!(
        (r.src, r.dst),
        (addr("192.168.49.2:8443"), addr("127.0.0.1:53340"))
    );
    assert_eq!(br0.packets, [5, 4]);
    assert_eq!(br0.bytes, [1000, 1000]);
    assert_eq!(l.join.kind, JoinKind::Nat);
    assert!(has(&l.join.evidence(), |e| matches!(
        e,
        Evidence::AckIsn { .. }
    )));
}

#[test]
fn half_observations_alone() {
    let mut rng = Rng(11);
    let c = Conn::tcp(
        &mut rng,
        "192.168.49.1:53340",
        "192.168.49.2:8443",
        2_000_000_000,
        payload(0, 100),
        payload(0, 100),
    );
    let mut req = Sight::at(0, &c, 0);
    req.dirs = [true, false];
    let mut rep = Sight::at(0, &c, 0).tuple("127.0.0.1:53340", "192.168.49.2:8443");
    rep.dirs = [false, true];
    let m = join(&[observe(&c, &req), observe(&c, &rep)], &[], |_| {});
    assert_eq!(shape(&m), vec![vec![vec![0, 1]]], "{m}");
}

fn twins(gap: Nanos, owners: bool) -> (Model, Vec<(u64, usize)>) {
    let mut rng = Rng(12);
    let data = payload(42, 3000);
    let a = seed_path_with(
        &mut rng,
        1,
        10_000_000_000,
        data.clone(),
        300 * US,
        100 * US,
    );
    let b = seed_path_with(&mut rng, 2, 10_000_000_000 + gap, data, 300 * US, 100 * US);
    let mut obs = Vec::new();
    let mut truth = Vec::new();
    let mut cts = Vec::new();
    for (n, sp) in [&a, &b].iter().enumerate() {
        for (k, mut f) in sp.observations().into_iter().enumerate() {
            if owners {
                let fwd1 = Owner {
                    pid: 100 + n as u32,
                    comm: "socat".into(),
                };
                let fwd2 = Owner {
                    pid: 200 + n as u32,
                    comm: "socat".into(),
                };
                match k {
                    0 => f.set_owner(Side::Server, fwd1),
                    1 => f.set_owner(Side::Client, fwd1),
                    2 => f.set_owner(Side::Server, fwd2),
                    _ => {}
                }
            }
            truth.push((n as u64, sp.sights[k].0));
            obs.push(f);
        }
        cts.push(ct(&sp.conntrack));
    }
    let m = join(&obs, &cts, |j| {
        if owners {
            for (n, sp) in [&a, &b].iter().enumerate() {
                j.add_socket_owner(
                    None,
                    Proto::Tcp,
                    sp.legs[2].client,
                    sp.legs[2].server,
                    Owner {
                        pid: 200 + n as u32,
                        comm: "socat".into(),
                    },
                );
            }
        }
    });
    (m, truth)
}

#[test]
fn identical_simultaneous_clients_do_not_cross() {
    let (m, truth) = twins(20 * US, false);
    let (lp, lr, pp, pr) = precision_recall(&m, &|id| truth[id as usize]);
    println!("{m}\nlegs {lp}/{lr} paths {pp}/{pr}");
    assert_eq!((lp, lr), (1.0, 1.0));
    assert_eq!(pp, 1.0, "a wrong path join");
    assert!(pr < 1.0, "cannot be told apart, so not joined");
    assert!(
        m.paths.iter().any(|p| !p.ambiguous.is_empty()),
        "ambiguity is recorded"
    );
    assert!(m.stats.ambiguous_hops > 0);
}

/// Two clients send identical bytes through one forking forwarder at the same moment (the
/// lab's "identical payloads" scenario), and the true hop of client B is no candidate: its
/// downstream leg's first byte is stamped 40 us before B's own first byte reached the
/// forwarder (beyond the causality slack). What is left is a forced pairing: A can go to X
/// or Y, B only to X, so the only matching with two hops is A -> Y, B -> X, both wrong. The
/// scores cannot tell A's two candidates apart, so neither hop may be joined; both are
/// flagged ambiguous.
fn forced_pairing(b_to_y_causal: bool) -> (Model, Vec<(u64, usize)>) {
    let mut rng = Rng(77);
    let data = payload(42, 100);
    let leg = |rng: &mut Rng, client: &str, server: &str, syn: Nanos, c2s: Nanos, s2c: Nanos| {
        let mut c = Conn::tcp(rng, client, server, syn, data.clone(), data.clone());
        c.c2s_data_at = c2s;
        c.s2c_data_at = s2c;
        c
    };
    let t0 = 10_000_000_000;
    // Upstream legs (client -> forwarder): s2c is the forwarder writing the reply back.
    let a = leg(
        &mut rng,
        "10.77.1.1:40001",
        "10.77.1.2:9000",
        t0,
        t0 + MS,
        t0 + 5 * MS,
    );
    let b = leg(
        &mut rng,
        "10.77.1.1:40002",
        "10.77.1.2:9000",
        t0 + 20 * US,
        t0 + MS + 50 * US,
        t0 + 5 * MS + 500 * US,
    );
    // Downstream legs (forwarder -> server): s2c is the server's reply reaching the forwarder.
    let x = leg(
        &mut rng,
        "10.77.2.1:50001",
        "10.77.2.2:8443",
        t0 + 300 * US,
        t0 + MS + 300 * US,
        t0 + 4 * MS,
    );
    let y_data = if b_to_y_causal {
        t0 + MS + 60 * US
    } else {
        t0 + MS + 10 * US
    };
    let y = leg(
        &mut rng,
        "10.77.2.1:50002",
        "10.77.2.2:8443",
        t0 + 350 * US,
        y_data,
        t0 + 4 * MS + 200 * US,
    );
    let obs: Vec<ObservationFeatures> = [(&a, 0), (&x, 3), (&b, 0), (&y, 3)]
        .iter()
        .map(|(c, point)| observe(c, &Sight::at(*point, c, 0)))
        .collect();
    let truth = vec![(0, 0), (0, 1), (1, 0), (1, 1)];
    (join(&obs, &[], |_| {}), truth)
}

#[test]
fn forced_pairing_of_identical_clients_is_not_joined() {
    let (m, truth) = forced_pairing(false);
    let (lp, lr, pp, pr) = precision_recall(&m, &|id| truth[id as usize]);
    println!("{m}\nlegs {lp}/{lr} paths {pp}/{pr}");
    assert_eq!((lp, lr), (1.0, 1.0));
    assert_eq!(pp, 1.0, "a wrong path join:\n{m}");
    assert_eq!(m.paths.len(), 4, "no hop is clear:\n{m}");
    assert!(m.stats.ambiguous_hops >= 2, "{:?}", m.stats);
    for p in &m.paths {
        assert!(!p.ambiguous.is_empty(), "path {} not flagged:\n{m}", p.id);
    }
    // Both pairings fit (one through a near miss): flagged undecidable, with the count.
    assert_eq!(m.stats.undecidable_hops, m.stats.ambiguous_hops, "{:?}", m.stats);
    assert!(m.paths.iter().flat_map(|p| &p.ambiguous).all(|a| a.fitting_pairings == Some(2)), "{m}");
    assert!(m.to_string().contains("undecidable: 2 pairings fit the packets"), "{m}");
}

#[test]
fn forced_pairing_control_with_every_true_hop_a_candidate() {
    // The same legs with B -> Y causal: all four pairings are candidates and score alike;
    // still nothing wrong is joined.
    let (m, truth) = forced_pairing(true);
    let (_, _, pp, _) = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(pp, 1.0, "a wrong path join:\n{m}");
    assert!(
        m.paths
            .iter()
            .all(|p| p.legs.len() == 2 || !p.ambiguous.is_empty()),
        "{m}"
    );
}

/// One leg of [`two_clients`]: client, server, and µs after the first SYN of its SYN, of
/// the first byte each way, and of each side's FIN.
type LegAt = (&'static str, &'static str, Nanos, Nanos, Nanos, [Nanos; 2]);

/// Two clients' legs through one forwarder, `[A, X, B, Y]` (X carries A, Y carries B), all
/// with the same 100 bytes each way; A and B seen at point 0, X and Y at point 3. Without
/// `fins`, every side ends right after its data. Returns the observations and their truth
/// `(path, leg)` by observation id.
fn two_clients(seed: u64, legs: [LegAt; 4], fins: bool) -> (Vec<ObservationFeatures>, [(u64, usize); 4]) {
    let mut rng = Rng(seed);
    let data = payload(43, 100);
    let t0 = 10_000_000_000;
    let obs = legs
        .iter()
        .enumerate()
        .map(|(i, &(client, server, syn, c2s, s2c, fin))| {
            let mut c = Conn::tcp(&mut rng, client, server, t0 + syn * US, data.clone(), data.clone());
            c.c2s_data_at = t0 + c2s * US;
            c.s2c_data_at = t0 + s2c * US;
            c.fin_at = if fins { fin.map(|f| Some(t0 + f * US)) } else { [None, None] };
            observe(&c, &Sight::at(if i % 2 == 0 { 0 } else { 3 }, &c, 0))
        })
        .collect();
    (obs, [(0, 0), (0, 1), (1, 0), (1, 1)])
}

/// [`two_clients`] with `legs` (their ends included), joined: both hops right, both by
/// elimination. Returns the model and the truth.
fn joined_by_elimination(seed: u64, legs: [LegAt; 4]) -> (Model, [(u64, usize); 4]) {
    let (obs, truth) = two_clients(seed, legs, true);
    let m = join(&obs, &[], |_| {});
    let r = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(r, (1.0, 1.0, 1.0, 1.0), "{m}");
    assert_eq!(m.stats.path_eliminated, 2, "{m}");
    (m, truth)
}

/// The lab's "identical payloads" case as it often comes out: two clients send the same
/// bytes through one forking forwarder at the same moment, every pairing is causal for the
/// bytes and scores alike, and the forwarder's children connect in the other order. What
/// tells them apart is when each leg ends: the forwarder closes a downstream leg after it
/// reads the client's FIN (or the server's), so B -> X would have closed X before anything
/// ended it. B can only go to Y, so A goes to X: joined by elimination.
#[test]
fn identical_clients_told_apart_by_close_order() {
    let legs: [LegAt; 4] = [
        // Upstream legs: the client half-closes after its reply; the forwarder passes the
        // server's FIN back. Downstream legs: the forwarder passes the client's FIN on; the
        // server then closes.
        ("10.77.1.1:40001", "10.77.1.2:9000", 0, 1000, 3500, [5000, 5400]),
        ("10.77.2.1:50001", "10.77.2.2:8443", 300, 1300, 3000, [5300, 5350]),
        ("10.77.1.1:40002", "10.77.1.2:9000", 20, 1050, 3600, [9000, 9400]),
        ("10.77.2.1:50002", "10.77.2.2:8443", 350, 1350, 3200, [9300, 9350]),
    ];
    let (m, truth) = joined_by_elimination(78, legs);
    for p in &m.paths {
        assert!(p.via[0].evidence.iter().any(|e| matches!(e.evidence, Evidence::Elimination { legs: 4 })), "{m}");
    }
    // Without the close order (every leg ends right after its data) nothing separates
    // the two pairings: nothing is joined.
    let (plain, _) = two_clients(78, legs, false);
    let m = join(&plain, &[], |_| {});
    let (_, _, pp, pr) = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!((pp, pr), (1.0, 0.0), "{m}");
    assert_eq!(m.stats.path_eliminated, 0, "{m}");
    assert_eq!(m.stats.undecidable_hops, m.stats.ambiguous_hops, "{:?}", m.stats);
    assert!(m.stats.undecidable_hops > 0, "{:?}", m.stats);
}

/// Taken from a lab run (times in µs after A's SYN, as captured at the forwarder): two
/// clients half-close after sending the same request at about the same moment; the forking
/// forwarder's children connect 7-9 ms later, in the other order. Every pairing is causal
/// for the bytes, and every close of the wrong one has an end before it: B's close back to
/// the client (12.58 ms) comes after B's own FIN (7.84 ms), though before X's server FIN
/// (14.09 ms). But this forwarder passes ends on: had it closed B because of B's FIN, it
/// would have closed X with it, and it closed X half a millisecond later. So B -> X is
/// impossible, and both hops are joined by elimination.
#[test]
fn a_close_neither_passed_on_nor_both_at_once_rules_a_pairing_out() {
    let legs: [LegAt; 4] = [
        ("10.77.1.1:52332", "10.77.1.2:9000", 0, 695, 13_195, [776, 14_173]),
        ("10.77.2.1:45246", "10.77.2.2:8443", 8_967, 11_251, 11_377, [13_109, 14_088]),
        ("10.77.1.1:52356", "10.77.1.2:9000", 5_343, 7_814, 12_221, [7_840, 12_576]),
        ("10.77.2.1:45236", "10.77.2.2:8443", 6_949, 11_263, 11_473, [12_024, 12_089]),
    ];
    joined_by_elimination(52, legs);
    // A forwarder that closes both legs at once on the client's FIN (B's close back to the
    // client and X's towards the server within 100 µs) could have closed B on B's own FIN
    // while X's server had not ended: then nothing rules B -> X out, and nothing is joined
    // wrongly.
    let mut both = legs;
    both[2].5[1] = 13_150;
    let (obs, truth) = two_clients(52, both, true);
    let m = join(&obs, &[], |_| {});
    let (_, _, pp, _) = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(pp, 1.0, "a wrong path join:\n{m}");
    assert_eq!(m.stats.path_eliminated, 0, "{m}");
}

/// Taken from a lab run that went wrong: two clients, identical 100-byte echoes, one
/// forking forwarder whose children were slow to connect and to pass data on. Times are
/// those of the capture (µs after A's SYN). Besides the true hops A -> X and B -> Y, the
/// timeline also fits X -> B and A -> Y: X's request reaches the forwarder's port 52 µs
/// before B's, and B's reply comes back before X's. X -> B would have the server's
/// service (8443) forward to the forwarder's (9000) while A -> X has 9000 forward to 8443:
/// a forwarding loop. The chain A -> X -> B -> Y that the matching preferred was cut at its
/// weakest hops, which left exactly the wrong one. Hops are counted per pair of services,
/// and the direction with fewer is dropped.
#[test]
fn a_hop_against_the_forwarding_direction_is_dropped() {
    let legs: [LegAt; 4] = [
        ("10.77.1.1:57952", "10.77.1.2:9000", 0, 376, 21_846, [23_934, 24_558]),
        ("10.77.2.1:37640", "10.77.2.2:8443", 2_353, 17_143, 19_202, [24_433, 24_463]),
        ("10.77.1.1:57964", "10.77.1.2:9000", 4_345, 17_195, 17_602, [17_725, 19_939]),
        ("10.77.2.1:37660", "10.77.2.2:8443", 7_144, 17_367, 17_549, [19_662, 19_721]),
    ];
    let (obs, truth) = two_clients(91, legs, true);
    let m = join(&obs, &[], |_| {});
    let r = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(r, (1.0, 1.0, 1.0, 1.0), "{m}");
    assert_eq!(m.stats.path_reversed, 1, "{m}");
    assert_eq!(m.stats.path_loops_cut, 0, "{m}");
}

#[test]
fn identical_clients_apart_in_time_are_told_apart() {
    let (m, truth) = twins(50 * MS, false);
    let r = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(r, (1.0, 1.0, 1.0, 1.0), "{m}");
    assert_eq!(m.paths.len(), 2);
}

#[test]
fn identical_simultaneous_clients_with_owners() {
    let (m, truth) = twins(20 * US, true);
    let r = precision_recall(&m, &|id| truth[id as usize]);
    assert_eq!(r, (1.0, 1.0, 1.0, 1.0), "{m}");
    let via: Vec<String> = m.paths[0]
        .via
        .iter()
        .map(|v| v.process.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(via, ["socat[100]", "socat[200]"]);
    assert_eq!(
        m.paths[0].legs[2]
            .process
            .as_ref()
            .unwrap()
            .client
            .as_ref()
            .unwrap()
            .pid,
        200
    );
    assert!(m.paths.iter().all(|p| p.ambiguous.is_empty()), "{m}");
}

#[test]
fn udp_through_dnat_is_one_leg() {
    let mut rng = Rng(13);
    let c = Conn::udp(
        &mut rng,
        "192.168.65.1:40030",
        "10.96.0.10:53",
        3_000_000_000,
        payload(5, 300),
        payload(5, 300),
        100,
    );
    let before = Sight::at(0, &c, 0);
    let after = Sight::at(1, &c, 5 * US).tuple("192.168.65.1:40030", "172.17.0.5:5353");
    let m = join(&[observe(&c, &before), observe(&c, &after)], &[], |_| {});
    assert_eq!(shape(&m), vec![vec![vec![0, 1]]], "{m}");
    let l = &m.paths[0].legs[0];
    assert_eq!(m.paths[0].proto, "udp");
    assert_eq!(l.join.kind, JoinKind::Nat);
    assert!(has(&l.join.evidence(), |e| matches!(
        e,
        Evidence::IpId { .. }
    )));
    assert!(has(&l.join.evidence(), |e| matches!(
        e,
        Evidence::Datagrams { .. }
    )));
    assert_eq!(l.hops[0].latency.c2s_us, Some(5.0));
}

#[test]
fn udp_forwarder_is_a_path_and_ipv6() {
    let mut rng = Rng(14);
    let data = payload(6, 400);
    let up = Conn::udp(
        &mut rng,
        "[fd00:65::1]:40050",
        "[fd00:65::2]:41000",
        3_000_000_000,
        data.clone(),
        data.clone(),
        100,
    );
    let mut down = Conn::udp(
        &mut rng,
        "[fd00:99::1]:51000",
        "[fd00:99::2]:53",
        3_000_000_000 + 80 * US,
        data.clone(),
        data,
        100,
    );
    down.s2c_data_at = up.s2c_data_at - 100 * US;
    let m = join(
        &[
            observe(&up, &Sight::at(0, &up, 0)),
            observe(&down, &Sight::at(1, &down, 0)),
        ],
        &[],
        |_| {},
    );
    assert_eq!(shape(&m), vec![vec![vec![0], vec![1]]], "{m}");
    let json = m.paths[0].to_json();
    assert!(json.contains(r#""src":"[fd00:65::1]:40050""#), "{json}");
}

#[test]
fn sequence_shifting_box() {
    let mut rng = Rng(15);
    let c = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000,
        payload(7, 2000),
        payload(7, 700),
    );
    let mut behind = Sight::at(1, &c, 10 * US).tuple("10.0.0.1:40000", "10.0.9.9:8080");
    behind.shift = [0x1234_5678, 0];
    let m = join(
        &[observe(&c, &Sight::at(0, &c, 0)), observe(&c, &behind)],
        &[],
        |_| {},
    );
    assert_eq!(shape(&m), vec![vec![vec![0, 1]]], "{m}");
    assert!(has(&m.paths[0].legs[0].join.evidence(), |e| matches!(
        e,
        Evidence::SeqShift {
            shift: 0x1234_5678,
            ..
        }
    )));
}

#[test]
fn reused_tuple_is_two_legs() {
    let mut rng = Rng(16);
    let a = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000,
        payload(1, 100),
        payload(1, 100),
    );
    let b = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000 + 50 * MS,
        payload(2, 100),
        payload(2, 100),
    );
    let obs = vec![
        observe(&a, &Sight::at(0, &a, 0)),
        observe(&a, &Sight::at(1, &a, 2 * US)),
        observe(&b, &Sight::at(0, &b, 0)),
        observe(&b, &Sight::at(1, &b, 2 * US)),
    ];
    let m = join(&obs, &[], |_| {});
    assert_eq!(shape(&m), vec![vec![vec![0, 1]], vec![vec![2, 3]]], "{m}");
}

#[test]
fn midstream_pickups() {
    let mut rng = Rng(17);
    let c = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000,
        payload(1, 20_000),
        payload(1, 20_000),
    );
    let mut a = Sight::at(0, &c, 0);
    a.starts_at = c.c2s_data_at + 35 * US;
    let mut b = Sight::at(1, &c, 3 * US);
    b.starts_at = c.c2s_data_at + 35 * US;
    let mut nat = Sight::at(2, &c, 6 * US).tuple("10.9.0.1:1234", "10.0.0.2:80");
    nat.starts_at = c.c2s_data_at + 75 * US;
    let m = join(
        &[observe(&c, &a), observe(&c, &b), observe(&c, &nat)],
        &[],
        |_| {},
    );
    assert_eq!(shape(&m), vec![vec![vec![0, 1, 2]]], "{m}");
}

#[test]
fn midstream_pickups_named_the_other_way_round() {
    let mut rng = Rng(21);
    let c = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000,
        payload(1, 20_000),
        payload(1, 20_000),
    );
    let mut a = Sight::at(0, &c, 0);
    a.starts_at = c.c2s_data_at + 35 * US;
    // This point starts while the server sends: the flow table calls the server the client.
    let mut b = Sight::at(1, &c, 3 * US);
    b.starts_at = c.s2c_data_at + 25 * US;
    b.first_sender_is_client = false;
    let (fa, fb) = (observe(&c, &a), observe(&c, &b));
    assert_eq!(fb.client, addr("10.0.0.2:80"));
    let m = join(&[fa, fb], &[], |_| {});
    assert_eq!(shape(&m), vec![vec![vec![0, 1]]], "{m}");
    let l = &m.paths[0].legs[0];
    assert_eq!(l.join.kind, JoinKind::SameTuple, "{m}");
    assert!(
        l.observations
            .iter()
            .all(|o| o.src == addr("10.0.0.1:40000")),
        "{m}"
    );
}

#[test]
fn unrelated_connections_stay_apart() {
    let mut rng = Rng(18);
    let a = Conn::tcp(
        &mut rng,
        "10.0.0.1:40000",
        "10.0.0.2:80",
        4_000_000_000,
        payload(1, 100),
        payload(1, 100),
    );
    let b = Conn::tcp(
        &mut rng,
        "10.0.0.3:40000",
        "10.0.0.4:80",
        4_000_000_000,
        payload(2, 100),
        payload(2, 100),
    );
    let m = join(
        &[
            observe(&a, &Sight::at(0, &a, 0)),
            observe(&b, &Sight::at(1, &b, 0)),
        ],
        &[],
        |_| {},
    );
    assert_eq!(m.paths.len(), 2);
}

#[test]
fn json_shape_of_the_seed_path() {
    let mut rng = Rng(19);
    let sp = seed_path(&mut rng, 0, 1_795_928_336_000_000_000, 64);
    let m = join(&sp.observations(), &[ct(&sp.conntrack)], |_| {});
    let mut out = Vec::new();
    m.write_json_lines(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["id"], 1);
    assert_eq!(v["proto"], "tcp");
    let legs = v["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 3);
    for l in legs {
        for o in l["observations"].as_array().unwrap() {
            for k in ["point", "src", "dst", "first", "last"] {
                assert!(!o[k].is_null(), "{k} in {o}");
            }
            assert_eq!(o["packets"].as_array().unwrap().len(), 2);
            assert_eq!(o["bytes"].as_array().unwrap().len(), 2);
        }
        assert!(["nat", "same-tuple", "none"].contains(&l["join"]["kind"].as_str().unwrap()));
        assert!(l["join"]["evidence"].is_array());
        assert!(l["join"]["links"].is_array());
        assert!(l.get("process").is_some());
    }
    assert_eq!(
        legs[0]["observations"][0]["bytes"],
        serde_json::json!([64, 64])
    );
    assert_eq!(v["via"].as_array().unwrap().len(), 2);
    assert_eq!(legs[2]["observations"][0]["source"], "conntrack");
}

#[test]
fn text_tree_of_the_seed_path() {
    let mut rng = Rng(20);
    let sp = seed_path(&mut rng, 0, 1_795_928_336_000_000_000, 64);
    let obs = sp.observations();
    let m = join(&obs, &[ct(&sp.conntrack)], |j| {
        j.add_socket_owner(
            None,
            Proto::Tcp,
            sp.legs[2].client,
            sp.legs[2].server,
            Owner {
                pid: 812,
                comm: "socat".into(),
            },
        );
    });
    // The tree prints local time: the snapshot holds UTC whatever this machine's zone.
    let at = |tz: &dyn Fn(i64) -> Option<String>| tz(1_795_928_336).expect("a valid time");
    let local = at(&|s| {
        use chrono::TimeZone;
        chrono::Local.timestamp_opt(s, 0).earliest().map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    });
    let utc = at(&|s| chrono::DateTime::from_timestamp(s, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()));
    insta::assert_snapshot!(m.to_string().replace(&local, &utc));
}

#[test]
fn empty_and_degenerate_input() {
    let m = Joiner::new(JoinConfig::default()).join();
    assert!(m.paths.is_empty());
    let f = ObservationFeatures::new(0, Proto::Tcp, addr("1.1.1.1:1"), addr("2.2.2.2:2"));
    let mut j = Joiner::new(JoinConfig::default());
    j.add_observation(ObservationId(1), &f);
    assert!(
        j.join().paths.is_empty(),
        "an observation without packets is skipped"
    );
}

#[test]
fn json_line_is_compact() {
    let mut rng = Rng(19);
    let sp = seed_path(&mut rng, 0, 1_795_928_336_000_000_000, 1500);
    let m = join(&sp.observations(), &[ct(&sp.conntrack)], |_| {});
    let line = m.paths[0].to_json();
    // Three legs, six observations (one from conntrack), two forwarders.
    assert!(line.len() < 3000, "{} bytes: {line}", line.len());
    assert!(!line.contains('\n'));
}
