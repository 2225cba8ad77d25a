//! The S3 flavour of the fault peer ([`super::fault_peer`]): S3 XML errors, object bodies and a
//! lying Content-Length, answered by the same loopback server (127.0.0.1 only) that records every
//! request. What an emulator cannot do: reject credentials in a chosen way, send a truncated or
//! oversized object, or never answer.

use super::fault_peer::{FaultPeer, Reply};

pub use super::fault_peer::Request;

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

    fn into_reply(self) -> Reply {
        match self {
            Response::Reply(status, headers, body) => Reply::Raw {
                status,
                headers,
                body,
            },
            Response::Lying { declared, sent } => Reply::Truncated {
                status: 200,
                headers: vec![("content-type".into(), "application/octet-stream".into())],
                declared,
                body: sent,
            },
            Response::Hang => Reply::Hang,
        }
    }
}

/// A scripted S3 server; stops when dropped.
pub struct FakeS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    peer: FaultPeer,
}

impl FakeS3 {
    /// Starts serving; `handler` decides every answer.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeS3 {
        let peer = FaultPeer::start(move |request| handler(request).into_reply());
        FakeS3 {
            endpoint: peer.endpoint().to_owned(),
            peer,
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.peer.requests()
    }

    /// How many client connections are open right now (idle pooled ones included).
    pub fn open_connections(&self) -> usize {
        self.peer.open_connections()
    }
}
