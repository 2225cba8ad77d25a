//! The S3 flavour of the fault peer ([`super::fault_peer`]): S3 XML errors, object bodies, a
//! lying Content-Length, listing pages, slow bodies and hostile listings, answered by the same
//! loopback server (127.0.0.1 only) that records every request. What an emulator cannot do: reject
//! credentials in a chosen way, send a truncated or oversized object, trickle a body, loop a
//! listing, or never answer.

use std::time::Duration;

use super::fault_peer::{FaultPeer, Reply};

pub use super::fault_peer::Request;

/// What the server does with a request.
pub enum Response {
    /// Status, extra headers, body (Content-Length is added).
    Reply(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers announcing `declared` body bytes, then `sent` bytes, then close.
    Lying { declared: u64, sent: Vec<u8> },
    /// Status, extra headers and a body (Content-Length announces all of it) sent `chunk` bytes
    /// at a time, `interval` apart: a slow body. See [`Response::trickled`].
    Trickle {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunk: usize,
        interval: Duration,
    },
    /// Never answer; keep the connection open until the client gives up.
    Hang,
    /// An S3 error document with `status` and `code` whose message is `message_len` bytes of
    /// `A`, streamed without being held in memory: a huge error body.
    HugeError {
        status: u16,
        code: String,
        message_len: u64,
    },
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

    /// A ListObjectsV2 page of bucket `fake-bucket` under prefix `ks/` with delimiter `/`:
    /// `keys` as objects and `ks/sub/` as a sub-folder; `IsTruncated` is `truncated`, and `next`
    /// (if given) the `NextContinuationToken`.
    pub fn list_page(keys: &[&str], truncated: bool, next: Option<&str>) -> Response {
        let mut body = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult \
             xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>fake-bucket</Name>\
             <Prefix>ks/</Prefix><Delimiter>/</Delimiter><MaxKeys>1000</MaxKeys>",
        );
        body.push_str(&format!("<KeyCount>{}</KeyCount>", keys.len()));
        body.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        if let Some(next) = next {
            body.push_str(&format!(
                "<NextContinuationToken>{next}</NextContinuationToken>"
            ));
        }
        for key in keys {
            body.push_str(&format!(
                "<Contents><Key>{key}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
                 <ETag>&quot;0&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass>\
                 </Contents>"
            ));
        }
        body.push_str(
            "<CommonPrefixes><Prefix>ks/sub/</Prefix></CommonPrefixes></ListBucketResult>",
        );
        Response::Reply(
            200,
            vec![("content-type".into(), "application/xml".into())],
            body.into_bytes(),
        )
    }

    /// This `Reply` with its body sent `chunk` bytes at a time, `interval` apart (the head at
    /// once, announcing the whole length). Other responses are returned unchanged.
    pub fn trickled(self, chunk: usize, interval: Duration) -> Response {
        match self {
            Response::Reply(status, headers, body) => Response::Trickle {
                status,
                headers,
                body,
                chunk,
                interval,
            },
            other => other,
        }
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
            Response::Trickle {
                status,
                headers,
                body,
                chunk,
                interval,
            } => Reply::Trickle {
                status,
                headers,
                body,
                chunk,
                interval,
            },
            Response::Hang => Reply::Hang,
            Response::HugeError {
                status,
                code,
                message_len,
            } => Reply::Huge {
                status,
                headers: vec![("content-type".into(), "application/xml".into())],
                prefix: format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>"
                )
                .into_bytes(),
                filler: b'A',
                filler_len: message_len,
                suffix: b"</Message><RequestId>fake-1</RequestId></Error>".to_vec(),
            },
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

/// Whether `request` is a ListObjectsV2 call.
pub fn is_list(request: &Request) -> bool {
    request.method == "GET" && request.path.contains("list-type=2")
}

/// Hostile or broken ListObjectsV2 servers (as [`FakeS3::start`] handlers, answering every
/// request with a listing page). Each page depends only on the request's continuation token, so
/// none of them ever runs out of pages.
pub mod hostile_listing {
    use super::{Request, Response};

    /// Every page truncated, with tokens `A`, `B`, `A`, `B`, …: each token differs from the one
    /// before it, so only remembering every token seen catches the loop.
    pub fn alternating_tokens(request: &Request) -> Response {
        let next = match request.query_param("continuation-token").as_deref() {
            Some("A") => "B",
            _ => "A",
        };
        Response::list_page(&["ks/a.kms"], true, Some(next))
    }

    /// Every page truncated with a token never sent before (`fresh-1`, `fresh-2`, …), listing
    /// `keys_per_page` keys never listed before (`ks/p<page>-<i>.kms`).
    pub fn fresh_tokens(keys_per_page: usize) -> impl Fn(&Request) -> Response + Send + Sync {
        move |request| {
            let page: u64 = request
                .query_param("continuation-token")
                .and_then(|t| t.strip_prefix("fresh-")?.parse().ok())
                .unwrap_or(0);
            let keys: Vec<String> = (0..keys_per_page)
                .map(|i| format!("ks/p{page}-{i}.kms"))
                .collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            Response::list_page(&keys, true, Some(&format!("fresh-{}", page + 1)))
        }
    }

    /// Two pages that both list `ks/b.kms`: `a`, `b`, then `b`, `c` (the last page).
    pub fn repeated_key(request: &Request) -> Response {
        match request.query_param("continuation-token").as_deref() {
            None => Response::list_page(&["ks/a.kms", "ks/b.kms"], true, Some("page-2")),
            Some(_) => Response::list_page(&["ks/b.kms", "ks/c.kms"], false, None),
        }
    }
}
