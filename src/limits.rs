//! Memory limits: one number, `--max-memory` (default [`Limits::DEFAULT_MAX_MEMORY`],
//! 512 MiB), split into every cap that holds traffic-driven state, so that a run's resident
//! memory stays under it whatever the traffic (a SYN flood from spoofed addresses, a million
//! streams that never fill their first hole, a stalled output).
//!
//! | share | cap                                                    | when it is hit (counted)                  |
//! |-------|--------------------------------------------------------|-------------------------------------------|
//! | 30 %  | flow table: `max_flows = share / BYTES_PER_FLOW`       | least active flow evicted (`flows_evicted`) |
//! | 30 %  | reassembly budget (all streams' out-of-order data)     | stream skips ahead, gap (`stream_budget_skips`) |
//! |       | per-stream buffer: `min(1 MiB, budget / 32)`           | stream skips ahead, gap (`stream_cap_skips`) |
//! | 8 %   | side tables (RTT segments, gap lists)                  | not remembered (`aux_refusals`, `rtt_untracked`, `gaps_unlisted`) |
//! | 8 %   | finished records waiting for the `--flows` output (joined: batches of two fifths, one joined on a thread while the next fills, counted until written) | printed early (`records_flushed_early`)   |
//! | 8 %   | live frames between capture threads and the pipeline (and, within it, up to half for recycled frame buffers) | capture pauses; the kernel drops and counts |
//! | 4 %   | printer's TCP relative-sequence table                  | table cleared (as tcpdump's would restart) |
//! | 4 %   | live evidence of joined `--flows`: conntrack entries (1/3), socket owners (2/3) | oldest evicted (`conntrack_evicted`, `owners_evicted`) |
//! | 8 %   | not divided: program, libraries, I/O buffers, fixed caps, allocator slack |                  |
//!
//! Each finer option (`--max-flows`, `--reassembly-memory`, `--stream-buffer`) overrides its
//! share; the others keep theirs. Memory that is not driven by traffic volume (read buffers,
//! at most 64 open stream files, the name cache's fixed cap, each input's one-frame lookahead)
//! is the undivided remainder.
//!
//! Why 512 MiB by default: flowtrail runs next to the workloads it debugs, on Docker Desktop
//! and minikube VMs of 2-4 GiB; 512 MiB is the sum of Suricata's default memcaps (flow
//! 128 MiB, stream 64 MiB, reassembly 256 MiB) in round numbers, still holds about 100 000
//! concurrent TCP observations plus 150 MiB of out-of-order data, and ordinary traffic
//! never comes near it (the caps only bind under floods or very long stalls).

use crate::flow::FlowTable;

/// Every traffic-driven cap, derived from one memory limit (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The total this was derived from (`--max-memory`).
    pub max_memory: usize,
    /// Most live flows.
    pub max_flows: usize,
    /// The shared reassembly budget.
    pub reassembly_memory: usize,
    /// Out-of-order data of one stream direction.
    pub stream_buffer: usize,
    /// Side tables of the flow table.
    pub aux_memory: usize,
    /// Finished flow records waiting to be printed, in bytes.
    pub held_records: usize,
    /// Captured frames not yet taken by the pipeline (live capture), in bytes.
    pub live_frames: usize,
    /// Conversations in the printer's TCP relative-sequence table.
    pub print_seq_entries: usize,
    /// Live evidence of joined `--flows` (conntrack entries, socket owners), in bytes.
    pub evidence_memory: usize,
}

impl Limits {
    /// Default `--max-memory`.
    pub const DEFAULT_MAX_MEMORY: usize = 512 << 20;
    /// Smallest `--max-memory` accepted.
    pub const MIN_MAX_MEMORY: usize = 16 << 20;
    /// Largest per-stream buffer derived from the total.
    pub const MAX_STREAM_BUFFER: usize = 1 << 20;

    /// The caps for a total of `max_memory` bytes (at least [`Limits::MIN_MAX_MEMORY`] is
    /// used).
    pub fn new(max_memory: usize) -> Limits {
        Limits::for_flows(max_memory, false)
    }

    /// The caps for a total of `max_memory` bytes when every TCP and UDP flow also keeps the
    /// joiner's features (`--flows` without `--no-join`): fewer flows fit the same share.
    pub fn for_flows(max_memory: usize, join: bool) -> Limits {
        let per_flow = FlowTable::BYTES_PER_FLOW + if join { FlowTable::FEATURES_BYTES } else { 0 };
        let m = max_memory.max(Limits::MIN_MAX_MEMORY);
        let share = |percent: usize| m / 100 * percent;
        let reassembly_memory = share(30);
        Limits {
            max_memory: m,
            max_flows: (share(30) / per_flow).max(1),
            reassembly_memory,
            stream_buffer: (reassembly_memory / 32).min(Limits::MAX_STREAM_BUFFER),
            aux_memory: share(8),
            held_records: share(8),
            live_frames: share(8),
            print_seq_entries: (share(4) / crate::print::tcp::SeqTable::BYTES_PER_ENTRY)
                .clamp(1024, crate::print::tcp::SeqTable::MAX_ENTRIES),
            evidence_memory: share(4),
        }
    }

    /// The caps from the command line: `--max-memory` (or the default), then each finer
    /// option that was given replaces its share.
    pub fn from_args(args: &crate::cli::Args) -> Limits {
        let join = args.flows.is_some() && !args.no_join;
        let mut l = Limits::for_flows(args.max_memory.unwrap_or(Limits::DEFAULT_MAX_MEMORY), join);
        if let Some(n) = args.max_flows {
            l.max_flows = n.max(1);
        }
        if let Some(b) = args.reassembly_memory {
            l.reassembly_memory = b;
        }
        if let Some(b) = args.stream_buffer {
            l.stream_buffer = b;
        }
        l
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(Limits::DEFAULT_MAX_MEMORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_scale() {
        let d = Limits::default();
        assert_eq!(d.max_memory, 512 << 20);
        // The flow table's share is what its flows can cost.
        assert!(d.max_flows * FlowTable::BYTES_PER_FLOW <= (512 << 20) * 30 / 100);
        assert!(d.max_flows >= 50_000, "{d:?}");
        assert_eq!(d.stream_buffer, 1 << 20);
        let accounted = d.max_flows * FlowTable::BYTES_PER_FLOW
            + d.reassembly_memory
            + d.aux_memory
            + d.held_records
            + d.live_frames
            + d.print_seq_entries * crate::print::tcp::SeqTable::BYTES_PER_ENTRY
            + d.evidence_memory;
        // At least 7 % stays undivided (8 % by the table).
        assert!(accounted <= d.max_memory * 93 / 100, "{accounted} of {}", d.max_memory);
        let small = Limits::new(128 << 20);
        assert!(small.max_flows < d.max_flows / 3);
        assert!(small.stream_buffer <= small.reassembly_memory / 32);
        assert_eq!(Limits::new(1), Limits::new(Limits::MIN_MAX_MEMORY));
    }

    #[test]
    fn finer_options_override_their_share() {
        use clap::Parser;
        let a = crate::cli::Args::try_parse_from([
            "flowtrail",
            "--max-memory",
            "128M",
            "--max-flows",
            "7",
            "--stream-buffer",
            "4K",
        ])
        .unwrap();
        let l = Limits::from_args(&a);
        assert_eq!((l.max_memory, l.max_flows, l.stream_buffer), (128 << 20, 7, 4096));
        assert_eq!(l.reassembly_memory, Limits::new(128 << 20).reassembly_memory);
    }
}
