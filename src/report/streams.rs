//! `--streams DIR`: every TCP stream direction to its own file, written as it is reassembled,
//! plus `DIR/index.json`.
//!
//! **Names** follow tcpflow: `SRCIP.SRCPORT-DSTIP.DSTPORT` for the bytes SRC sent, IPv4
//! octets zero-padded to 3 digits and ports to 5 (`010.000.000.001.40000-...`), IPv6 in its
//! usual text form (`fd00:65::1.40020-...`). When that name is taken (the same tuple at
//! another capture point, or a reused tuple) the flow gets a disambiguator, chosen once for
//! both directions: `@POINT` when the flow's point is not the first point this run wrote
//! streams for (the label with `/` and other unsafe characters as `_`), then `c1`, `c2`, ...
//! (tcpflow's connection counter). Files are created exclusively, never overwritten, so a
//! non-empty DIR only shifts names (use an empty one for predictable names); `index.json`
//! always says which file is which.
//!
//! **Files** hold delivered bytes only: a gap is never filled (so after a gap, file offset =
//! stream offset minus the gap bytes before it). A direction without data has no file.
//! **Memory** is bounded: at most [`MAX_OPEN`] files are open at once (least recently written
//! closed first, reopened to append), each with a fixed buffer.
//!
//! **index.json**: one JSON object per line, written when the flow ends:
//! `{"id":N,"point":LABEL,"src":"IP:PORT","dst":"IP:PORT","c2s":{"file":NAME|null,
//! "bytes":N,"gaps":[[offset,len],...],"gaps_unlisted":N},"s2c":{...}}` (`src` is the client,
//! `gaps` in stream offsets).

use crate::flow::{Endpoint, FlowInfo, FlowRecord};
use crate::reassembly::Direction;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Most stream files open at once.
pub const MAX_OPEN: usize = 64;
const FILE_BUFFER: usize = 64 << 10;

/// An error writing streams, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("--streams: {}: {}", path.display(), crate::capture::os_message(source))]
pub struct StreamsError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// tcpflow's name for the bytes `src` sent to `dst`.
pub fn tcpflow_name(src: &Endpoint, dst: &Endpoint) -> String {
    fn part(e: &Endpoint) -> String {
        match e.addr {
            IpAddr::V4(a) => {
                let o = a.octets();
                format!("{:03}.{:03}.{:03}.{:03}.{:05}", o[0], o[1], o[2], o[3], e.port)
            }
            IpAddr::V6(a) => format!("{a}.{:05}", e.port),
        }
    }
    format!("{}-{}", part(src), part(dst))
}

fn sanitize(label: &str) -> String {
    label.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

/// Files of one live flow.
#[derive(Debug, Default)]
struct FlowFiles {
    /// Disambiguator chosen when the first file was created (`None` until then).
    suffix: Option<String>,
    names: [Option<String>; 2],
    bytes: [u64; 2],
}

#[derive(Debug)]
struct OpenFile {
    key: (u64, usize),
    writer: BufWriter<File>,
    last_use: u64,
}

/// The `--streams` writer.
#[derive(Debug)]
pub struct StreamFiles {
    dir: PathBuf,
    index: BufWriter<File>,
    flows: HashMap<u64, FlowFiles>,
    open: Vec<OpenFile>,
    uses: u64,
    first_point: Option<u32>,
    /// Files written (created).
    pub files: u64,
    /// Times a file was closed to make room and reopened later.
    pub reopens: u64,
}

#[derive(Serialize)]
struct DirJson<'a> {
    file: Option<&'a str>,
    bytes: u64,
    gaps: &'a [(u64, u64)],
    gaps_unlisted: u32,
}

#[derive(Serialize)]
struct IndexJson<'a> {
    id: u64,
    point: &'a str,
    src: Endpoint,
    dst: Endpoint,
    c2s: DirJson<'a>,
    s2c: DirJson<'a>,
}

impl StreamFiles {
    /// Creates `dir` (and parents) if needed, and `dir/index.json`.
    pub fn create(dir: &Path) -> Result<StreamFiles, StreamsError> {
        std::fs::create_dir_all(dir).map_err(|source| StreamsError { path: dir.to_path_buf(), source })?;
        let path = dir.join("index.json");
        let index = File::create(&path).map_err(|source| StreamsError { path: path.clone(), source })?;
        Ok(StreamFiles {
            dir: dir.to_path_buf(),
            index: BufWriter::new(index),
            flows: HashMap::new(),
            open: Vec::with_capacity(MAX_OPEN),
            uses: 0,
            first_point: None,
            files: 0,
            reopens: 0,
        })
    }

    /// Delivered bytes of one direction.
    pub fn data(&mut self, info: &FlowInfo, dir: Direction, bytes: &[u8]) -> Result<(), StreamsError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let d = if dir == Direction::ClientToServer { 0 } else { 1 };
        let i = self.writer(info, d)?;
        let f = &mut self.open[i];
        f.writer
            .write_all(bytes)
            .map_err(|source| StreamsError { path: self.dir.join(file_name(&self.flows, info.id, d)), source })?;
        if let Some(files) = self.flows.get_mut(&info.id) {
            files.bytes[d] += bytes.len() as u64;
        }
        Ok(())
    }

    /// The index in `open` of the writer for `(flow, direction)`, opening or creating it.
    fn writer(&mut self, info: &FlowInfo, d: usize) -> Result<usize, StreamsError> {
        self.uses += 1;
        let key = (info.id, d);
        if let Some(i) = self.open.iter().position(|f| f.key == key) {
            self.open[i].last_use = self.uses;
            return Ok(i);
        }
        if self.open.len() >= MAX_OPEN {
            let oldest = self.open.iter().enumerate().min_by_key(|(_, f)| f.last_use).map_or(0, |(i, _)| i);
            let mut f = self.open.swap_remove(oldest);
            let name = file_name(&self.flows, f.key.0, f.key.1);
            f.writer.flush().map_err(|source| StreamsError { path: self.dir.join(name), source })?;
        }
        let first_point = *self.first_point.get_or_insert(info.point_index);
        let files = self.flows.entry(info.id).or_default();
        let file = match &files.names[d] {
            Some(name) => {
                self.reopens += 1;
                let path = self.dir.join(name);
                OpenOptions::new().append(true).open(&path).map_err(|source| StreamsError { path, source })?
            }
            None => {
                let (name, file) = create_named(&self.dir, info, d, files, first_point)?;
                files.names[d] = Some(name);
                self.files += 1;
                file
            }
        };
        self.open.push(OpenFile { key, writer: BufWriter::with_capacity(FILE_BUFFER, file), last_use: self.uses });
        Ok(self.open.len() - 1)
    }

    /// The flow ended: close its files, write its index line.
    pub fn flow_ended(&mut self, record: &FlowRecord) -> Result<(), StreamsError> {
        let id = record.info.id;
        let mut result = Ok(());
        while let Some(i) = self.open.iter().position(|f| f.key.0 == id) {
            let mut f = self.open.swap_remove(i);
            if let Err(source) = f.writer.flush() {
                result = Err(StreamsError { path: self.dir.join(file_name(&self.flows, id, f.key.1)), source });
            }
        }
        let files = self.flows.remove(&id).unwrap_or_default();
        let Some(tcp) = &record.tcp else { return result };
        let dir = |d: usize| DirJson {
            file: files.names[d].as_deref(),
            bytes: files.bytes[d],
            gaps: &tcp.gaps[d].listed,
            gaps_unlisted: tcp.gaps[d].unlisted,
        };
        let line = IndexJson {
            id,
            point: &record.info.point,
            src: record.info.client,
            dst: record.info.server,
            c2s: dir(0),
            s2c: dir(1),
        };
        let index_path = || self.dir.join("index.json");
        serde_json::to_writer(&mut self.index, &line)
            .map_err(io::Error::other)
            .and_then(|_| self.index.write_all(b"\n"))
            .map_err(|source| StreamsError { path: index_path(), source })?;
        result
    }

    /// Flushes everything still open and the index.
    pub fn finish(&mut self) -> Result<(), StreamsError> {
        for mut f in std::mem::take(&mut self.open) {
            let name = file_name(&self.flows, f.key.0, f.key.1);
            f.writer.flush().map_err(|source| StreamsError { path: self.dir.join(name), source })?;
        }
        self.index.flush().map_err(|source| StreamsError { path: self.dir.join("index.json"), source })
    }
}

fn file_name(flows: &HashMap<u64, FlowFiles>, id: u64, d: usize) -> String {
    flows.get(&id).and_then(|f| f.names[d].clone()).unwrap_or_default()
}

/// Creates the file of direction `d`, choosing the flow's disambiguator on its first file.
fn create_named(
    dir: &Path,
    info: &FlowInfo,
    d: usize,
    files: &mut FlowFiles,
    first_point: u32,
) -> Result<(String, File), StreamsError> {
    let c2s = tcpflow_name(&info.client, &info.server);
    let s2c = tcpflow_name(&info.server, &info.client);
    let base = if d == 0 { &c2s } else { &s2c };
    let at = if info.point_index == first_point { String::new() } else { format!("@{}", sanitize(&info.point)) };
    // The flow's suffix if chosen, else "" (or @POINT), then tcpflow's counter c1, c2, ...
    let suffixes = files
        .suffix
        .clone()
        .into_iter()
        .chain(std::iter::once(at.clone()))
        .chain((1..).map(|n| format!("{at}c{n}")))
        .take(100_000);
    for suffix in suffixes {
        if files.suffix.is_none() {
            // A fresh flow wants both of its names free.
            let other = if d == 0 { &s2c } else { &c2s };
            if dir.join(format!("{other}{suffix}")).exists() {
                continue;
            }
        }
        let name = format!("{base}{suffix}");
        let path = dir.join(&name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => {
                files.suffix = Some(suffix);
                return Ok((name, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(StreamsError { path, source }),
        }
    }
    Err(StreamsError {
        path: dir.join(base),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free file name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_tcpflow() {
        let a = Endpoint::new("127.0.0.1".parse().unwrap(), 40001);
        let b = Endpoint::new("127.0.0.1".parse().unwrap(), 49673);
        assert_eq!(tcpflow_name(&a, &b), "127.000.000.001.40001-127.000.000.001.49673");
        let c = Endpoint::new("fd00:65::1".parse().unwrap(), 80);
        let d = Endpoint::new("fd00:65::2".parse().unwrap(), 49700);
        assert_eq!(tcpflow_name(&c, &d), "fd00:65::1.00080-fd00:65::2.49700");
        assert_eq!(sanitize("ns_vm/br0"), "ns_vm_br0");
    }
}
