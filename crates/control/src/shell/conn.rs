//! One agent connection's I/O (the control node shell's half of an XMPP session): a reader
//! feeding the core, a writer draining what the core queues with vectored writes, and the
//! switch to TLS after `<proceed/>` (TF's `xmpp_auth_enable`; docs/tf-agent-compat.md "XMPP
//! over TLS"): the writer writes what was queued and hands its half back, the reader keeps
//! the agent's first TLS records it read meanwhile, the halves are joined, the server
//! handshake runs on a stream that replays those bytes first ([`Prefixed`]), and both loops
//! restart on the TLS stream; [`Input::TlsDone`] tells the core how the handshake went.

use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Backlog, Handle, BACKLOG_LOW, MAX_IOV, RX_HIGH, WRITE_SLICE};
use crate::node::{ConnId, Input, Output};
use crate::session::Chunk;

/// Most bytes of the agent's first TLS records kept while the writer finishes `<proceed/>`.
const MAX_EARLY_TLS: usize = 64 << 10;

/// How a writer loop ended.
enum WriterEnd<W> {
    /// The connection is done (closed by the core, or a write failed).
    Closed,
    /// [`Output::StartTls`]: everything before it is written; the half and the queue are
    /// handed back for the TLS stream.
    StartTls(W, mpsc::UnboundedReceiver<Output>),
}

/// How a reader loop ended.
enum ReadEnd<R, W> {
    /// EOF, a read error, the writer ended, or the core is gone.
    Done,
    /// Switch to TLS: both halves, the output queue, and the TLS bytes already read.
    StartTls {
        rd: R,
        wr: W,
        wrx: mpsc::UnboundedReceiver<Output>,
        early: Vec<u8>,
    },
}

pub(super) async fn connection(
    sock: TcpStream,
    conn: ConnId,
    h: Handle,
    wrx: mpsc::UnboundedReceiver<Output>,
    backlog: Arc<Backlog>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let (rd, wr) = sock.into_split();
    let writer = tokio::spawn(write_loop(wr, wrx, backlog.clone(), conn, h.clone()));
    if let ReadEnd::StartTls { rd, wr, wrx, early } =
        read_loop(rd, conn, &h, writer, &backlog).await
    {
        let error = match (tls, rd.reunite(wr)) {
            (Some(cfg), Ok(sock)) => {
                let io = Prefixed { early, inner: sock };
                let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(io);
                match tokio::time::timeout(crate::session::OPEN_TIMEOUT, accept).await {
                    Ok(Ok(stream)) => {
                        backlog.tls_switch.store(false, Ordering::SeqCst);
                        if h.input(Input::TlsDone { conn, error: None }).is_ok() {
                            let (rd, wr) = tokio::io::split(stream);
                            let writer =
                                tokio::spawn(write_loop(wr, wrx, backlog.clone(), conn, h.clone()));
                            // a second STARTTLS is not a thing: any end is the end
                            let _ = read_loop(rd, conn, &h, writer, &backlog).await;
                        }
                        None
                    }
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("timed out".to_string()),
                }
            }
            (None, _) => Some("TLS is not configured on this listener".to_string()),
            (_, Err(e)) => Some(e.to_string()),
        };
        if let Some(error) = error {
            tracing::info!(conn, %error, "xmpp: TLS handshake failed");
            let _ = h.input(Input::TlsDone {
                conn,
                error: Some(error),
            });
        }
    }
    let _ = h.input(Input::Disconnected { conn });
}

/// Read until EOF, feeding the core; ends early when the writer ends (on a close, or
/// handing its half back for TLS).
async fn read_loop<R, W>(
    mut rd: R,
    conn: ConnId,
    h: &Handle,
    mut writer: JoinHandle<WriterEnd<W>>,
    backlog: &Arc<Backlog>,
) -> ReadEnd<R, W>
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; 64 * 1024];
    let mut early = Vec::new();
    loop {
        // Past RX_HIGH bytes the core has not taken, wait for it (or for the close):
        // a sender faster than the core fills its socket, not our memory.
        let taken = backlog.rx_taken.notified();
        if backlog.rx_queued.load(Ordering::Acquire) > RX_HIGH {
            tokio::select! {
                () = taken => continue,
                w = &mut writer => return match w {
                    Ok(WriterEnd::StartTls(wr, wrx)) => ReadEnd::StartTls { rd, wr, wrx, early },
                    _ => ReadEnd::Done,
                },
            }
        }
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return ReadEnd::Done,
                // after StartTls: the agent's ClientHello, for the TLS acceptor
                Ok(n) if backlog.tls_switch.load(Ordering::SeqCst) => {
                    early.extend_from_slice(&buf[..n]);
                    if early.len() > MAX_EARLY_TLS {
                        return ReadEnd::Done;
                    }
                }
                Ok(n) => {
                    if h.read(conn, buf[..n].to_vec(), backlog).is_err() {
                        return ReadEnd::Done;
                    }
                }
            },
            w = &mut writer => return match w {
                Ok(WriterEnd::StartTls(wr, wrx)) => ReadEnd::StartTls { rd, wr, wrx, early },
                _ => ReadEnd::Done,
            },
        }
    }
}

/// Write what the core queues for one connection until it closes it (then shut the write
/// side) or asks for TLS (then hand the half back).
async fn write_loop<W>(
    mut wr: W,
    mut wrx: mpsc::UnboundedReceiver<Output>,
    backlog: Arc<Backlog>,
    conn: ConnId,
    hw: Handle,
) -> WriterEnd<W>
where
    W: AsyncWrite + Unpin,
{
    let mut batch: Vec<Chunk> = Vec::new();
    let mut close = false;
    let mut start_tls = false;
    while !close && !start_tls {
        let Some(first) = wrx.recv().await else { break };
        // everything queued so far goes out in as few vectored writes as possible
        let mut next = Some(first);
        while let Some(o) = next.take() {
            match o {
                Output::Send { data, .. } => {
                    batch.extend(data.into_iter().filter(|d| !d.is_empty()))
                }
                Output::Close { .. } => close = true,
                Output::StartTls { .. } => start_tls = true,
            }
            if !close && !start_tls && batch.len() < 4 * MAX_IOV {
                next = wrx.try_recv().ok();
            }
        }
        let n: usize = batch.iter().map(|d| d.len()).sum();
        if write_chunks(&mut wr, &batch).await.is_err() {
            break;
        }
        batch.clear();
        let left = backlog
            .queued
            .fetch_sub(n, Ordering::AcqRel)
            .saturating_sub(n);
        if left < BACKLOG_LOW
            && backlog.blocked.load(Ordering::Acquire)
            && backlog
                .blocked
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            && hw
                .input(Input::Backlog {
                    conn,
                    blocked: false,
                })
                .is_err()
        {
            break;
        }
        if start_tls {
            if wr.flush().await.is_err() {
                break;
            }
            return WriterEnd::StartTls(wr, wrx);
        }
    }
    let _ = wr.shutdown().await;
    WriterEnd::Closed
}

/// A TCP stream whose first reads return bytes already read from it (the agent's first TLS
/// records, read before the switch): what the TLS acceptor runs on.
struct Prefixed {
    early: Vec<u8>,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.early.is_empty() {
            let n = self.early.len().min(buf.remaining());
            buf.put_slice(&self.early[..n]);
            self.early.drain(..n);
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Write every chunk, in order, with vectored writes of up to [`MAX_IOV`] chunks.
async fn write_chunks<W: AsyncWrite + Unpin>(wr: &mut W, chunks: &[Chunk]) -> std::io::Result<()> {
    let (mut i, mut off) = (0usize, 0usize);
    while i < chunks.len() {
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_IOV.min(chunks.len() - i));
        let first = chunks[i].get(off..).unwrap_or_default();
        let first = first.get(..WRITE_SLICE).unwrap_or(first);
        let mut len = first.len();
        slices.push(IoSlice::new(first));
        for c in chunks[i + 1..].iter().take(MAX_IOV - 1) {
            if len + c.len() > WRITE_SLICE {
                break;
            }
            len += c.len();
            slices.push(IoSlice::new(c));
        }
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        tokio::task::yield_now().await;
        while n > 0 && i < chunks.len() {
            let rem = chunks[i].len() - off;
            if n >= rem {
                n -= rem;
                i += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}
