//! A tiny HTTP/1 server on `127.0.0.1:0` for the client and sign-in tests: it records
//! every request and answers with whatever the test's handler decides, including
//! dropping the connection and answering late.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: hyper::HeaderMap,
    pub body: String,
    /// The client's address: a new port means a new connection.
    pub peer: SocketAddr,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A form field of an `application/x-www-form-urlencoded` body.
    pub fn form(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What to do with a request.
pub enum Answer {
    Status(u16, Vec<(&'static str, String)>, String),
    /// Close the connection without answering, after reading the request.
    Drop,
    /// Answer after a pause.
    Late(Duration, Box<Answer>),
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Answer {
        Answer::Status(
            status,
            vec![("content-type", "application/json".into())],
            body.to_string(),
        )
    }
}

type Handler = dyn Fn(&Seen) -> Answer + Send + Sync;

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let log = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    let log = log.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let seen = Seen {
                            method: parts.method.to_string(),
                            target: parts
                                .uri
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default(),
                            headers: parts.headers,
                            body: String::from_utf8_lossy(&body).into_owned(),
                            peer,
                        };
                        log.lock().unwrap().push(seen.clone());
                        let mut answer = handler(&seen);
                        while let Answer::Late(pause, next) = answer {
                            tokio::time::sleep(pause).await;
                            answer = *next;
                        }
                        match answer {
                            Answer::Status(status, headers, body) => {
                                let mut r = Response::builder().status(status);
                                for (k, v) in headers {
                                    r = r.header(k, v);
                                }
                                Ok::<_, std::io::Error>(
                                    r.body(Full::new(Bytes::from(body))).unwrap(),
                                )
                            }
                            // An error from the service makes hyper close the connection
                            // without a response.
                            _ => Err(std::io::Error::other("dropped on purpose")),
                        }
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestServer { addr, seen, task }
}

/// An address nothing listens on: connecting is refused.
pub async fn refused_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// An endpoint served in memory, without a socket: for tests on tokio's paused clock.
/// Paused time and real sockets do not mix: when the runtime finds nothing ready it
/// jumps to its next timer (a request's timeout, a retry's wait) even while a loopback
/// answer is still on its way, which a loaded machine makes likely (issue 18). Token
/// requests to its `http://localhost:PORT` are answered by [`answer_in_memory`] before
/// any connection is made; `PORT` is never listened on, so a request that missed this
/// path fails loudly instead of reaching anything.
pub struct MemoryServer {
    port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

type Registered = (Arc<Handler>, Arc<Mutex<Vec<Seen>>>);

static IN_MEMORY: Mutex<Vec<(u16, Registered)>> = Mutex::new(Vec::new());
static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);

impl MemoryServer {
    pub fn url(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for MemoryServer {
    fn drop(&mut self) {
        let mut all = IN_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|(port, _)| *port != self.port);
    }
}

pub fn serve_in_memory(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> MemoryServer {
    let port = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    IN_MEMORY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((port, (handler, seen.clone())));
    MemoryServer { port, seen }
}

/// What a [`MemoryServer`] answered: status, headers, body; or `Err(why)` for a
/// connection closed without an answer.
pub type MemoryAnswer = Result<(u16, Vec<(&'static str, String)>, String), String>;

/// The answer of the in-memory endpoint `url` points at, or `None` when it points at no
/// [`MemoryServer`]. `Answer::Late` waits on tokio's (paused) clock.
pub async fn answer_in_memory(url: &url::Url, form: &[(&str, String)]) -> Option<MemoryAnswer> {
    if url.host_str() != Some("localhost") {
        return None;
    }
    let port = url.port()?;
    let (handler, log) = {
        let all = IN_MEMORY.lock().unwrap_or_else(|e| e.into_inner());
        let (_, (handler, log)) = all.iter().find(|(p, _)| *p == port)?;
        (handler.clone(), log.clone())
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let seen = Seen {
        method: "POST".into(),
        target: match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        headers: hyper::HeaderMap::new(),
        body,
        peer: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    log.lock().unwrap().push(seen.clone());
    let mut answer = handler(&seen);
    while let Answer::Late(pause, next) = answer {
        tokio::time::sleep(pause).await;
        answer = *next;
    }
    Some(match answer {
        Answer::Status(status, headers, body) => Ok((status, headers, body)),
        _ => Err("connection closed before message completed".into()),
    })
}
