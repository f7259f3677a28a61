//! A cheap BGP receiver (and replayer) for the ingest and reflection
//! benchmarks (issue 4): N sessions from one process to a speaker under
//! test; each completes OPEN / KEEPALIVE (RFC 4271 §8), then only counts
//! the NLRI of the UPDATEs it reads, from the real bytes (RFC 4271 §4.3
//! framing, RFC 4760 MP_REACH_NLRI / MP_UNREACH_NLRI), without building
//! routes.
//!
//! ```text
//! bgp_sink --connect 10.77.0.1:179 --asn 64512 --local 10.77.0.11 [--local 10.77.0.12 ...]
//!          --expect 1000000 [--family inet-vpn] [--record FILE]
//! bgp_sink --connect 10.77.0.1:179 --asn 65010 --local 10.77.0.5 --replay FILE [--family inet-vpn]
//! ```
//!
//! One session per `--local` address (the speaker tells its peers apart by
//! source address). Prints JSON lines: `{"event":"up","session":i}` once
//! the OPEN is answered, `{"event":"done","session":i,"nlri":N,...}` when
//! a session has counted `--expect` announced NLRI, and
//! `{"event":"all","cpu_ms":..}` when every session is done. Keeps the
//! sessions up (KEEPALIVEs) until killed.
//!
//! `--record FILE` (one session) keeps the UPDATE messages that carried
//! the first `--expect` routes, byte for byte, and writes them to FILE.
//! `--replay FILE` plays such a recording to the speaker under test as
//! fast as TCP takes it: `{"event":"up"}` when the session is
//! Established (our OPEN answered and the peer's KEEPALIVE read), then
//! the recorded UPDATEs and an End-of-RIB (RFC 4724 §2), then
//! `{"event":"sent","bytes":N,"ms":T}`. The ingest benchmark records the
//! BIRD generator's feed once and replays it to every device under test,
//! so that the feed is no longer the slowest party.
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use filament_bgp::Family;
use filament_wire_bgp::{Capability, DecodeCtx, Message, Open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
enum SinkError {
    #[error("bad or missing argument {0}")]
    Arg(String),
    #[error("session {session}: {source}")]
    Io {
        session: usize,
        source: std::io::Error,
    },
    #[error("session {session}: {what}")]
    Proto { session: usize, what: &'static str },
}

/// Counts of one session.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    updates: u64,
    announced: u64,
    withdrawn: u64,
    end_of_rib: u64,
}

const HEADER: usize = 19;
const UPDATE: u8 = 2;
const OPEN: u8 = 1;
const NOTIFICATION: u8 = 3;
const KEEPALIVE: u8 = 4;
const MP_REACH: u8 = 14;
const MP_UNREACH: u8 = 15;

/// Number of NLRI in an RFC 4760 NLRI field of `afi`/`safi`; `None` if
/// the field does not parse.
fn count_nlri(afi: u16, safi: u8, mut b: &[u8]) -> Option<u64> {
    let mut n = 0;
    while let Some(&first) = b.first() {
        let len = if afi == 25 {
            // RFC 7432 §7: route type (1 octet), length (1 octet), value.
            2 + usize::from(*b.get(1)?)
        } else {
            // Length in bits, then the prefix (labels and RD included for
            // SAFI 128, RFC 4364 §4.3.4).
            let _ = safi;
            1 + usize::from(first).div_ceil(8)
        };
        b = b.get(len..)?;
        n += 1;
    }
    Some(n)
}

/// Count the routes of one UPDATE body (RFC 4271 §4.3).
fn count_update(body: &[u8], c: &mut Counts) -> Option<()> {
    c.updates += 1;
    let wlen = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let withdrawn = body.get(2..2 + wlen)?;
    c.withdrawn += count_nlri(1, 1, withdrawn)?;
    let rest = body.get(2 + wlen..)?;
    let alen = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let mut attrs = rest.get(2..2 + alen)?;
    let nlri = rest.get(2 + alen..)?;
    c.announced += count_nlri(1, 1, nlri)?;
    let only_unreach = nlri.is_empty() && withdrawn.is_empty();
    let mut n_attrs = 0;
    while !attrs.is_empty() {
        let flags = *attrs.first()?;
        let code = *attrs.get(1)?;
        let (len, off) = if flags & 0x10 != 0 {
            (
                usize::from(u16::from_be_bytes([*attrs.get(2)?, *attrs.get(3)?])),
                4,
            )
        } else {
            (usize::from(*attrs.get(2)?), 3)
        };
        let v = attrs.get(off..off + len)?;
        n_attrs += 1;
        match code {
            MP_REACH => {
                let afi = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
                let safi = *v.get(2)?;
                let nh = usize::from(*v.get(3)?);
                c.announced += count_nlri(afi, safi, v.get(4 + nh + 1..)?)?;
            }
            MP_UNREACH => {
                let afi = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
                let safi = *v.get(2)?;
                let w = count_nlri(afi, safi, v.get(3..)?)?;
                c.withdrawn += w;
                // RFC 4724 §2: only an empty MP_UNREACH_NLRI is End-of-RIB.
                if w == 0 && only_unreach && n_attrs == 1 && attrs.len() == off + len {
                    c.end_of_rib += 1;
                }
            }
            _ => {}
        }
        attrs = attrs.get(off + len..)?;
    }
    if body.len() == 4 {
        c.end_of_rib += 1;
    }
    Some(())
}

enum Report {
    Up(usize),
    Done(usize, Counts, Duration),
    Sent(usize, usize, Duration),
    Failed(SinkError),
}

/// What a session does once it is up.
#[derive(Clone)]
enum Role {
    /// Count the announced NLRI up to `expect`, keeping the UPDATEs that
    /// carried them in `record` if set.
    Count {
        expect: u64,
        record: Option<std::path::PathBuf>,
    },
    /// Send these recorded UPDATE messages, then an End-of-RIB.
    Replay(std::sync::Arc<Vec<u8>>),
}

/// Connect from `local` to the speaker and send our OPEN and KEEPALIVE.
async fn open_session(
    i: usize,
    local: IpAddr,
    dut: SocketAddr,
    asn: u32,
    family: Family,
) -> Result<TcpStream, SinkError> {
    let io = |source| SinkError::Io { session: i, source };
    let sock = TcpSocket::new_v4().map_err(io)?;
    sock.bind(SocketAddr::new(local, 0)).map_err(io)?;
    let mut s = sock.connect(dut).await.map_err(io)?;
    let (afi, safi) = family.afi_safi();
    let id = match local {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::new(10, 255, 0, i as u8),
    };
    let open = Open::new(
        asn,
        90,
        id,
        vec![
            Capability::Multiprotocol { afi, safi },
            Capability::RouteRefresh,
        ],
    );
    let mut hello = Vec::new();
    let _ = Message::Open(open).encode(&DecodeCtx::default(), &mut hello);
    let _ = Message::Keepalive.encode(&DecodeCtx::default(), &mut hello);
    s.write_all(&hello).await.map_err(io)?;
    Ok(s)
}

fn keepalive() -> Vec<u8> {
    let mut b = Vec::new();
    let _ = Message::Keepalive.encode(&DecodeCtx::default(), &mut b);
    b
}

/// Split whole BGP messages off the front of `buf`, calling `each` with
/// (type, whole message); returns the bytes consumed.
fn frames(
    i: usize,
    buf: &[u8],
    mut each: impl FnMut(u8, &[u8]) -> Result<(), SinkError>,
) -> Result<usize, SinkError> {
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let len = usize::from(u16::from_be_bytes([buf[at + 16], buf[at + 17]]));
        if len < HEADER {
            return Err(SinkError::Proto {
                session: i,
                what: "bad message length",
            });
        }
        if buf.len() - at < len {
            break;
        }
        each(buf[at + 18], &buf[at..at + len])?;
        at += len;
    }
    Ok(at)
}

async fn session(
    i: usize,
    local: IpAddr,
    dut: SocketAddr,
    asn: u32,
    family: Family,
    role: Role,
    tx: mpsc::UnboundedSender<Report>,
) -> Result<(), SinkError> {
    let io = |source| SinkError::Io { session: i, source };
    let s = open_session(i, local, dut, asn, family).await?;
    let (mut rd, mut wr) = s.into_split();
    let start = Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let mut chunk = vec![0u8; 128 * 1024];
    let mut c = Counts::default();
    let (mut open_seen, mut up, mut done) = (false, false, false);
    let mut kept: Option<Vec<u8>> = match &role {
        Role::Count {
            record: Some(_), ..
        } => Some(Vec::new()),
        _ => None,
    };
    // Keepalives from their own task, so that a replay's long write does
    // not starve them; the replay is written from the same task.
    let replay = match &role {
        Role::Replay(bytes) => Some(bytes.clone()),
        Role::Count { .. } => None,
    };
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let mut go_tx = Some(go_tx);
    let txw = tx.clone();
    tokio::spawn(async move {
        let ka = keepalive();
        if let Some(bytes) = replay {
            if go_rx.await.is_err() {
                return;
            }
            let t = Instant::now();
            let mut eor = Vec::new();
            let _ = Message::Update(filament_bgp::codec::end_of_rib(family))
                .encode(&DecodeCtx::default(), &mut eor);
            for part in bytes.chunks(1 << 20).chain([&eor[..]]) {
                if let Err(e) = wr.write_all(part).await {
                    let _ = txw.send(Report::Failed(SinkError::Io {
                        session: i,
                        source: e,
                    }));
                    return;
                }
            }
            let _ = txw.send(Report::Sent(i, bytes.len(), t.elapsed()));
        }
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            if wr.write_all(&ka).await.is_err() {
                return;
            }
        }
    });
    loop {
        let n = rd.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(SinkError::Proto {
                session: i,
                what: "connection closed",
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        let at = frames(i, &buf, |kind, msg| {
            match kind {
                UPDATE if !done => {
                    let before = c.announced;
                    if count_update(&msg[HEADER..], &mut c).is_none() {
                        return Err(SinkError::Proto {
                            session: i,
                            what: "malformed UPDATE",
                        });
                    }
                    if let Some(k) = kept.as_mut().filter(|_| c.announced > before) {
                        k.extend_from_slice(msg);
                    }
                }
                OPEN => open_seen = true,
                KEEPALIVE if open_seen && !up => {
                    // Established (RFC 4271 §8.2.2, OpenConfirm + KEEPALIVE).
                    up = true;
                    let _ = tx.send(Report::Up(i));
                    if let Some(go) = go_tx.take() {
                        let _ = go.send(());
                    }
                }
                NOTIFICATION => {
                    return Err(SinkError::Proto {
                        session: i,
                        what: "NOTIFICATION received",
                    })
                }
                _ => {}
            }
            Ok(())
        })?;
        buf.drain(..at);
        if let Role::Count { expect, record } = &role {
            if !done && c.announced >= *expect {
                done = true;
                if let (Some(path), Some(k)) = (record, kept.take()) {
                    std::fs::write(path, k).map_err(io)?;
                }
                let _ = tx.send(Report::Done(i, c, start.elapsed()));
            }
        }
    }
}

/// CPU time (user + system) of this process in ms (Linux, 100 Hz ticks).
fn cpu_ms() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    let (u, k): (u64, u64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((u + k) * 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bad = |s: &str| SinkError::Arg(s.to_string());
    let (mut dut, mut asn, mut expect, mut family) = (None, None, None, Family::InetVpn);
    let (mut record, mut replay) = (None, None);
    let mut locals: Vec<IpAddr> = Vec::new();
    for pair in args.chunks(2) {
        let [k, v] = pair else {
            return Err(bad(&pair[0]).into());
        };
        match k.as_str() {
            "--connect" => dut = Some(v.parse::<SocketAddr>().map_err(|_| bad(k))?),
            "--asn" => asn = Some(v.parse::<u32>().map_err(|_| bad(k))?),
            "--local" => locals.push(v.parse().map_err(|_| bad(k))?),
            "--expect" => expect = Some(v.parse::<u64>().map_err(|_| bad(k))?),
            "--family" => family = Family::from_name(v).ok_or_else(|| bad(v))?,
            "--record" => record = Some(std::path::PathBuf::from(v)),
            "--replay" => replay = Some(std::path::PathBuf::from(v)),
            _ => return Err(bad(k).into()),
        }
    }
    let dut = dut.ok_or_else(|| bad("--connect"))?;
    let asn = asn.ok_or_else(|| bad("--asn"))?;
    if (record.is_some() || replay.is_some()) && locals.len() != 1 {
        return Err(bad("--record/--replay take exactly one --local").into());
    }
    let role = match replay {
        Some(path) => Role::Replay(std::sync::Arc::new(std::fs::read(path)?)),
        None => Role::Count {
            expect: expect.ok_or_else(|| bad("--expect"))?,
            record,
        },
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (i, local) in locals.iter().enumerate() {
        let tx = tx.clone();
        let (local, role) = (*local, role.clone());
        tokio::spawn(async move {
            if let Err(e) = session(i, local, dut, asn, family, role, tx.clone()).await {
                let _ = tx.send(Report::Failed(e));
            }
        });
    }
    drop(tx);
    let mut done = 0;
    while let Some(r) = rx.recv().await {
        match r {
            Report::Up(i) => println!("{{\"event\":\"up\",\"session\":{i}}}"),
            Report::Done(i, c, t) => {
                done += 1;
                println!(
                    "{{\"event\":\"done\",\"session\":{i},\"nlri\":{},\"withdrawn\":{},\"updates\":{},\"end_of_rib\":{},\"ms\":{}}}",
                    c.announced,
                    c.withdrawn,
                    c.updates,
                    c.end_of_rib,
                    t.as_millis()
                );
                if done == locals.len() {
                    println!("{{\"event\":\"all\",\"cpu_ms\":{}}}", cpu_ms().unwrap_or(0));
                }
            }
            Report::Sent(i, bytes, t) => println!(
                "{{\"event\":\"sent\",\"session\":{i},\"bytes\":{bytes},\"ms\":{},\"cpu_ms\":{}}}",
                t.as_millis(),
                cpu_ms().unwrap_or(0)
            ),
            Report::Failed(e) => println!("{{\"event\":\"error\",\"error\":\"{e}\"}}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use filament_bgp::{Attrs, Path, RouteKey};
    use std::sync::Arc;

    /// The counter agrees with our encoder: N VPNv4 routes in, N counted,
    /// and an End-of-RIB is recognized.
    #[test]
    fn counts_what_the_encoder_packs() {
        let attrs = Attrs {
            next_hop: Some("10.0.0.1".parse().unwrap()),
            ..Attrs::default()
        };
        let paths: Vec<Path> = (0..1000u32)
            .map(|i| Path {
                key: RouteKey::Vpn(
                    format!("100:{}", i % 7).parse().unwrap(),
                    format!("10.{}.{}.0/24", i >> 8, i & 255).parse().unwrap(),
                ),
                labels: filament_bgp::LabelStack::from_slice(&[16 + i]),
                attrs: Arc::new(attrs.clone()),
            })
            .collect();
        let rs: Vec<(&RouteKey, &[u32])> = paths.iter().map(|p| (&p.key, &p.labels[..])).collect();
        let ctx = DecodeCtx::default();
        let mut bytes = Vec::new();
        let msgs = filament_bgp::codec::encode_announcements(
            Family::InetVpn,
            &attrs,
            &rs,
            &ctx,
            4096,
            &mut bytes,
        )
        .unwrap();
        let _ = Message::Update(filament_bgp::codec::end_of_rib(Family::InetVpn))
            .encode(&ctx, &mut bytes);
        let mut c = Counts::default();
        let mut at = 0;
        while at < bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at + 16], bytes[at + 17]]));
            count_update(&bytes[at + HEADER..at + len], &mut c).unwrap();
            at += len;
        }
        assert_eq!(c.announced, 1000);
        assert_eq!(c.updates, msgs as u64 + 1);
        assert_eq!(c.end_of_rib, 1);
        assert_eq!(c.withdrawn, 0);
    }
}
