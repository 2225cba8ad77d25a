//! A fault-injecting AWS peer for the integration tests.
//!
//! The happy paths of the AWS providers are tested against moto, but moto does not model the
//! failures that matter most to a key-management library: Decrypt on a disabled key succeeds
//! there (real KMS answers `DisabledException` / `KMSInvalidStateException`), it never throttles,
//! it is never slow or dead, and it never sends a malformed answer (see the moto table in
//! `shared/reference/anchors.md`). [`FaultPeer`] fills that gap: a small HTTP/1.1 server that
//! speaks the AWS wire protocols (JSON 1.1 for KMS and Secrets Manager, the query protocol for
//! STS) and answers each request with whatever [`Reply`] the test chooses, so the real AWS SDK
//! code path — signing, connection pooling, retries, timeouts, response parsing — runs against it.
//!
//! Safety of the environment: the peer only ever binds and connects to `127.0.0.1` (an
//! ephemeral port chosen by the OS); it never reaches any other address.
//!
//! It uses `std::net` and `std::thread` only (blocking sockets, one thread per connection), so it
//! works with the crate's tokio features (no `net`, no `macros`) and from any test, async or not.
//! Dropping a [`FaultPeer`] stops it: the accept loop ends, every open connection (including
//! those held by [`Reply::Hang`]) is shut down, and its threads end promptly.
//!
//! What aws-sdk-kms 1.129 / aws-smithy-runtime 1.16 (standard retries) made of each reply when
//! this module was written, for KMS Decrypt:
//!
//! | reply | `SdkError` variant | retried |
//! |---|---|---|
//! | `aws_error(400, "DisabledException", ..)` | `ServiceError`, `is_disabled_exception()` | no |
//! | `aws_error(400, "ThrottlingException", ..)` | `ServiceError`, unhandled, `code()` = `ThrottlingException` | yes |
//! | `aws_error(500, "KMSInternalException", ..)` | `ServiceError`, `is_kms_internal_exception()` | yes |
//! | `json("{not json")` (200) | `ServiceError`, unhandled `DeserializeError`, `code()` = `None` | no |
//! | 503 with an HTML body | `ServiceError`, unhandled, `code()` = `None` | yes |
//! | `Hang` + operation (or attempt) timeout | `TimeoutError` | attempt timeouts: yes |
//! | `Hang` + `read_timeout` | `DispatchFailure`, `is_timeout()` | yes |
//! | `Close` | `DispatchFailure`, `is_other()` (transient) | yes |
//! | [`refused_endpoint`] | `DispatchFailure`, `is_io()` (connection refused) | yes (3 attempts take ~3x as long) |

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest request head (request line and headers) the peer accepts; larger closes the connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body the peer accepts; larger closes the connection.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How long `Drop` waits for connection threads to finish before leaving them detached.
const DROP_JOIN_WAIT: Duration = Duration::from_secs(2);
/// Slice in which [`Reply::Delayed`] sleeps, so a drop interrupts the delay promptly.
const DELAY_SLICE: Duration = Duration::from_millis(10);

/// What the peer does with one request.
///
/// Plain data (`Clone + Send + Sync`): a responder may build replies on any connection thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An AWS JSON 1.1 protocol error (KMS, Secrets Manager): HTTP `status`, header
    /// `x-amzn-ErrorType: <error_type>`, content-type `application/x-amz-json-1.1`, body
    /// `{"__type":"<error_type>","message":"<message>"}`.
    AwsError {
        /// HTTP status, e.g. 400 for `DisabledException` or `ThrottlingException`.
        status: u16,
        /// The AWS error code, e.g. `"DisabledException"`.
        error_type: String,
        /// The human-readable message.
        message: String,
    },
    /// A response with this exact `status`, `body` and `Content-Type` — e.g. a malformed body,
    /// or a valid one.
    Body {
        /// HTTP status.
        status: u16,
        /// The exact body bytes.
        body: Vec<u8>,
        /// The `Content-Type` header value, e.g. `application/x-amz-json-1.1`.
        content_type: String,
    },
    /// A response with exactly these headers (plus the `Content-Length`, `Connection` and
    /// `x-amzn-RequestId` the peer always adds) and body: full control for anything else, e.g.
    /// query-protocol (STS) XML, or a missing content type.
    Raw {
        /// HTTP status.
        status: u16,
        /// Extra headers, written as given.
        headers: Vec<(String, String)>,
        /// The exact body bytes.
        body: Vec<u8>,
    },
    /// A response whose head announces `declared` body bytes (`Content-Length`) but that sends
    /// only `body`, then closes the connection: a lying or cut-off server.
    Truncated {
        /// HTTP status.
        status: u16,
        /// Extra headers, written as given.
        headers: Vec<(String, String)>,
        /// The announced body length.
        declared: u64,
        /// The bytes actually sent.
        body: Vec<u8>,
    },
    /// A response whose head announces the whole `body` (`Content-Length`) but whose bytes come
    /// `chunk` at a time, `interval` apart, then the connection closes: a slow body. The trickle
    /// stops early if the client goes away or the peer is dropped.
    Trickle {
        /// HTTP status.
        status: u16,
        /// Extra headers, written as given.
        headers: Vec<(String, String)>,
        /// The whole body.
        body: Vec<u8>,
        /// Bytes per write (at least 1).
        chunk: usize,
        /// The pause before each write after the head.
        interval: Duration,
    },
    /// Read the request, then never answer: the connection stays open until the client closes
    /// it or the peer is dropped.
    Hang,
    /// Read the request, then close the connection without a response.
    Close,
    /// Wait `delay` (a slow endpoint), then do what `then` says. The wait ends early, closing the
    /// connection, if the peer is dropped.
    Delayed {
        /// How long to wait before acting.
        delay: Duration,
        /// What to do after the wait.
        then: Box<Reply>,
    },
    /// A huge body that costs the peer no memory: `prefix`, then `filler` repeated
    /// `filler_len` times, then `suffix`, written from a small buffer (`Content-Length`
    /// announces the total). Ends early, closing the connection, when the client stops reading
    /// or the peer is dropped.
    Huge {
        /// HTTP status.
        status: u16,
        /// Extra headers, written as given.
        headers: Vec<(String, String)>,
        /// The bytes before the filler, e.g. the start of an error document.
        prefix: Vec<u8>,
        /// The repeated byte.
        filler: u8,
        /// How many filler bytes.
        filler_len: u64,
        /// The bytes after the filler.
        suffix: Vec<u8>,
    },
}

impl Reply {
    /// An AWS JSON 1.1 error, e.g. `Reply::aws_error(400, "DisabledException", "key is disabled")`.
    pub fn aws_error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::AwsError {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        }
    }

    /// A 200 with this body and content-type `application/x-amz-json-1.1`. The body is sent as
    /// given, so it may be deliberately malformed (`Reply::json("{not json")`).
    pub fn json(body: &str) -> Reply {
        Reply::Body {
            status: 200,
            body: body.as_bytes().to_vec(),
            content_type: "application/x-amz-json-1.1".to_owned(),
        }
    }

    /// A KMS `Decrypt` answer for key `key_id` whose `Plaintext` is `plaintext`.
    pub fn kms_decrypt(key_id: &str, plaintext: &[u8]) -> Reply {
        Reply::json(&format!(
            r#"{{"KeyId":"{key_id}","Plaintext":"{}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
            aws_smithy_types::base64::encode(plaintext)
        ))
    }

    /// A KMS `Encrypt` answer for key `key_id` whose `CiphertextBlob` is `ciphertext`.
    pub fn kms_encrypt(key_id: &str, ciphertext: &[u8]) -> Reply {
        Reply::json(&format!(
            r#"{{"KeyId":"{key_id}","CiphertextBlob":"{}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
            aws_smithy_types::base64::encode(ciphertext)
        ))
    }

    /// A response with `status` and an XML `body` (content-type `text/xml`), as the query
    /// protocol (STS) uses.
    pub fn xml(status: u16, body: &str) -> Reply {
        Reply::Raw {
            status,
            headers: vec![("Content-Type".to_owned(), "text/xml".to_owned())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A query-protocol (STS) error: HTTP `status` with an `<ErrorResponse>` XML body carrying
    /// `code` (e.g. `"AccessDenied"`, `"ExpiredToken"`) and `message`.
    pub fn query_error(status: u16, code: &str, message: &str) -> Reply {
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        Reply::xml(
            status,
            &format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
                 <RequestId>{}</RequestId></ErrorResponse>",
                xml_escape(code),
                xml_escape(message),
                request_id()
            ),
        )
    }

    /// `then` after `delay`: a slow endpoint.
    pub fn delayed(delay: Duration, then: Reply) -> Reply {
        Reply::Delayed {
            delay,
            then: Box::new(then),
        }
    }

    /// An AWS JSON 1.1 error (as [`Reply::aws_error`]) whose message is `message_len` bytes of
    /// `A`: a huge error body.
    pub fn huge_aws_error(status: u16, error_type: &str, message_len: u64) -> Reply {
        Reply::Huge {
            status,
            headers: json_error_headers(error_type),
            prefix: format!(
                "{{\"__type\":\"{}\",\"message\":\"",
                json_escape(error_type)
            )
            .into_bytes(),
            filler: b'A',
            filler_len: message_len,
            suffix: b"\"}".to_vec(),
        }
    }

    /// A 200 AWS JSON 1.1 answer whose `Plaintext` field holds `len` bytes of `A`: a huge
    /// success body.
    pub fn huge_json(len: u64) -> Reply {
        Reply::Huge {
            status: 200,
            headers: vec![(
                "Content-Type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            )],
            prefix: b"{\"Plaintext\":\"".to_vec(),
            filler: b'A',
            filler_len: len,
            suffix: b"\"}".to_vec(),
        }
    }

    /// An AWS JSON 1.1 answer with `status` (and, for an error, `x-amzn-ErrorType:
    /// error_type`) whose body trickles in one byte every `interval`, announcing 1 MiB.
    /// A successful STS `AssumeRole` (query protocol XML) granting these credentials until
    /// `expiration` (ISO 8601), for role `cyborgdb-byok` in account 111122223333.
    pub fn assume_role(
        access_key: &str,
        secret_key: &str,
        session_token: &str,
        expiration: &str,
    ) -> Reply {
        Reply::xml(
            200,
            &format!(
                r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{access_key}</AccessKeyId>
      <SecretAccessKey>{secret_key}</SecretAccessKey>
      <SessionToken>{session_token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:cyborgdb-acme</AssumedRoleId>
      <Arn>arn:aws:sts::111122223333:assumed-role/cyborgdb-byok/cyborgdb-acme</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#
            ),
        )
    }

    pub fn trickling_json(status: u16, error_type: &str, interval: Duration) -> Reply {
        let headers = if status >= 300 {
            json_error_headers(error_type)
        } else {
            vec![(
                "Content-Type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            )]
        };
        Reply::Trickle {
            status,
            headers,
            body: vec![b' '; 1 << 20],
            chunk: 1,
            interval,
        }
    }
}

/// The headers of an AWS JSON 1.1 error answer.
fn json_error_headers(error_type: &str) -> Vec<(String, String)> {
    vec![
        (
            "Content-Type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amzn-ErrorType".to_owned(), error_type.to_owned()),
    ]
}

/// One request as received. Header names are lower-cased; values are trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method, e.g. `"POST"`.
    pub method: String,
    /// The request target as sent, e.g. `"/"`.
    pub path: String,
    /// Every header in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was sent with `Transfer-Encoding: chunked`.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `X-Amz-Target` header, e.g. `"TrentService.Decrypt"` (KMS) or
    /// `"secretsmanager.GetSecretValue"`. `None` for query-protocol calls (STS).
    pub fn target(&self) -> Option<&str> {
        self.header("x-amz-target")
    }

    /// The access key id from the SigV4 `Authorization` header
    /// (`AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...`).
    pub fn access_key_id(&self) -> Option<&str> {
        let auth = self.header("authorization")?;
        let start = auth.find("Credential=")? + "Credential=".len();
        let rest = &auth[start..];
        let end = rest.find('/')?;
        Some(&rest[..end])
    }

    /// For query-protocol calls (STS): the decoded value of `Action=` in the form-encoded body,
    /// e.g. `"AssumeRole"`.
    pub fn query_action(&self) -> Option<String> {
        self.form_param("Action")
    }

    /// For query-protocol calls: the decoded value of form parameter `name` in the body, e.g.
    /// `form_param("ExternalId")`.
    pub fn form_param(&self, name: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.body).ok()?;
        body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// The decoded value of query parameter `name` in the request target, e.g.
    /// `query_param("continuation-token")` of an S3 ListObjectsV2 call.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }

    /// The body as UTF-8 text (lossy), for asserting on JSON request fields.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The responder a peer calls for each request.
type Responder = dyn Fn(&Request) -> Reply + Send + Sync + 'static;

/// State shared by the peer handle, its accept thread and its connection threads.
struct Shared {
    respond: Box<Responder>,
    stop: AtomicBool,
    requests: Mutex<Vec<Request>>,
    /// A clone of every open connection's stream, so `Drop` can shut them down.
    open: Mutex<HashMap<u64, TcpStream>>,
    /// Connection threads not yet known to have finished.
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_conn: AtomicU64,
}

/// Locks `m`, ignoring poisoning (a panicking responder must not wedge the peer).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fault-injecting AWS peer on `127.0.0.1` with an ephemeral port.
///
/// Thread-safety: `FaultPeer` is `Send + Sync`; [`requests`](Self::requests) and
/// [`count_target`](Self::count_target) may be called from any thread while requests are in
/// flight. Each connection is served on its own thread, so the responder runs concurrently for
/// concurrent connections. Dropping the peer stops accepting, shuts down every open connection
/// (releasing [`Reply::Hang`]), and waits up to two seconds for the connection threads (which
/// only a responder that blocks could exceed; such threads are left detached).
pub struct FaultPeer {
    endpoint: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultPeer {
    /// Starts the peer; `respond` decides the reply for each request (called on the
    /// connection's thread, after the request has been recorded).
    ///
    /// Panics only if no loopback port can be bound or no thread spawned (test setup failure).
    pub fn start(respond: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FaultPeer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("fault peer: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault peer: local_addr");
        let shared = Arc::new(Shared {
            respond: Box::new(respond),
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            open: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("fault-peer-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared))
                .expect("fault peer: spawn accept thread")
        };
        FaultPeer {
            endpoint: format!("http://{addr}"),
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Starts a peer that answers the n-th request with `replies[n]`, and every request after
    /// the last with `then` — e.g. `[throttle, throttle]` then success, to test retries.
    /// Requests are numbered in the order they are received, across all targets.
    pub fn sequence(replies: Vec<Reply>, then: Reply) -> FaultPeer {
        let next = AtomicU64::new(0);
        FaultPeer::start(move |_| {
            let n = next.fetch_add(1, Ordering::SeqCst);
            usize::try_from(n)
                .ok()
                .and_then(|n| replies.get(n))
                .unwrap_or(&then)
                .clone()
        })
    }

    /// `"http://127.0.0.1:<port>"`, for `endpoint_url` or `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The socket address the peer listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in the order received (a request is recorded as soon as
    /// it has been read in full, before the responder runs).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests have been received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// How many requests had this `X-Amz-Target`, e.g. `count_target("TrentService.Decrypt")`.
    pub fn count_target(&self, target: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.target() == Some(target))
            .count()
    }

    /// How many query-protocol requests had this `Action`, e.g. `count_action("AssumeRole")`.
    pub fn count_action(&self, action: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.query_action().as_deref() == Some(action))
            .count()
    }

    /// How many connections are open right now (e.g. to check that the client dropped a
    /// connection it timed out on).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.open).len()
    }
}

impl Drop for FaultPeer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection to ourselves; it sees `stop` and returns.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok();
        if let Some(acceptor) = self.acceptor.take() {
            if woke {
                let _ = acceptor.join();
            }
            // If the wake-up connect failed the accept thread is left detached; it exits at the
            // next connection it accepts.
        }
        // No connection is registered after the accept thread has stopped (or sees `stop`).
        for stream in lock(&self.shared.open).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + DROP_JOIN_WAIT;
        loop {
            let remaining = {
                let mut threads = lock(&self.shared.threads);
                for t in std::mem::take(&mut *threads) {
                    if t.is_finished() {
                        let _ = t.join();
                    } else {
                        threads.push(t);
                    }
                }
                threads.len()
            };
            if remaining == 0 || Instant::now() >= deadline {
                // Threads still running past the deadline are left detached.
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// An endpoint URL on 127.0.0.1 where nothing listens: an ephemeral port is bound and released
/// at once, so connections to it are refused (unless another process happens to take the port
/// in between, which the OS makes unlikely).
pub fn refused_endpoint() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("fault peer: bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("fault peer: local_addr");
    drop(listener);
    format!("http://{addr}")
}

/// Accepts connections until `stop` is set, one thread each.
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Transient accept errors (e.g. a connection reset before accept): keep serving.
            thread::sleep(Duration::from_millis(1));
            continue;
        };
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        lock(&shared.open).insert(id, registered);
        let conn_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("fault-peer-conn-{id}"))
            .spawn(move || {
                let _guard = ConnGuard {
                    shared: &conn_shared,
                    id,
                };
                serve_connection(stream, &conn_shared);
            });
        match spawned {
            Ok(handle) => {
                let mut threads = lock(&shared.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(_) => {
                if let Some(s) = lock(&shared.open).remove(&id) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// Unregisters and shuts down a connection when its thread ends, even by a responder's panic,
/// so the client sees the connection close instead of hanging on the registered clone.
struct ConnGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        if let Some(s) = lock(&self.shared.open).remove(&self.id) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Serves requests on one connection until EOF, an I/O error, a malformed request,
/// `Connection: close`, a `Close`/`Hang` reply, or the peer stopping.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while !shared.stop.load(Ordering::SeqCst) {
        let (request, keep_alive) = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            // Clean EOF, an I/O error or a malformed request: end the connection.
            Ok(None) | Err(_) => return,
        };
        lock(&shared.requests).push(request.clone());
        let reply = (shared.respond)(&request);
        match act(reply, &mut reader, shared) {
            Ok(true) if keep_alive => {}
            _ => return,
        }
    }
}

/// Carries out `reply`. `Ok(true)` if the connection may serve another request.
fn act(reply: Reply, reader: &mut BufReader<TcpStream>, shared: &Shared) -> io::Result<bool> {
    match reply {
        Reply::AwsError {
            status,
            error_type,
            message,
        } => {
            let body = format!(
                "{{\"__type\":\"{}\",\"message\":\"{}\"}}",
                json_escape(&error_type),
                json_escape(&message)
            );
            let headers = vec![
                (
                    "Content-Type".to_owned(),
                    "application/x-amz-json-1.1".to_owned(),
                ),
                ("x-amzn-ErrorType".to_owned(), error_type),
            ];
            write_response(reader.get_mut(), status, &headers, body.as_bytes())?;
            Ok(true)
        }
        Reply::Body {
            status,
            body,
            content_type,
        } => {
            let headers = vec![("Content-Type".to_owned(), content_type)];
            write_response(reader.get_mut(), status, &headers, &body)?;
            Ok(true)
        }
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            write_response(reader.get_mut(), status, &headers, &body)?;
            Ok(true)
        }
        Reply::Truncated {
            status,
            headers,
            declared,
            body,
        } => {
            let stream = reader.get_mut();
            write_head(stream, status, &headers, declared)?;
            stream.write_all(&body)?;
            stream.flush()?;
            let _ = stream.shutdown(Shutdown::Both);
            Ok(false)
        }
        Reply::Trickle {
            status,
            headers,
            body,
            chunk,
            interval,
        } => {
            let stream = reader.get_mut();
            write_head(stream, status, &headers, body.len() as u64)?;
            stream.flush()?;
            for piece in body.chunks(chunk.max(1)) {
                if !pause(interval, shared) {
                    return Ok(false);
                }
                stream.write_all(piece)?;
                stream.flush()?;
            }
            let _ = stream.shutdown(Shutdown::Both);
            Ok(false)
        }
        Reply::Hang => {
            // Hold the connection: drain (and ignore) whatever the client sends until it closes
            // the connection or the peer's drop shuts the socket down.
            let mut sink = [0u8; 4096];
            while !shared.stop.load(Ordering::SeqCst) {
                match reader.read(&mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            Ok(false)
        }
        Reply::Close => {
            let _ = reader.get_ref().shutdown(Shutdown::Both);
            Ok(false)
        }
        Reply::Delayed { delay, then } => {
            if !pause(delay, shared) {
                return Ok(false);
            }
            act(*then, reader, shared)
        }
        Reply::Huge {
            status,
            headers,
            prefix,
            filler,
            filler_len,
            suffix,
        } => {
            let declared = prefix.len() as u64 + filler_len + suffix.len() as u64;
            let stream = reader.get_mut();
            write_head(stream, status, &headers, declared)?;
            stream.write_all(&prefix)?;
            let block = [filler; 64 * 1024];
            let mut left = filler_len;
            while left > 0 {
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(false);
                }
                let n = left.min(block.len() as u64) as usize;
                stream.write_all(&block[..n])?;
                left -= n as u64;
            }
            stream.write_all(&suffix)?;
            stream.flush()?;
            let _ = stream.shutdown(Shutdown::Both);
            Ok(false)
        }
    }
}

/// Waits `delay` in short slices; `false` if the peer was dropped meanwhile.
fn pause(delay: Duration, shared: &Shared) -> bool {
    let until = Instant::now() + delay;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep(DELAY_SLICE.min(until - now));
    }
}

/// Writes a response head announcing `declared` body bytes and `Connection: close`, then flushes.
fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    declared: u64,
) -> io::Result<()> {
    stream.write_all(response_head(status, headers, declared, "close").as_bytes())?;
    stream.flush()
}

/// A response head: status line, `headers`, an `x-amzn-RequestId`, `Content-Length:
/// content_length` and `Connection: connection`.
fn response_head(
    status: u16,
    headers: &[(String, String)],
    content_length: u64,
    connection: &str,
) -> String {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let _ = write!(
        head,
        "x-amzn-RequestId: {}\r\nContent-Length: {content_length}\r\nConnection: {connection}\r\n\r\n",
        request_id()
    );
    head
}

/// An `InvalidData` I/O error: the request is malformed.
fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one line ending in `\n` (the `\r\n` or `\n` stripped), charging its length to
/// `budget`. `Ok(None)` on EOF before any byte; an error on EOF mid-line or an exhausted budget.
fn read_line(reader: &mut BufReader<TcpStream>, budget: &mut usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(*budget as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return if *budget == 0 {
            Err(malformed("request head too large"))
        } else {
            Ok(None)
        };
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        return Err(malformed("truncated line"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| malformed("non-UTF-8 line"))
}

/// Reads one request. `Ok(None)` on a clean EOF between requests. The `bool` is whether the
/// connection may be kept alive after the response. Sends `100 Continue` if asked.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<(Request, bool)>> {
    let mut budget = MAX_HEAD_BYTES;
    // Skip empty lines before the request line (RFC 9112 §2.2).
    let request_line = loop {
        match read_line(reader, &mut budget)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("bad request line"));
    };
    if method.is_empty() || path.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(malformed("bad request line"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?.ok_or_else(|| malformed("EOF in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed("header without colon"))?;
        if name.is_empty() || name.trim() != name {
            return Err(malformed("bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: Vec::new(),
    };

    let connection = request
        .header("connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };

    let chunked = match request.header("transfer-encoding") {
        None => false,
        Some(te) => {
            if te.rsplit(',').next().map(|c| c.trim().to_ascii_lowercase())
                != Some("chunked".to_owned())
            {
                return Err(malformed("unsupported transfer-encoding"));
            }
            true
        }
    };
    let content_length = if chunked {
        None
    } else {
        let mut lengths = request
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| {
                v.parse::<usize>()
                    .map_err(|_| malformed("bad content-length"))
            });
        let first = lengths.next().transpose()?;
        for other in lengths {
            if Some(other?) != first {
                return Err(malformed("conflicting content-length"));
            }
        }
        first
    };
    let has_body = chunked || content_length.unwrap_or(0) > 0;
    if has_body
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        let stream = reader.get_mut();
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        stream.flush()?;
    }

    if chunked {
        request.body = read_chunked(reader)?;
    } else if let Some(len) = content_length {
        if len > MAX_BODY_BYTES {
            return Err(malformed("body too large"));
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some((request, keep_alive)))
}

/// Reads a `Transfer-Encoding: chunked` body (trailers are read and dropped).
fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    loop {
        let line = read_line(reader, &mut budget)?.ok_or_else(|| malformed("EOF in chunk size"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| malformed("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let t =
                    read_line(reader, &mut budget)?.ok_or_else(|| malformed("EOF in trailer"))?;
                if t.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err(malformed("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let end = read_line(reader, &mut budget)?.ok_or_else(|| malformed("EOF after chunk"))?;
        if !end.is_empty() {
            return Err(malformed("chunk not followed by CRLF"));
        }
        // Chunk data does not count against the head budget; refill it per chunk.
        budget = MAX_HEAD_BYTES;
    }
}

/// Writes a complete response with `Content-Length`, `Connection: keep-alive` and an
/// `x-amzn-RequestId`, then flushes.
fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let head = response_head(status, headers, body.len() as u64, "keep-alive");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}

/// The reason phrase for common statuses (clients ignore it; it only helps reading traces).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// A fresh UUID-shaped request id (unique per process; not random).
fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t & 0xfff) as u16,
        std::process::id() & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// Escapes `s` for use inside a JSON string literal.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes `s` for use as XML text.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space; bad escapes are
/// kept as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
