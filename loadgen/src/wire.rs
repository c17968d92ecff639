//! A lean client for `inkwire bench fanout`, measuring at the sockets.
//!
//! The benchmark shares two cores with the gateway it measures. Its subscribers used to be
//! 2,000 Tokio tasks reading through tungstenite, stamping each message when their task got to
//! it: 7–11 µs of CPU per delivery, and every receipt's time included the load generator's own
//! run queue (a burst of 2,000 wakes 2,000 tasks; the next comment's first message waited
//! behind them). Here:
//!
//! - subscribers are plain sockets read by a few threads on `epoll`, server frames parsed in
//!   place, no task per subscriber;
//! - each read carries the kernel's receive timestamp (`SO_TIMESTAMPNS`): when the bytes
//!   reached the subscriber's socket, as a packet capture would see it. When one read takes
//!   several frames, all of them get the stamp of the last segment read, which can only make a
//!   receipt look later;
//! - comments are posted over plain HTTP/1.1 keep-alive connections, and a comment's
//!   acknowledgement is the kernel's timestamp of its response's arrival, in the same clock.
//!
//! Only what the benchmark needs is spoken: the WebSocket opening handshake, unfragmented
//! server frames (text, ping, close), masked client text and pong frames, and HTTP responses
//! with a `content-length`.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`, the clock of the kernel's stamps).
pub type Stamp = i64;

/// How long a handshake or a request may take before the benchmark gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// The graphql-transport-ws client ping, sent every so often: the gateway closes a connection
/// that says nothing for 30 s.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Where the gateway listens, from its `/graphql` URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Endpoint {
    /// # Errors
    /// When `url` is not an `http://` URL with a host that resolves.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url)?;
        anyhow::ensure!(
            url.scheme() == "http",
            "only http:// is spoken here, not {url}"
        );
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("no host in {url}"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{host} does not resolve"))?;
        Ok(Self {
            addr,
            host: format!("{host}:{port}"),
            path: url.path().to_owned(),
        })
    }

    fn connect(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        set_flag(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)?;
        Ok(stream)
    }
}

fn set_flag(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket and the option value is a live `c_int` of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Now, in the clock of the kernel's stamps.
#[must_use]
pub fn now() -> Stamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

/// One `recvmsg` into `buf`: the bytes read (0 at end of stream) and the kernel's receive
/// timestamp of the last segment they came from.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Stamp>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one `SCM_TIMESTAMPNS` message, aligned for `cmsghdr`.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero `msghdr` is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at a live buffer and control area of the sizes it states.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, 0) };
    let Ok(n) = usize::try_from(n) else {
        return Err(io::Error::last_os_error());
    };
    let mut stamp = None;
    // SAFETY: the CMSG macros walk the control area the kernel filled, within `msg_controllen`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n, stamp))
}

/// Why a server frame could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a server frame was masked")]
    Masked,
    #[error("a fragmented server frame (not spoken here)")]
    Fragmented,
    #[error("a frame of {0} bytes")]
    TooLong(u64),
}

/// A whole server frame at the start of `buf`: its opcode, where its payload is, and its
/// length; `None` while it is incomplete.
///
/// # Errors
/// On a masked or fragmented frame, or one longer than 16 MiB.
pub fn frame(buf: &[u8]) -> Result<Option<(u8, Range<usize>, usize)>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let opcode = b0 & 0x0f;
    if b0 & 0x80 == 0 || opcode == 0 {
        return Err(FrameError::Fragmented);
    }
    let (len, start) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > 16 << 20 {
        return Err(FrameError::TooLong(len));
    }
    let end = start + usize::try_from(len).map_err(|_| FrameError::TooLong(len))?;
    Ok((buf.len() >= end).then_some((opcode, start..end, end)))
}

/// A masked client frame (RFC 6455 §5.3) carrying `payload`.
#[must_use]
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask: [u8; 4] = uuid::Uuid::new_v4().as_bytes()[..4]
        .try_into()
        .unwrap_or([0x5a; 4]);
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

const OP_TEXT: u8 = 1;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

/// Appends one read from `stream` to `buf`; returns the kernel's stamp of what it read.
fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Option<Stamp>> {
    let mut chunk = [0u8; 16 * 1024];
    let (n, stamp) = recv_stamped(stream.as_raw_fd(), &mut chunk)?;
    anyhow::ensure!(n > 0, "the gateway closed the connection mid-answer");
    buf.extend_from_slice(&chunk[..n]);
    Ok(stamp)
}

/// Reads from `stream` until `buf` holds a whole HTTP head; returns the head's length and the
/// kernel's stamp of its first bytes.
fn read_head(stream: &TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<(usize, Option<Stamp>)> {
    let mut first = None;
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((at + 4, first));
        }
        let stamp = read_more(stream, buf)?;
        first = first.or(stamp);
    }
}

/// One subscriber's socket, after the handshake, with what it received.
#[derive(Debug)]
pub struct Subscriber {
    stream: TcpStream,
    pending: Vec<u8>,
    /// (comment id, arrival at the socket, when the load generator read it).
    pub receipts: Vec<(u128, Stamp, Stamp)>,
    /// The gateway's close frame or end of stream, if it came.
    pub closed: Option<String>,
    /// Reads that came without the kernel's timestamp (stamped when read instead).
    pub unstamped: u64,
}

impl Subscriber {
    /// Opens a WebSocket to `endpoint` speaking graphql-transport-ws, initialises it, subscribes
    /// with `payload` as operation `1` and waits for the `connection_ack`.
    ///
    /// # Errors
    /// When the gateway refuses or does not answer.
    pub fn connect(endpoint: &Endpoint, payload: &str, expected: usize) -> anyhow::Result<Self> {
        let mut stream = endpoint.connect()?;
        let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
            endpoint.path, endpoint.host
        )?;
        let mut buf = Vec::new();
        let (head, _) = read_head(&stream, &mut buf)?;
        anyhow::ensure!(
            buf.starts_with(b"HTTP/1.1 101"),
            "no WebSocket upgrade: {}",
            String::from_utf8_lossy(&buf[..head])
        );
        buf.drain(..head);
        stream.write_all(&client_frame(OP_TEXT, br#"{"type":"connection_init"}"#))?;
        let subscribe = format!(r#"{{"type":"subscribe","id":"1","payload":{payload}}}"#);
        stream.write_all(&client_frame(OP_TEXT, subscribe.as_bytes()))?;
        let (opcode, payload, len) = loop {
            if let Some(frame) = frame(&buf)? {
                break frame;
            }
            read_more(&stream, &mut buf)?;
        };
        let text = String::from_utf8_lossy(&buf[payload]).into_owned();
        buf.drain(..len);
        anyhow::ensure!(
            opcode == OP_TEXT && text.contains("connection_ack"),
            "expected connection_ack, got opcode {opcode}: {text}"
        );
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream,
            pending: buf,
            receipts: Vec::with_capacity(expected),
            closed: None,
            unstamped: 0,
        })
    }

    /// Reads what the socket holds (one `recvmsg`) and takes every whole frame in it; returns
    /// how many comments it held.
    fn on_readable(&mut self, scratch: &mut [u8]) -> io::Result<u64> {
        let (n, stamp) = match recv_stamped(self.stream.as_raw_fd(), scratch) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        let read = now();
        if n == 0 {
            self.closed
                .get_or_insert_with(|| "end of stream".to_owned());
            return Ok(0);
        }
        let arrived = stamp.unwrap_or_else(|| {
            self.unstamped += 1;
            read
        });
        self.pending.extend_from_slice(&scratch[..n]);
        let mut comments = 0;
        let mut at = 0;
        while let Some((opcode, payload, len)) =
            frame(&self.pending[at..]).map_err(io::Error::other)?
        {
            let payload = at + payload.start..at + payload.end;
            match opcode {
                OP_TEXT => {
                    let text = std::str::from_utf8(&self.pending[payload]).unwrap_or_default();
                    if let Some(id) = crate::gateway::comment_id(text) {
                        self.receipts.push((id, arrived, read));
                        comments += 1;
                    } else if text.contains(r#""type":"ping""#) {
                        self.stream
                            .write_all(&client_frame(OP_TEXT, br#"{"type":"pong"}"#))?;
                    }
                }
                OP_PING => {
                    let pong = client_frame(OP_PONG, &self.pending[payload]);
                    self.stream.write_all(&pong)?;
                }
                OP_CLOSE => {
                    let reason = self.pending.get(payload.start + 2..payload.end);
                    self.closed = Some(String::from_utf8_lossy(reason.unwrap_or_default()).into());
                }
                _ => {}
            }
            at += len;
        }
        self.pending.drain(..at);
        Ok(comments)
    }

    fn ping(&mut self) -> io::Result<()> {
        self.stream
            .write_all(&client_frame(OP_TEXT, br#"{"type":"ping"}"#))
    }
}

/// Threads reading subscribers' sockets on `epoll`.
pub struct Receivers {
    inboxes: Vec<mpsc::Sender<Subscriber>>,
    threads: Vec<JoinHandle<io::Result<Vec<Subscriber>>>>,
    stop: Arc<AtomicBool>,
    /// Comments received so far, over all subscribers.
    pub delivered: Arc<AtomicU64>,
    next: usize,
}

impl Receivers {
    /// Starts `threads` reading threads.
    ///
    /// # Errors
    /// When `epoll` or a thread cannot be created.
    pub fn start(threads: usize) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicU64::new(0));
        let mut inboxes = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let (stop, delivered) = (stop.clone(), delivered.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bench-receiver-{i}"))
                    .spawn(move || receive(&rx, &stop, &delivered))?,
            );
            inboxes.push(tx);
        }
        Ok(Self {
            inboxes,
            threads: handles,
            stop,
            delivered,
            next: 0,
        })
    }

    /// Hands `subscriber` to the next thread, in turn.
    ///
    /// # Errors
    /// When that thread has stopped (its error comes with [`Receivers::finish`]).
    pub fn add(&mut self, subscriber: Subscriber) -> anyhow::Result<()> {
        let inbox = &self.inboxes[self.next % self.inboxes.len()];
        self.next += 1;
        inbox
            .send(subscriber)
            .map_err(|_| anyhow::anyhow!("a receiving thread stopped"))
    }

    /// Stops the threads and returns every subscriber with what it received.
    ///
    /// # Errors
    /// When a thread failed.
    pub fn finish(self) -> anyhow::Result<Vec<Subscriber>> {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.inboxes);
        let mut all = Vec::new();
        for thread in self.threads {
            let subscribers = thread
                .join()
                .map_err(|_| anyhow::anyhow!("a receiving thread panicked"))??;
            all.extend(subscribers);
        }
        Ok(all)
    }
}

/// A receiving thread: takes new subscribers from `inbox`, reads the ready ones, pings every
/// one every [`PING_EVERY`], until `stop`.
fn receive(
    inbox: &mpsc::Receiver<Subscriber>,
    stop: &AtomicBool,
    delivered: &AtomicU64,
) -> io::Result<Vec<Subscriber>> {
    struct Epoll(RawFd);
    impl Drop for Epoll {
        fn drop(&mut self) {
            // SAFETY: the descriptor is ours and closed once.
            unsafe { libc::close(self.0) };
        }
    }
    // SAFETY: plain system call.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let epoll = Epoll(fd);
    let mut subscribers: Vec<Subscriber> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut scratch = vec![0u8; 64 * 1024];
    let mut next_ping = Instant::now() + PING_EVERY;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(subscriber) = inbox.try_recv() {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: subscribers.len() as u64,
            };
            let sock = subscriber.stream.as_raw_fd();
            // SAFETY: both descriptors are open; the event is copied by the kernel.
            if unsafe { libc::epoll_ctl(epoll.0, libc::EPOLL_CTL_ADD, sock, &raw mut event) } != 0 {
                return Err(io::Error::last_os_error());
            }
            subscribers.push(subscriber);
        }
        // SAFETY: `events` has room for the count given.
        let ready = unsafe {
            libc::epoll_wait(
                epoll.0,
                events.as_mut_ptr(),
                i32::try_from(events.len()).unwrap_or(i32::MAX),
                5,
            )
        };
        let ready = match usize::try_from(ready) {
            Ok(n) => n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        for event in &events[..ready] {
            let Some(subscriber) = usize::try_from(event.u64)
                .ok()
                .and_then(|i| subscribers.get_mut(i))
            else {
                continue;
            };
            let comments = subscriber.on_readable(&mut scratch)?;
            delivered.fetch_add(comments, Ordering::Relaxed);
            if subscriber.closed.is_some() {
                let sock = subscriber.stream.as_raw_fd();
                // SAFETY: removes an open descriptor from our epoll set.
                unsafe {
                    libc::epoll_ctl(epoll.0, libc::EPOLL_CTL_DEL, sock, std::ptr::null_mut())
                };
            }
        }
        if Instant::now() >= next_ping {
            next_ping += PING_EVERY;
            for subscriber in subscribers.iter_mut().filter(|s| s.closed.is_none()) {
                subscriber.ping()?;
            }
        }
    }
    Ok(subscribers)
}

/// A plain HTTP/1.1 keep-alive connection posting JSON, stamping each answer's arrival.
#[derive(Debug)]
pub struct Poster {
    stream: TcpStream,
    endpoint: Endpoint,
}

impl Poster {
    /// # Errors
    /// When the gateway cannot be reached.
    pub fn connect(endpoint: &Endpoint) -> anyhow::Result<Self> {
        Ok(Self {
            stream: endpoint.connect()?,
            endpoint: endpoint.clone(),
        })
    }

    /// Posts `body` with the bearer `token`; returns the answer's body and the kernel's
    /// timestamp of the answer's first bytes reaching this socket.
    ///
    /// # Errors
    /// On a status other than 200, or a broken or unreadable answer.
    pub fn post(&mut self, token: &str, body: &str) -> anyhow::Result<(Vec<u8>, Stamp)> {
        write!(
            self.stream,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
            self.endpoint.path,
            self.endpoint.host,
            body.len()
        )?;
        let mut buf = Vec::new();
        let (head, arrived) = read_head(&self.stream, &mut buf)?;
        let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
        anyhow::ensure!(
            text.starts_with("http/1.1 200"),
            "HTTP answer {}",
            text.lines().next().unwrap_or_default()
        );
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("an answer without content-length"))?;
        while buf.len() < head + length {
            read_more(&self.stream, &mut buf)?;
        }
        anyhow::ensure!(buf.len() == head + length, "more than one answer");
        Ok((buf.split_off(head), arrived.unwrap_or_else(now)))
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameError, client_frame, frame};

    #[test]
    fn server_frames_are_read_whole_or_not_at_all() {
        let text = b"\x81\x05hello";
        assert_eq!(frame(text), Ok(Some((1, 2..7, 7))));
        assert_eq!(frame(&text[..4]), Ok(None));
        assert_eq!(frame(&text[..1]), Ok(None));
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(frame(&long), Ok(Some((1, 4..260, 260))));
        assert_eq!(frame(&long[..100]), Ok(None));
        assert_eq!(frame(b"\x81\x85abcd"), Err(FrameError::Masked));
        assert_eq!(frame(b"\x01\x01a"), Err(FrameError::Fragmented));
        assert_eq!(frame(b"\x80\x01a"), Err(FrameError::Fragmented));
        let huge = [0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(matches!(frame(&huge), Err(FrameError::TooLong(_))));
    }

    #[test]
    fn client_frames_are_masked_and_unmask_to_the_payload() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let f = client_frame(1, &payload);
            assert_eq!(f[0], 0x81);
            assert_ne!(f[1] & 0x80, 0, "client frames are masked");
            let (len_field, at) = match f[1] & 0x7f {
                126 => (u64::from(u16::from_be_bytes([f[2], f[3]])), 4),
                127 => (u64::from_be_bytes(f[2..10].try_into().unwrap()), 10),
                n => (u64::from(n), 2),
            };
            assert_eq!(len_field, len as u64);
            let mask = &f[at..at + 4];
            let unmasked: Vec<u8> = f[at + 4..]
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            assert_eq!(unmasked, payload);
        }
    }
}
