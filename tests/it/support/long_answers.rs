//! A plain-HTTP server on loopback that answers every request with a 200 whose body (no length given: it ends when the connection closes) is far longer than anyone asked for, counting what it wrote to each client before that client hung up.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server wrote on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Body bytes written (accepted by the kernel) before the connection ended.
    pub bytes: u64,
    /// The client closed the connection before the whole body was written.
    pub hung_up: bool,
}

pub struct LongAnswers {
    pub port: u16,
    accepted: Arc<Mutex<usize>>,
    ended: Arc<Mutex<Vec<Sent>>>,
}

/// The body is written in pieces of this size.
const PIECE: usize = 64 << 10;

impl LongAnswers {
    /// Answers every request with `body_len` bytes.
    pub fn start(body_len: u64) -> LongAnswers {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(0));
        let ended = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (accepted.clone(), ended.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                *count.lock().unwrap() += 1;
                let log = log.clone();
                std::thread::spawn(move || {
                    let sent = answer(&stream, body_len);
                    log.lock().unwrap().push(sent);
                });
            }
        });
        LongAnswers {
            port,
            accepted,
            ended,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What was written on each connection, once every connection accepted so far has ended
    /// (waiting up to `limit`; panics, naming the counts, past it).
    pub fn sent_once_all_ended(&self, limit: Duration) -> Vec<Sent> {
        let start = Instant::now();
        loop {
            let accepted = *self.accepted.lock().unwrap();
            let ended = self.ended.lock().unwrap().clone();
            if ended.len() == accepted {
                return ended;
            }
            assert!(
                start.elapsed() < limit,
                "{accepted} connections accepted, {} ended after {limit:?}: {ended:?}",
                ended.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Read the request head (a GET: no body), then write the answer until it is complete or the
/// client hangs up.
fn answer(stream: &TcpStream, body_len: u64) -> Sent {
    let hung_up = |bytes| Sent {
        bytes,
        hung_up: true,
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return hung_up(0),
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let mut out = stream;
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return hung_up(0);
    }
    let piece = vec![b'x'; PIECE];
    let mut bytes = 0u64;
    while bytes < body_len {
        let n = (body_len - bytes).min(PIECE as u64) as usize;
        if out.write_all(&piece[..n]).is_err() {
            return hung_up(bytes);
        }
        bytes += n as u64;
    }
    Sent {
        bytes,
        hung_up: false,
    }
}
