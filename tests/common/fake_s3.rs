//! A scripted loopback HTTP server that speaks just enough of S3's wire protocol to test what an
//! emulator cannot: it records every request (method, path, headers, body) and answers each with
//! what the test's handler returns — an S3 XML error, a lying Content-Length, or no answer at all.
//! One thread per connection; every response closes its connection. Listens on 127.0.0.1 only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as the server received it. Header names are lower-case.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The access key id in the SigV4 `Authorization` header (`Credential=<id>/<date>/...`).
    pub fn access_key_id(&self) -> Option<&str> {
        let auth = self.header("authorization")?;
        let after = auth.split("Credential=").nth(1)?;
        after.split('/').next()
    }
}

/// What the server does with a request.
pub enum Response {
    /// Status, extra headers, body (Content-Length is added).
    Reply(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers announcing `declared` body bytes, then `sent` bytes, then close.
    Lying { declared: u64, sent: Vec<u8> },
    /// Never answer; keep the connection open until the client gives up.
    Hang,
}

impl Response {
    pub fn ok() -> Response {
        Response::Reply(200, Vec::new(), Vec::new())
    }

    pub fn object(bytes: &[u8]) -> Response {
        Response::Reply(
            200,
            vec![("content-type".into(), "application/octet-stream".into())],
            bytes.to_vec(),
        )
    }

    /// An S3 error document.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message><RequestId>fake-1</RequestId></Error>"
        );
        Response::Reply(
            status,
            vec![("content-type".into(), "application/xml".into())],
            body.into_bytes(),
        )
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

pub struct FakeS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeS3 {
    /// Starts serving; `handler` decides every answer. The server lives until the process ends.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (handler, recorded) = (handler.clone(), recorded.clone());
                std::thread::spawn(move || serve(stream, &*handler, &recorded));
            }
        });
        FakeS3 { endpoint, requests }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, recorded: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    recorded.lock().unwrap().push(request.clone());
    let mut stream = stream;
    match handler(&request) {
        Response::Reply(status, headers, body) => {
            let mut head = format!("HTTP/1.1 {status} Fake\r\n");
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            ));
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
        Response::Lying { declared, sent } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n\
                 content-length: {declared}\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&sent);
        }
        Response::Hang => {
            // Block until the client closes the connection.
            let mut sink = [0u8; 1024];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        }
    }
    let _ = stream.flush();
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}
