//! Plain-TCP HTTP on loopback: a tiny client, reading one request off a connection (for every
//! loopback server of the tests), and a webhook receiver that counts what arrives.
//!
//! Only std: the crate's own unit tests include this file by path.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header lines, lower-cased names, as received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// `GET path`, HTTP/1.0 with `Connection: close`, so every server answers without chunking.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    request(addr, "GET", path)
}

pub fn request(addr: SocketAddr, method: &str, path: &str) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("broken chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A free loopback port, released again: for a server that starts later (or never).
pub fn reserve_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Request {
    /// When its headers had fully arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The protocol of the request line, e.g. `HTTP/1.1`.
    pub version: String,
    /// `X-Reconfig-Hash`, the config version reconfig reloaded.
    pub hash: Option<String>,
    /// What the receiver answered.
    pub status: u16,
}

struct State {
    requests: Mutex<Vec<Request>>,
    status: AtomicU16,
    stop: AtomicBool,
}

/// A loopback webhook endpoint: answers every request with the configured status and records it.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on a free loopback port, answering 200.
    pub fn start() -> Receiver {
        Self::start_on("127.0.0.1:0".parse().expect("addr")).expect("bind the receiver")
    }

    /// Listens on `addr` (e.g. one from [`reserve_port`], once the endpoint "comes back").
    pub fn start_on(addr: SocketAddr) -> io::Result<Receiver> {
        let mut last = None;
        for _ in 0..50 {
            match TcpListener::bind(addr) {
                Ok(listener) => return Ok(Self::serve(listener)),
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        Err(last.expect("an error"))
    }

    fn serve(listener: TcpListener) -> Receiver {
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            status: AtomicU16::new(200),
            stop: AtomicBool::new(false),
        });
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    let _ = answer(stream, &shared);
                }
            }
        });
        Receiver {
            addr,
            state,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The status answered from now on (e.g. 503 while the app "is down").
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    /// Requests answered with a 2xx.
    pub fn successes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

fn answer(stream: TcpStream, state: &State) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(incoming) = read_request(&mut reader, 1 << 20)? else {
        return Ok(());
    };
    let status = state.status.load(Ordering::SeqCst);
    state.requests.lock().expect("lock").push(Request {
        at: incoming.at,
        hash: incoming.header("x-reconfig-hash").map(str::to_string),
        method: incoming.method,
        path: incoming.target,
        version: incoming.version,
        status,
    });
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// One request as read off a connection.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// When its headers had fully arrived.
    pub at: Instant,
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// The protocol of the request line, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header lines, lower-cased names, trimmed values, as received.
    pub headers: Vec<(String, String)>,
    /// `Content-Length` bytes (no chunked bodies).
    pub body: Vec<u8>,
}

impl Incoming {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request (request line, headers, a `Content-Length` body of at most `max_body`
/// bytes) from a connection; `None` when the peer closed it before sending one, as a client does
/// with a kept-alive connection it no longer needs.
pub fn read_request(reader: &mut impl BufRead, max_body: usize) -> io::Result<Option<Incoming>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let at = Instant::now();
    let mut parts = first.split_whitespace();
    let mut incoming = Incoming {
        at,
        method: parts.next().unwrap_or_default().to_string(),
        target: parts.next().unwrap_or_default().to_string(),
        version: parts.next().unwrap_or_default().to_string(),
        headers,
        body: Vec::new(),
    };
    let length: usize = incoming
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    incoming.body = vec![0u8; length.min(max_body)];
    reader.read_exact(&mut incoming.body)?;
    Ok(Some(incoming))
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
