//! No secret in any message or log line (issue #10, "make it permanent").
//!
//! Every scenario here is hostile: a peer that echoes our requests (bodies, headers) into its
//! error messages, answers with malformed or wrong-sized key material, endpoints that cannot be
//! used, registry YAML with secrets next to its mistakes. The suite collects every error message
//! (`Display`, `Debug`) and every log line that reaches the host — through a TRACE-level
//! `tracing` subscriber, as a Rust host that logs everything would install, and through the
//! library's own log callback at its most verbose level — then asserts that no KEK, wrap key,
//! ExternalId, credential or secret value appears in it: raw, hex (either case) or base64
//! (standard or URL-safe, padded or not), in whole or in any 18-byte part.

mod common;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_smithy_types::base64;
use common::fake_s3::{FakeS3, Response};
use common::fault_peer::{FaultPeer, Reply, Request};
use common::log_scan::{self, needles};
use cyborgdb_kms::kms::AssumeRole;
use cyborgdb_kms::{
    get_index_kms, AwsTimeouts, Kek, KekCacheOptions, KekResolver, KmsBlob, KmsClient,
    KmsClientOptions, Provider, Registry, S3Credentials, S3Options, Slot, StorageConfig,
};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The BYOK slot's key, in the customer's account.
const CUSTOMER_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/0badc0de-12ab-34cd-56ef-1234567890ab";

/// The KEK the tests wrap (distinct bytes, so any 18-byte window is recognisable).
const KEK: [u8; 32] = [
    0x3c, 0x91, 0x0e, 0xd7, 0x52, 0xa8, 0x6f, 0x14, 0xc3, 0x7b, 0xe9, 0x20, 0x85, 0x4d, 0xfa, 0x36,
    0x01, 0xbe, 0x68, 0x9f, 0x27, 0xd2, 0x43, 0x7e, 0xac, 0x15, 0xf0, 0x59, 0x8b, 0x34, 0xc6, 0x0d,
];
/// The Secrets Manager wrap key (and a wrong-sized variant of it).
const WRAP_KEY: [u8; 32] = [
    0xa7, 0x12, 0xfe, 0x38, 0xc4, 0x5d, 0x90, 0x6b, 0x2e, 0xd1, 0x47, 0x88, 0x19, 0xbc, 0x63, 0xf5,
    0x0a, 0x9e, 0x31, 0xcd, 0x74, 0x28, 0xe3, 0x56, 0xbf, 0x02, 0x8d, 0x61, 0xfa, 0x17, 0xc9, 0x4e,
];
const EXTERNAL_ID: &str = "ExtId-5c1f9a1e-7d42-4b8e-a3c0-TOPSECRET";
const ROLE_SECRET_KEY: &str = "RoleSecretKey/x9Qm2Lp7Vt4Ws8Zr1Nb6Yc3Hd5Kf0Gj";
const ROLE_SESSION_TOKEN: &str = "FwoGZXIvYXdzEJr//////////wEaDRoleSessionTokenSECRET0123456789";
const S3_SECRET_KEY: &str = "S3SecretKey/wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz";
const S3_SESSION_TOKEN: &str = "S3SessionToken/IQoJb3JpZ2luX2VjEAoaCXVzLWVhc3QtMSJHMEUCIQDzz";
const PASSWORD_SECRET: &str = "correct-horse-battery-staple-hunter2-PASSWORD";

fn secrets() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("KEK", KEK.to_vec()),
        ("wrap key", WRAP_KEY.to_vec()),
        ("ExternalId", EXTERNAL_ID.as_bytes().to_vec()),
        ("role secret key", ROLE_SECRET_KEY.as_bytes().to_vec()),
        ("role session token", ROLE_SESSION_TOKEN.as_bytes().to_vec()),
        ("S3 secret key", S3_SECRET_KEY.as_bytes().to_vec()),
        ("S3 session token", S3_SESSION_TOKEN.as_bytes().to_vec()),
        ("password-like secret", PASSWORD_SECRET.as_bytes().to_vec()),
    ]
}

/// Everything the library said: error messages and log lines.
fn seen() -> &'static Mutex<Vec<(String, String)>> {
    static SEEN: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(Vec::new()))
}

fn record(origin: &str, text: String) {
    seen().lock().unwrap().push((origin.to_owned(), text));
}

/// Records an error's `Display` and `Debug`, and returns it.
fn said<T: std::fmt::Debug>(origin: &str, result: cyborgdb_kms::Result<T>) -> cyborgdb_kms::Error {
    let err = match result {
        Ok(value) => panic!("{origin}: expected an error, got {value:?}"),
        Err(err) => err,
    };
    record(origin, err.to_string());
    record(origin, format!("{err:?}"));
    err
}

/// Records the error's `Display` and `Debug` if `result` is one (some hostile answers may still
/// let a call succeed, e.g. a wrap whose key fetch is fine).
fn said_if_failed<T>(origin: &str, result: cyborgdb_kms::Result<T>) {
    if let Err(err) = result {
        record(origin, err.to_string());
        record(origin, format!("{err:?}"));
    }
}

/// A `tracing` subscriber that keeps every event and span field at every level.
mod log_capture {
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    pub struct Capture {
        next_id: AtomicU64,
    }

    impl Capture {
        pub fn install() {
            let _ = tracing::subscriber::set_global_default(Capture {
                next_id: AtomicU64::new(1),
            });
        }
    }

    fn keep(meta: &Metadata<'_>, fields: String) {
        super::record(
            "log",
            format!("{} {} {}{fields}", meta.level(), meta.target(), meta.name()),
        );
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
            Some(tracing::level_filters::LevelFilter::TRACE)
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let mut fields = Fields(String::new());
            span.record(&mut fields);
            keep(span.metadata(), fields.0);
            Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            let mut fields = Fields(String::new());
            values.record(&mut fields);
            super::record("log", format!("span record{}", fields.0));
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            keep(event.metadata(), fields.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

fn timeouts() -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(5),
        max_attempts: Some(1),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

fn client(endpoint: &str) -> KmsClient {
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: Some(endpoint.to_owned()),
        timeouts: timeouts(),
        ..KmsClientOptions::default()
    })
    .unwrap();
    let slot = |provider, key_id: &str, role: Option<AssumeRole>| Slot {
        assume_role: role,
        ..Slot::new(provider, key_id, "us-east-1")
    };
    client
        .add_slot("kms", slot(Provider::AwsKms, KEY_ARN, None))
        .unwrap();
    client
        .add_slot("sm", slot(Provider::Aws, "customers/acme/kek", None))
        .unwrap();
    let role = AssumeRole {
        role_arn: "arn:aws:iam::111122223333:role/cyborgdb-byok".into(),
        external_id: EXTERNAL_ID.into(),
        session_name: None,
    };
    client
        .add_slot("byok", slot(Provider::AwsKms, CUSTOMER_KEY_ARN, Some(role)))
        .unwrap();
    client
}

/// An envelope of slot `kms_name` with `provider`, `key_id` and `wrapped_kek`.
fn envelope(kms_name: &str, provider: &str, key_id: &str, wrapped_kek: Vec<u8>) -> KmsBlob {
    KmsBlob {
        kms_name: kms_name.into(),
        provider: provider.into(),
        key_id: key_id.into(),
        region: "us-east-1".into(),
        wrapped_kek,
        version: 1,
        created_at: 0,
    }
}

fn kek() -> Kek {
    Kek::from_slice(&KEK).unwrap()
}

fn json_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '"' => "\\\"".chars().collect::<Vec<_>>(),
            '\\' => "\\\\".chars().collect(),
            c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Everything the peer received in `request`, as a hostile echo: head and body.
fn echo(request: &Request) -> String {
    let mut text = format!("{} {}", request.method, request.path);
    for (name, value) in &request.headers {
        text.push_str(&format!(" {name}: {value};"));
    }
    text.push(' ');
    text.push_str(&request.body_text());
    text
}

fn is_sts(request: &Request) -> bool {
    request.query_action().as_deref() == Some("AssumeRole")
}

/// How a hostile peer answers.
type Responder = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

/// KMS, Secrets Manager and STS peers that echo everything back, answer with key material of the
/// wrong shape, or say nothing useful.
fn kms_scenarios() {
    let sm_value = |bytes: &[u8]| {
        Reply::json(&format!(
            r#"{{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:customers/acme/kek-AbCdEf","Name":"customers/acme/kek","SecretBinary":"{}","VersionId":"v1"}}"#,
            base64::encode(bytes)
        ))
    };
    let sm_string = |text: &str| {
        Reply::json(&format!(
            r#"{{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:customers/acme/kek-AbCdEf","Name":"customers/acme/kek","SecretString":"{}","VersionId":"v1"}}"#,
            json_escape(text)
        ))
    };
    let decrypt_plaintext = |bytes: &[u8]| {
        Reply::json(&format!(
            r#"{{"KeyId":"{KEY_ARN}","Plaintext":"{}","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}"#,
            base64::encode(bytes)
        ))
    };
    let echo_as = |status: u16, error_type: &'static str| {
        move |request: &Request| Reply::aws_error(status, error_type, &echo(request))
    };
    let cases: Vec<(&str, Responder)> = vec![
        (
            "Encrypt: 400 echoing the request",
            Box::new(echo_as(400, "ValidationException")),
        ),
        (
            "Encrypt: AccessDenied echoing",
            Box::new(echo_as(400, "AccessDeniedException")),
        ),
        (
            "Encrypt: 500 echoing",
            Box::new(echo_as(500, "KMSInternalException")),
        ),
        (
            "Encrypt: unknown code echoing",
            Box::new(echo_as(418, "TeapotException")),
        ),
        (
            "Encrypt: HTML 503 echoing",
            Box::new(|request: &Request| Reply::Body {
                status: 503,
                body: format!("<html><body>{}</body></html>", echo(request)).into_bytes(),
                content_type: "text/html".into(),
            }),
        ),
        (
            "Encrypt: malformed 200 echoing",
            Box::new(|request: &Request| Reply::json(&format!("{{not json {}", echo(request)))),
        ),
        (
            "Encrypt: truncated echo",
            Box::new(|request: &Request| Reply::Truncated {
                status: 200,
                headers: vec![("Content-Type".into(), "application/x-amz-json-1.1".into())],
                declared: 100_000,
                body: echo(request).into_bytes(),
            }),
        ),
    ];
    for (name, respond) in cases {
        let peer = FaultPeer::start(respond);
        let client = client(peer.endpoint());
        said(name, client.wrap_kek("orders", "kms", &kek()));
        said(name, client.wrap_kek("orders", "sm", &kek()));
        // And the same peer as the unwrap side.
        let blob = envelope("kms", "aws-kms", KEY_ARN, KEK.to_vec());
        said(name, client.unwrap_kek("orders", &blob));
    }

    // Key material of the wrong shape in a successful answer.
    let wrong: Vec<(&str, Reply)> = vec![
        ("Decrypt: 31-byte plaintext", decrypt_plaintext(&KEK[..31])),
        ("Decrypt: 33-byte plaintext", {
            let mut long = KEK.to_vec();
            long.push(0);
            decrypt_plaintext(&long)
        }),
        (
            "Decrypt: plaintext not base64",
            Reply::json(&format!(
                r#"{{"KeyId":"{KEY_ARN}","Plaintext":"{}!!"}}"#,
                base64::encode(KEK)
            )),
        ),
        (
            "Decrypt: plaintext in a broken document",
            Reply::json(&format!(
                r#"{{"KeyId":"{KEY_ARN}","Plaintext":"{}""#,
                base64::encode(KEK)
            )),
        ),
        ("GetSecretValue: 31-byte binary", sm_value(&WRAP_KEY[..31])),
        (
            "GetSecretValue: password string",
            sm_string(PASSWORD_SECRET),
        ),
        (
            "GetSecretValue: base64 of 31 bytes",
            sm_string(&base64::encode(&WRAP_KEY[..31])),
        ),
        (
            "GetSecretValue: hex string",
            sm_string(
                &WRAP_KEY
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ),
        ),
    ];
    for (name, reply) in wrong {
        let peer = FaultPeer::start(move |_| reply.clone());
        let client = client(peer.endpoint());
        let kms_blob = envelope("kms", "aws-kms", KEY_ARN, vec![1; 64]);
        said_if_failed(name, client.unwrap_kek("orders", &kms_blob));
        let sm_blob = envelope("sm", "aws", "customers/acme/kek", vec![1; 61]);
        said_if_failed(name, client.unwrap_kek("orders", &sm_blob));
        said_if_failed(name, client.wrap_kek("orders", "sm", &kek()));
    }

    // BYOK: STS echoes the AssumeRole form (ExternalId included) in its error; or grants the role
    // and KMS echoes the signed request (session token header included).
    let byok_blob = envelope("byok", "aws-kms", CUSTOMER_KEY_ARN, vec![1; 64]);
    for status in [400u16, 403, 500] {
        let peer = FaultPeer::start(move |request: &Request| {
            let text = xml_escape(&echo(request));
            Reply::query_error(status, "AccessDenied", &text)
        });
        let client = client(peer.endpoint());
        said(
            "STS error echoing the form",
            client.unwrap_kek("orders", &byok_blob),
        );
        said(
            "STS error echoing the form",
            client.wrap_kek("orders", "byok", &kek()),
        );
    }
    let peer = FaultPeer::start(|request: &Request| {
        if is_sts(request) {
            Reply::assume_role(
                "ASIAROLEKEY",
                ROLE_SECRET_KEY,
                ROLE_SESSION_TOKEN,
                "2099-01-01T00:00:00Z",
            )
        } else {
            Reply::aws_error(400, "AccessDeniedException", &echo(request))
        }
    });
    let client = client(peer.endpoint());
    said(
        "KMS echoing role-signed request",
        client.unwrap_kek("orders", &byok_blob),
    );
    said(
        "KMS echoing role-signed request",
        client.wrap_kek("orders", "byok", &kek()),
    );
}

/// S3 peers that echo the request (with its session-token header) into XML error bodies.
fn s3_scenarios() {
    for status in [400u16, 403, 404, 409, 412, 500, 503] {
        let s3 = FakeS3::start(move |request| {
            Response::error(
                status,
                "AccessDenied",
                &xml_escape(&format!(
                    "{} {} {:?}",
                    request.method, request.path, request.headers
                )),
            )
        });
        let store = StorageConfig::s3(
            "envelopes",
            S3Options {
                region: Some("us-east-1".into()),
                endpoint: Some(s3.endpoint.clone()),
                credentials: Some(S3Credentials {
                    access_key: "S3ACCESSKEY".into(),
                    secret_key: S3_SECRET_KEY.into(),
                    session_token: Some(S3_SESSION_TOKEN.into()),
                }),
                ..S3Options::default()
            },
        )
        .unwrap();
        record("S3 store Debug", format!("{store:?}"));
        said("S3 get echoing", get_index_kms(&store, "orders"));
        let blob = envelope("kms", "aws-kms", KEY_ARN, KEK.to_vec());
        said(
            "S3 create echoing",
            cyborgdb_kms::create_index_kms(&store, "orders", &blob),
        );
        said("S3 list echoing", cyborgdb_kms::list_index_kms(&store));
    }
}

/// Endpoints that cannot be used (issue #10 finding 2): refused, or failing without the body.
fn endpoint_scenarios() {
    for url in [
        "http://[::1",
        "http://%zz",
        "http://[::1]:99999",
        "http://user:ExtId-5c1f9a1e-7d42-4b8e-a3c0-TOPSECRET@127.0.0.1:9",
        "http:// 127.0.0.1",
        "ftp://127.0.0.1:9",
    ] {
        match KmsClient::new(KmsClientOptions {
            endpoint_url: Some(url.to_owned()),
            timeouts: timeouts(),
            ..KmsClientOptions::default()
        }) {
            Err(e) => {
                record(url, e.to_string());
                record(url, format!("{e:?}"));
            }
            Ok(client) => {
                client
                    .add_slot("kms", Slot::new(Provider::AwsKms, KEY_ARN, "us-east-1"))
                    .unwrap();
                said(url, client.wrap_kek("orders", "kms", &kek()));
            }
        }
    }
}

/// Registry YAML whose mistakes sit next to an ExternalId.
fn registry_scenarios() {
    let yamls = [
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: \"{EXTERNAL_ID}${{\"\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      external_id: {EXTERNAL_ID}\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: [{EXTERNAL_ID}]\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: \"{EXTERNAL_ID}\\u0007\"\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: {EXTERNAL_ID}\n      external_id: {EXTERNAL_ID}\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: \"{EXTERNAL_ID}${{CYB_SECRET_LEAKS_UNSET}}\"\n"),
        format!("kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: \"\"\n      external_id: {EXTERNAL_ID}\n      role_session_name: \"bad name\"\n"),
        format!("kms:\n  registry:\n    a: {{provider: aws, key_id: k, region: r, role_arn: x, external_id: {EXTERNAL_ID}\n"),
    ];
    for yaml in &yamls {
        said_if_failed("registry YAML", Registry::from_yaml_str(yaml));
    }
    // A valid registry: its Debug and summary show no ExternalId.
    let registry = Registry::from_yaml_str(&format!(
        "kms:\n  registry:\n    a:\n      provider: aws\n      key_id: k\n      region: r\n      role_arn: arn:aws:iam::1:role/x\n      external_id: {EXTERNAL_ID}\n"
    ))
    .unwrap();
    record("registry Debug", format!("{registry:?}"));
    record("registry summary", registry.summary());
}

/// Debug output of every handle that holds a secret.
fn debug_scenarios() {
    let client = client("http://127.0.0.1:9");
    record("client Debug", format!("{client:?}"));
    record("registry Debug", format!("{:?}", client.registry()));
    record("KEK Debug", format!("{:?}", kek()));
    let resolver = KekResolver::new(client, KekCacheOptions::default()).unwrap();
    record("resolver Debug", format!("{resolver:?}"));
}

#[test]
fn no_secret_appears_in_any_message_or_log_line() {
    log_capture::Capture::install();
    // The library's own log callback at its most verbose level: its lines are scanned below
    // (no secrets given to watch, so it only records).
    log_scan::watch(&[]);
    tracing::info!(target: "secret_leaks", "canary log line");
    kms_scenarios();
    s3_scenarios();
    endpoint_scenarios();
    registry_scenarios();
    debug_scenarios();

    let callback_lines = log_scan::lines();
    if std::env::var_os("CYB_SHOW_LOG_LINES").is_some() {
        eprintln!("{}", callback_lines.join("\n"));
    }
    // The callback saw the library's events and the AWS SDK's (DEBUG and above, never TRACE).
    for (target, what) in [
        (" cyborgdb_kms::kms ", "the KMS client's events"),
        (" aws_smithy_runtime", "the AWS SDK's events"),
    ] {
        assert!(
            callback_lines.iter().any(|line| line.contains(target)),
            "the log callback received {what}"
        );
    }
    assert!(
        !callback_lines
            .iter()
            .any(|line| line.starts_with("TRACE ") && !line.contains(" cyborgdb_kms::")),
        "no TRACE event of the AWS SDK reaches the callback"
    );
    let mut seen = seen().lock().unwrap();
    seen.extend(
        callback_lines
            .into_iter()
            .map(|line| ("log callback".to_owned(), line)),
    );
    assert!(seen.len() > 150, "the scenarios ran ({} lines)", seen.len());
    assert!(
        seen.iter()
            .any(|(origin, text)| origin == "log" && text.contains("canary log line")),
        "the capture sees the host's log events"
    );
    // The AWS SDK's own events (at TRACE they hold raw response bodies) never reach the host's
    // subscriber: the library runs every SDK call with logging silenced.
    let sdk_events: Vec<_> = seen
        .iter()
        .filter(|(origin, text)| origin == "log" && !text.contains("secret_leaks"))
        .collect();
    assert!(sdk_events.is_empty(), "{sdk_events:?}");
    let mut leaks = Vec::new();
    for (label, secret) in secrets() {
        let needles = needles(&secret);
        for (origin, text) in seen.iter() {
            if let Some(needle) = needles.iter().find(|n| text.contains(n.as_str())) {
                leaks.push(format!(
                    "{label} ({needle}) in {origin}: {}",
                    &text[..text.len().min(600)]
                ));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[test]
fn the_scanner_finds_each_form_of_a_secret() {
    let hex: String = KEK.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = base64::encode(KEK);
    let mut embedded = vec![7u8];
    embedded.extend_from_slice(&KEK);
    let shifted = base64::encode(&embedded);
    let needles = needles(&KEK);
    for text in [
        hex.clone(),
        hex.to_uppercase(),
        b64.clone(),
        b64.replace('+', "-").replace('/', "_"),
        b64.trim_end_matches('=').to_owned(),
        shifted,
        format!("\"Plaintext\":\"{}", &b64[..30]),
    ] {
        assert!(
            needles.iter().any(|n| text.contains(n.as_str())),
            "missed {text}"
        );
    }
    assert!(!needles
        .iter()
        .any(|n| "arn:aws:kms:us-east-1".contains(n.as_str())));
}
