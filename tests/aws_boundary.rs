//! The trust boundary with AWS endpoints (issue #10, findings 2 and 6), against the real AWS SDK
//! and our loopback fault peer / fake S3 (127.0.0.1 only):
//! - endpoint URLs — the `endpoint_url` / `endpoint` options and every `AWS_ENDPOINT_URL*`
//!   variable the SDK reads — are checked when a KMS client or S3 store is constructed;
//! - no error message carries a request, a response body or an SDK error dump: an endpoint the
//!   SDK cannot apply, or a peer echoing our request, never puts the KEK (or an ExternalId) into a
//!   message, and service messages are capped;
//! - response bodies are bounded in size (a 50 MB answer costs no 50 MB) and in time (a body
//!   trickling in forever is cut by the timeouts).
//!
//! Tests that need their own environment (endpoint variables, an AWS config file, a clean peak
//! RSS) run this binary again as a child process with one `#[ignore]`d test selected.
//!
//! The library's log callback runs at its most verbose level throughout, and no line it receives
//! may hold the KEK, the ExternalId or the S3 secret key ([`watch_logs`]).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_s3::{FakeS3, Response};
use common::fault_peer::{FaultPeer, Reply};
use common::log_scan;
use cyborgdb_kms::{
    get_index_kms, AwsTimeouts, ErrorKind, Kek, KmsBlob, KmsClient, KmsClientOptions,
    S3Credentials, S3Options, StorageConfig,
};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/// The BYOK slot's key, in the customer's account (one key is reached with one role).
const CUSTOMER_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/0badc0de-12ab-34cd-56ef-1234567890ab";

/// An ExternalId with characters a form-encoded STS request percent-encodes.
const EXTERNAL_ID: &str = "ext:6f1c/9a1e";

/// 50 MB: the size of the hostile bodies of the issue.
const HUGE: u64 = 50 * 1000 * 1000;

/// Endpoint URLs every check refuses, with a phrase the message must contain. None of them
/// reaches a resolver: they are refused before any I/O.
const BAD_ENDPOINTS: &[(&str, &str)] = &[
    ("http://[::1", "is not a valid URL: invalid IPv6 address"),
    (
        "http://%zz",
        "is not a valid URL: invalid international domain name",
    ),
    ("http://[zz]", "is not a valid URL: invalid IPv6 address"),
    (
        "http://127.0.0.1:99999",
        "is not a valid URL: invalid port number",
    ),
    (
        "http://127.0.0.1:8o",
        "is not a valid URL: invalid port number",
    ),
    (
        "http://127.1:4566",
        "has a host the URL parser reads as \"127.0.0.1\"",
    ),
    ("127.0.0.1:4566", "must start with http:// or https://"),
    ("ftp://127.0.0.1", "must start with http:// or https://"),
    ("", "must start with http:// or https://"),
    ("http://", "has no host"),
    ("http://:4566", "has no host"),
    ("http:///kms", "has no host"),
    (
        "http://me:hunter2@127.0.0.1",
        "\"http://<user info>@127.0.0.1\" must not contain user info",
    ),
    ("http://127.0.0.1/?x=1", "must not have a query or fragment"),
    ("http://127.0.0.1/#f", "must not have a query or fragment"),
    (
        "http://127.0.0.1 /",
        "must be printable ASCII without spaces",
    ),
];

/// The KEK the wrap tests send: its base64 (as the Encrypt request carries it) and hex must
/// never appear in a message.
fn known_kek() -> Kek {
    let bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(73) ^ 0xc5).collect();
    Kek::from_slice(&bytes).unwrap()
}

/// Asserts `message` holds no trace of `kek`: not its base64 or hex (nor their first 12
/// characters), and no run of 32 or more base64/hex characters at all.
fn assert_no_kek(message: &str, kek: &Kek) {
    let b64 = aws_smithy_types::base64::encode(kek.as_bytes());
    let hex: String = kek.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    for secret in [&b64[..], &hex[..], &b64[..12], &hex[..12]] {
        assert!(!message.contains(secret), "{secret} in {message}");
    }
    let longest_run = message
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest_run < 32,
        "a {longest_run}-character run in {message}"
    );
}

/// Short attempts, an operation bound the retries cannot reach.
fn fast_timeouts(max_attempts: u32) -> AwsTimeouts {
    AwsTimeouts {
        connect: Duration::from_millis(500),
        attempt: Duration::from_millis(500),
        operation: Duration::from_secs(2),
        max_attempts: Some(max_attempts),
        retry_mode: None,
        initial_backoff: Duration::from_millis(10),
    }
}

/// A registry with an `aws-kms` slot `kms`, an `aws` (Secrets Manager) slot `sm` and a BYOK
/// `aws-kms` slot `byok` assuming a role with [`EXTERNAL_ID`].
fn registry_yaml() -> String {
    format!(
        "kms:\n  registry:\n    kms:\n      provider: aws-kms\n      key_id: {KEY_ARN}\n      \
         region: us-east-1\n    sm:\n      provider: aws\n      key_id: customers/acme/kek\n      \
         region: us-east-1\n    byok:\n      provider: aws-kms\n      key_id: {CUSTOMER_KEY_ARN}\n      \
         region: us-east-1\n      role_arn: arn:aws:iam::111122223333:role/cyborgdb-byok\n      \
         external_id: \"{EXTERNAL_ID}\"\n"
    )
}

/// A KMS client with [`registry_yaml`]'s slots, reaching AWS at `endpoint` (or, with `None`,
/// wherever the SDK's resolution leads).
fn kms_client(endpoint: Option<&str>, timeouts: AwsTimeouts) -> KmsClient {
    watch_logs();
    let client = KmsClient::new(KmsClientOptions {
        endpoint_url: endpoint.map(str::to_owned),
        timeouts,
        ..KmsClientOptions::default()
    })
    .unwrap();
    client.load_registry_yaml(&registry_yaml()).unwrap();
    client
}

fn kms_blob(slot: &str) -> KmsBlob {
    KmsBlob {
        kms_name: slot.into(),
        provider: "aws-kms".into(),
        key_id: if slot == "byok" {
            CUSTOMER_KEY_ARN
        } else {
            KEY_ARN
        }
        .into(),
        region: "us-east-1".into(),
        wrapped_kek: b"wrapped".to_vec(),
        version: 1,
        created_at: 1,
    }
}

fn s3_options(endpoint: Option<&str>, timeouts: AwsTimeouts) -> S3Options {
    watch_logs();
    S3Options {
        prefix: "ks".into(),
        region: Some("us-east-1".into()),
        endpoint: endpoint.map(str::to_owned),
        credentials: Some(S3Credentials::new("S3KEY", "s3-secret")),
        timeouts,
        ..S3Options::default()
    }
}

/// Scans every log line of this binary for the secrets its scenarios handle (see
/// `common::log_scan`): the KEK the wrap tests send, the plaintext the peer returns, the
/// ExternalId (as written and percent-encoded), the S3 secret key. Called by the KMS client and
/// S3 option constructors here, so child processes watch too.
fn watch_logs() {
    let kek = known_kek();
    log_scan::watch(&[
        ("sent KEK", kek.as_bytes()),
        ("returned KEK", &[1; 32]),
        ("ExternalId", EXTERNAL_ID.as_bytes()),
        ("ExternalId percent-encoded", b"ext%3A6f1c%2F9a1e"),
        ("S3 secret key", b"s3-secret"),
    ]);
}

/// The command that runs this test binary's `#[ignore]`d test `name` alone, with `env` set.
fn child_command(name: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command.envs(env.iter().copied());
    command
}

/// Runs this test binary's `#[ignore]`d test `name` alone, with `env` set and `AWS_ENDPOINT_URL`
/// removed if `remove_global_endpoint`; returns its stdout (asserting it succeeded).
fn run_child(name: &str, env: &[(&str, &str)], remove_global_endpoint: bool) -> String {
    let mut command = child_command(name, env);
    if remove_global_endpoint {
        command.env_remove("AWS_ENDPOINT_URL");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} {env:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The value a child printed on its own line as `<name> <value>`.
fn child_figure(stdout: &str, name: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// The `CHILD_KIND` and `CHILD_MESSAGE` a child printed, or `("OK", "")`.
fn child_result(stdout: &str) -> (String, String) {
    match (
        child_figure(stdout, "CHILD_KIND"),
        child_figure(stdout, "CHILD_MESSAGE"),
    ) {
        (Some(kind), Some(message)) => (kind, message),
        _ => {
            assert!(stdout.lines().any(|l| l == "CHILD_OK"), "{stdout}");
            ("OK".to_owned(), String::new())
        }
    }
}

/// Prints `result` for the parent (each on its own line: the harness's test line has no end).
fn print_result<T>(result: cyborgdb_kms::Result<T>) {
    match result {
        Ok(_) => println!("\nCHILD_OK"),
        Err(err) => {
            println!("\nCHILD_KIND {:?}", err.kind());
            println!("CHILD_MESSAGE {}", err.message());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Endpoint URLs are checked at construction

#[test]
fn bad_endpoint_options_are_refused_at_construction() {
    for (endpoint, phrase) in BAD_ENDPOINTS {
        let err = KmsClient::new(KmsClientOptions {
            endpoint_url: Some((*endpoint).to_owned()),
            ..KmsClientOptions::default()
        })
        .err()
        .unwrap_or_else(|| panic!("{endpoint:?} accepted"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err:?}");
        assert!(
            err.message().starts_with("KMS endpoint_url \"") && err.message().contains(phrase),
            "{endpoint:?}: {err:?}"
        );
        assert!(!err.message().contains("hunter2"), "{err:?}");

        // The S3 store's options are arguments: every S3Options field error is InvalidArgument.
        let err = StorageConfig::s3("bucket", s3_options(Some(endpoint), AwsTimeouts::default()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err:?}");
        assert!(
            err.message().starts_with("S3 endpoint \"") && err.message().contains(phrase),
            "{endpoint:?}: {err:?}"
        );
        assert!(!err.message().contains("hunter2"), "{err:?}");
    }
}

/// Selects what `child_construct_with_endpoint_variables` constructs: `kms`, `kms-with-option`
/// or `s3`; or, with `kms-late` / `s3-late`, a client constructed before its endpoint variable
/// is set to `http://[::1` and then used.
const CONSTRUCT_CHILD: &str = "CYB_CONSTRUCT_CHILD";

#[test]
#[ignore = "child process of bad_endpoint_variables_are_refused_at_construction"]
fn child_construct_with_endpoint_variables() {
    let target = std::env::var(CONSTRUCT_CHILD).expect("run by the parent test");
    match target.as_str() {
        "kms" => print_result(KmsClient::new(KmsClientOptions::default())),
        "kms-with-option" => print_result(KmsClient::new(KmsClientOptions {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..KmsClientOptions::default()
        })),
        "s3" => print_result(StorageConfig::s3(
            "bucket",
            S3Options {
                endpoint: None,
                credentials: None,
                ..s3_options(None, AwsTimeouts::default())
            },
        )),
        // The SDK reads the variables again when the first call builds its clients; so does the
        // check. (This child runs one test, and sets the variable before any call reads it.)
        "kms-late" => {
            let client = kms_client(None, fast_timeouts(1));
            std::env::set_var("AWS_ENDPOINT_URL_KMS", "http://[::1");
            print_result(client.wrap_kek("orders", "kms", &known_kek()));
        }
        "s3-late" => {
            let options = S3Options {
                endpoint: None,
                credentials: None,
                ..s3_options(None, fast_timeouts(1))
            };
            let store = StorageConfig::s3("bucket", options).unwrap();
            std::env::set_var("AWS_ENDPOINT_URL_S3", "http://[::1");
            print_result(get_index_kms(&store, "idx"));
        }
        other => panic!("unknown target {other}"),
    }
}

#[test]
fn bad_endpoint_variables_are_refused_at_construction() {
    let kms_variables = [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_KMS",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_STS",
    ];
    let s3_variables = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"];
    let targets = [
        ("kms", "KMS client", &kms_variables[..]),
        ("s3", "S3 storage", &s3_variables[..]),
    ];
    for (target, prefix, variables) in targets {
        for variable in variables {
            for (endpoint, phrase) in BAD_ENDPOINTS {
                let env = [(CONSTRUCT_CHILD, target), (*variable, *endpoint)];
                let stdout = run_child("child_construct_with_endpoint_variables", &env, false);
                let (kind, message) = child_result(&stdout);
                assert_eq!(
                    kind, "InvalidConfig",
                    "{target} {variable}={endpoint:?}: {stdout}"
                );
                let named = format!("{prefix}: environment variable {variable}: \"");
                assert!(
                    message.starts_with(&named) && message.contains(phrase),
                    "{target} {variable}={endpoint:?}: {message}"
                );
                assert!(!message.contains("hunter2"), "{message}");
            }
            // A good value is accepted.
            let env = [(CONSTRUCT_CHILD, target), (*variable, "http://[::1]:4566/")];
            let stdout = run_child("child_construct_with_endpoint_variables", &env, false);
            assert_eq!(
                child_result(&stdout).0,
                "OK",
                "{target} {variable}: {stdout}"
            );
        }
    }
    // Set after construction: refused when the first call builds the SDK clients.
    let late = [
        (
            "kms-late",
            "index \"orders\": kms:Encrypt could not be sent: environment variable \
             AWS_ENDPOINT_URL_KMS: \"http://[::1\" is not a valid URL: invalid IPv6 address",
        ),
        (
            "s3-late",
            "index \"idx\": S3 GetObject s3://bucket/ks/idx.kms: S3 storage: environment \
             variable AWS_ENDPOINT_URL_S3: \"http://[::1\" is not a valid URL: invalid IPv6 \
             address",
        ),
    ];
    for (target, expected) in late {
        let stdout = run_child(
            "child_construct_with_endpoint_variables",
            &[(CONSTRUCT_CHILD, target)],
            false,
        );
        assert_eq!(
            child_result(&stdout),
            ("InvalidConfig".to_owned(), expected.to_owned()),
            "{stdout}"
        );
    }
    // With the endpoint_url option the SDK ignores the variables, and so does the check.
    let env = [
        (CONSTRUCT_CHILD, "kms-with-option"),
        ("AWS_ENDPOINT_URL_KMS", "http://[::1"),
    ];
    let stdout = run_child("child_construct_with_endpoint_variables", &env, false);
    assert_eq!(child_result(&stdout).0, "OK", "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// No request, body or SDK dump in a message

/// Names the AWS config file `child_wrap_through_the_config_file` uses.
const CONFIG_FILE_CHILD: &str = "CYB_CONFIG_FILE_CHILD";

#[test]
#[ignore = "child process of an_endpoint_the_sdk_cannot_apply_never_puts_the_kek_in_the_message"]
fn child_wrap_through_the_config_file() {
    let _ = std::env::var(CONFIG_FILE_CHILD).expect("run by the parent test");
    let client = kms_client(None, fast_timeouts(1));
    print_result(client.wrap_kek("orders", "kms", &known_kek()));
}

#[test]
fn an_endpoint_the_sdk_cannot_apply_never_puts_the_kek_in_the_message() {
    // The original leak: kms:Encrypt through an endpoint the SDK cannot apply failed with the
    // whole request, `"Plaintext":"<base64 KEK>"` included, in the message. The options and
    // variables are now refused at construction, but the AWS config file's per-service
    // endpoints reach the SDK unchecked; the message must still carry no request. (The file's
    // global endpoint_url, a closed loopback port, catches the case of an SDK ignoring the
    // services section: nothing reaches AWS.)
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "[default]\nendpoint_url = http://127.0.0.1:9\nservices = broken\n\n\
         [services broken]\nkms =\n  endpoint_url = http://[::1\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [(CONFIG_FILE_CHILD, "1"), ("AWS_CONFIG_FILE", config)];
    let stdout = run_child("child_wrap_through_the_config_file", &env, true);
    let (kind, message) = child_result(&stdout);
    assert_eq!(kind, "InvalidConfig", "{stdout}");
    assert_eq!(
        message,
        "index \"orders\": kms:Encrypt could not be sent: the endpoint could not be applied to \
         the request (check endpoint_url, AWS_ENDPOINT_URL* and the endpoints in the AWS config \
         file)"
    );
    assert_no_kek(&message, &known_kek());
    assert!(Path::new(config).exists());
}

#[test]
fn a_peer_echoing_the_encrypt_request_gets_the_kek_redacted() {
    let peer = FaultPeer::start(|request| {
        Reply::aws_error(400, "ValidationException", &request.body_text())
    });
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(1));
    let kek = known_kek();
    let err = client.wrap_kek("orders", "kms", &kek).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsBadResponse, "{err:?}");
    // The echo really carried the KEK.
    let sent = peer.requests()[0].body_text();
    assert!(
        sent.contains(&aws_smithy_types::base64::encode(kek.as_bytes())),
        "{sent}"
    );
    assert!(
        err.message().starts_with(
            "index \"orders\": kms:Encrypt failed: ValidationException (HTTP 400): {\"KeyId\":"
        ),
        "{err:?}"
    );
    assert!(
        err.message().contains("\"Plaintext\":\"<redacted>\""),
        "{err:?}"
    );
    assert_no_kek(err.message(), &kek);
}

#[test]
fn a_peer_echoing_the_assume_role_request_gets_the_external_id_redacted() {
    let peer = FaultPeer::start(|request| {
        if request.query_action().as_deref() == Some("AssumeRole") {
            Reply::query_error(403, "AccessDenied", &request.body_text())
        } else {
            Reply::kms_decrypt(KEY_ARN, &[1; 32])
        }
    });
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(1));
    let err = client.unwrap_kek("orders", &kms_blob("byok")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsAccessDenied, "{err:?}");
    let sent = peer.requests()[0].body_text();
    assert!(sent.contains("ExternalId=ext%3A6f1c%2F9a1e"), "{sent}");
    let message = err.message();
    assert!(
        message.starts_with("index \"orders\": sts:AssumeRole failed: AccessDenied (HTTP 403): "),
        "{message}"
    );
    assert!(message.contains("ExternalId=<redacted>"), "{message}");
    for shown in [EXTERNAL_ID, "ext%3A6f1c%2F9a1e", "6f1c"] {
        assert!(!message.contains(shown), "{message}");
    }
}

#[test]
fn service_messages_are_sanitized_and_capped() {
    let long = format!(
        "line one\nline\u{202e} two\u{1b}[31m {}",
        "word ".repeat(2000)
    );
    let peer = FaultPeer::start(move |_| Reply::aws_error(400, "AccessDeniedException", &long));
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(1));
    let err = client.unwrap_kek("orders", &kms_blob("kms")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KmsAccessDenied, "{err:?}");
    let prefix = "index \"orders\": kms:Decrypt failed: AccessDeniedException (HTTP 400): ";
    let service = err
        .message()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        service.starts_with("line one\\nline\\u{202e} two\\u{1b}[31m word word"),
        "{service}"
    );
    // 200 characters of the service's message, then the cut mark.
    assert_eq!(service.chars().count(), 203, "{service}");
    assert!(service.ends_with("..."), "{service}");
    assert!(!err.message().contains(['\n', '\u{1b}', '\u{202e}']));
}

// ---------------------------------------------------------------------------------------------
// Response bodies are bounded in size

/// Asserts `err` is of `kind`, its message starts with `start` and names a body past `limit`
/// as the cause, without any of the body.
fn assert_cut(err: &cyborgdb_kms::Error, kind: ErrorKind, start: &str, limit: usize) {
    let message = err.message();
    assert_eq!(err.kind(), kind, "{message:.400}");
    assert!(message.starts_with(start), "{message:.400}");
    assert!(
        message.contains(&format!(
            "the response body is longer than the {limit}-byte limit"
        )),
        "{message:.400}"
    );
    assert!(
        message.len() < 400,
        "{} bytes: {message:.400}",
        message.len()
    );
    assert!(!message.contains("AAAAAAAA"), "{message:.400}");
}

/// GetObject on a fake S3 answering every request with a 50 MB error document.
fn huge_s3_error() -> cyborgdb_kms::Error {
    let server = FakeS3::start(|_| Response::HugeError {
        status: 403,
        code: "AccessDenied".into(),
        message_len: HUGE,
    });
    let store = StorageConfig::s3(
        "bucket",
        s3_options(Some(&server.endpoint), fast_timeouts(2)),
    )
    .unwrap();
    get_index_kms(&store, "idx").unwrap_err()
}

/// Decrypt on a peer answering with `reply`.
fn kms_decrypt_error(reply: Reply) -> cyborgdb_kms::Error {
    let peer = FaultPeer::start(move |_| reply.clone());
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(2));
    client.unwrap_kek("orders", &kms_blob("kms")).unwrap_err()
}

#[test]
fn a_huge_s3_error_body_is_cut_at_the_error_body_limit() {
    let err = huge_s3_error();
    let start = "index \"idx\": S3 GetObject s3://bucket/ks/idx.kms failed: malformed response (";
    assert_cut(&err, ErrorKind::Io, start, 65536);
    assert!(err.message().ends_with(", HTTP 403)"), "{err:?}");
}

#[test]
fn huge_kms_secrets_manager_and_sts_bodies_are_cut_at_their_limits() {
    let decrypt = "index \"orders\": kms:Decrypt failed: malformed response (";
    let err = kms_decrypt_error(Reply::huge_aws_error(400, "AccessDeniedException", HUGE));
    assert_cut(&err, ErrorKind::KmsBadResponse, decrypt, 65536);

    // A success body is bounded too, by the larger limit of successful answers.
    let err = kms_decrypt_error(Reply::huge_json(HUGE));
    assert_cut(&err, ErrorKind::KmsBadResponse, decrypt, 1024 * 1024);

    // Secrets Manager's client carries the limit.
    let peer = FaultPeer::start(|_| Reply::huge_json(HUGE));
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(1));
    let err = client.wrap_new_kek("orders", "sm").unwrap_err();
    let start = "index \"orders\": secretsmanager:GetSecretValue failed: malformed response (";
    assert_cut(&err, ErrorKind::KmsBadResponse, start, 1024 * 1024);

    // So does the STS client that assumes a slot's role.
    let peer = FaultPeer::start(|request| {
        if request.query_action().as_deref() == Some("AssumeRole") {
            Reply::Huge {
                status: 403,
                headers: vec![("Content-Type".into(), "text/xml".into())],
                prefix: b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>".to_vec(),
                filler: b'A',
                filler_len: HUGE,
                suffix: b"</Message></Error></ErrorResponse>".to_vec(),
            }
        } else {
            Reply::kms_decrypt(KEY_ARN, &[1; 32])
        }
    });
    let client = kms_client(Some(peer.endpoint()), fast_timeouts(1));
    let err = client.unwrap_kek("orders", &kms_blob("byok")).unwrap_err();
    let start = "index \"orders\": sts:AssumeRole failed: malformed response (";
    assert_cut(&err, ErrorKind::KmsBadResponse, start, 65536);
    assert_eq!(peer.count_target("TrentService.Decrypt"), 0);
}

/// Marks `child_huge_bodies` as run by its parent.
const MEMORY_CHILD: &str = "CYB_MEMORY_CHILD";

/// A `Vm...:` figure of /proc/self/status, in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "child process of huge_bodies_do_not_balloon_the_process"]
fn child_huge_bodies() {
    let _ = std::env::var(MEMORY_CHILD).expect("run by the parent test");
    // Warm up everything a first call allocates once (runtimes, TLS roots, SDK config), so the
    // figure measures the bodies.
    let _ = kms_decrypt_error(Reply::aws_error(400, "AccessDeniedException", "warm-up"));
    let server = FakeS3::start(|_| Response::error(403, "AccessDenied", "warm-up"));
    let store = StorageConfig::s3(
        "bucket",
        s3_options(Some(&server.endpoint), fast_timeouts(1)),
    )
    .unwrap();
    let _ = get_index_kms(&store, "idx");
    // Reset the peak to the current resident size (Linux: "5" > clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = proc_status_kib("VmRSS:");
    let errors = [
        huge_s3_error(),
        kms_decrypt_error(Reply::huge_aws_error(400, "AccessDeniedException", HUGE)),
        kms_decrypt_error(Reply::huge_json(HUGE)),
    ];
    let peak = proc_status_kib("VmHWM:");
    let longest = errors.iter().map(|e| e.message().len()).max().unwrap();
    println!("\nRSS_BEFORE_KIB {before}");
    println!("HWM_AFTER_KIB {peak}");
    println!("LONGEST_MESSAGE {longest}");
}

#[test]
fn huge_bodies_do_not_balloon_the_process() {
    // Three 50 MB answers (S3 error, KMS error, KMS success), in a process of their own so the
    // peak resident size is theirs alone. Before the limits, the S3 one alone became a 52 MB
    // message and some 280 MB of peak RSS.
    let stdout = run_child("child_huge_bodies", &[(MEMORY_CHILD, "1")], false);
    let figure = |name: &str| -> u64 {
        child_figure(&stdout, name)
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .parse()
            .unwrap()
    };
    let (before, peak) = (figure("RSS_BEFORE_KIB"), figure("HWM_AFTER_KIB"));
    let growth_kib = peak.saturating_sub(before);
    println!("peak RSS growth over three 50 MB answers: {growth_kib} KiB ({before} -> {peak} KiB)");
    assert!(growth_kib < 40 * 1024, "{stdout}");
    assert!(figure("LONGEST_MESSAGE") < 400, "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Response bodies are bounded in time

/// A generous bound for a call whose timeouts are `timeouts`: what the peer would take (1 MiB at
/// one byte per 100 ms: 29 hours) is far beyond it.
fn generous_bound(timeouts: &AwsTimeouts) -> Duration {
    timeouts.operation + timeouts.attempt + Duration::from_secs(10)
}

#[test]
fn trickling_kms_bodies_are_cut_by_the_timeouts() {
    let interval = Duration::from_millis(100);
    for status in [400, 200] {
        let peer = FaultPeer::start(move |_| {
            Reply::trickling_json(status, "AccessDeniedException", interval)
        });
        let timeouts = fast_timeouts(2);
        let client = kms_client(Some(peer.endpoint()), timeouts.clone());
        let started = Instant::now();
        let err = client.unwrap_kek("orders", &kms_blob("kms")).unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::KmsUnavailable, "{status}: {err:?}");
        assert_eq!(
            err.message(),
            "index \"orders\": kms:Decrypt failed: timed out (operation or attempt timeout)"
        );
        assert!(elapsed < generous_bound(&timeouts), "{status}: {elapsed:?}");
    }
}

#[test]
fn trickling_s3_bodies_are_cut_by_the_timeouts() {
    let interval = Duration::from_millis(100);
    let cases = [
        (
            200,
            "storage unavailable: reading the object body took longer than 500ms",
        ),
        (
            503,
            "storage unavailable: timed out (operation or attempt timeout)",
        ),
    ];
    for (status, expected) in cases {
        // An envelope-sized (4 KiB) object or error document, one byte every `interval`.
        let content_type = if status == 200 {
            "application/octet-stream"
        } else {
            "application/xml"
        };
        let server = FakeS3::start(move |_| {
            let headers = vec![("content-type".into(), content_type.into())];
            Response::Reply(status, headers, vec![b' '; 4096]).trickled(1, interval)
        });
        let timeouts = fast_timeouts(2);
        let store = StorageConfig::s3(
            "bucket",
            s3_options(Some(&server.endpoint), timeouts.clone()),
        )
        .unwrap();
        let started = Instant::now();
        let err = get_index_kms(&store, "idx").unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(
            err.kind(),
            ErrorKind::StorageUnavailable,
            "{status}: {err:?}"
        );
        assert_eq!(
            err.message(),
            format!("index \"idx\": S3 GetObject s3://bucket/ks/idx.kms failed: {expected}")
        );
        assert!(elapsed < generous_bound(&timeouts), "{status}: {elapsed:?}");
    }
}

#[test]
fn plain_http_to_another_host_is_refused_unless_allowed() {
    let options = |url: &str, allow_insecure_http| KmsClientOptions {
        endpoint_url: Some(url.to_owned()),
        allow_insecure_http,
        ..KmsClientOptions::default()
    };
    // Addresses only: constructing a client makes no connection.
    for url in [
        "http://10.0.0.5:4566",
        "http://kms.internal",
        "http://[fd00::1]:4566",
        "http://localhost.example.com:80",
    ] {
        let err = KmsClient::new(options(url, false)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}: {err:?}");
        assert!(
            err.message().starts_with(&format!(
                "KMS client: endpoint_url \"{url}\" is plain http to another host"
            )),
            "{err:?}"
        );
        assert!(
            err.message().ends_with("or set allow_insecure_http"),
            "{err:?}"
        );
        KmsClient::new(options(url, true)).unwrap();
    }
    for url in [
        "http://127.0.0.1:9",
        "http://127.8.9.10:4566",
        "http://localhost:4566",
        "http://LOCALHOST:4566",
        "http://[::1]:4566",
        "https://kms.internal",
        "https://10.0.0.5:443",
    ] {
        KmsClient::new(options(url, false)).unwrap();
    }
    // The same rule for the variables the SDK reads.
    for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"] {
        let env = [(CONSTRUCT_CHILD, "kms"), (variable, "http://10.0.0.5:4566")];
        let stdout = run_child("child_construct_with_endpoint_variables", &env, false);
        let (kind, message) = child_result(&stdout);
        assert_eq!(kind, "InvalidConfig", "{variable}: {stdout}");
        assert!(
            message.starts_with(&format!(
                "KMS client: environment variable {variable} \"http://10.0.0.5:4566\" is plain http"
            )),
            "{message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Files the SDK reads (named by the environment) are read with bounds

/// Run by [`aws_files_that_are_not_regular_files_fail_at_once`] with one variable pointing at a
/// hostile file: the first call builds the SDK clients, which reads the named files.
#[test]
#[ignore = "run by aws_files_that_are_not_regular_files_fail_at_once"]
fn child_wrap_with_hostile_aws_files() {
    let client = kms_client(Some("http://127.0.0.1:9"), fast_timeouts(1));
    print_result(client.wrap_kek("orders", "kms", &known_kek()));
    let store = StorageConfig::s3(
        "bucket",
        s3_options(Some("http://127.0.0.1:9"), fast_timeouts(1)),
    )
    .unwrap();
    print_result(get_index_kms(&store, "idx"));
    // A store without a region looks it up in the environment, then the profile files: with no
    // region variable, the lookup reaches the files (read with bounds, like the SDK config).
    std::env::remove_var("AWS_REGION");
    std::env::remove_var("AWS_DEFAULT_REGION");
    let no_region = S3Options {
        region: None,
        ..s3_options(Some("http://127.0.0.1:9"), fast_timeouts(1))
    };
    let store = StorageConfig::s3("bucket", no_region).unwrap();
    print_result(get_index_kms(&store, "idx"));
}

/// [`run_child`] with a hang guard: `None` if the child did not finish within 30 s (then killed).
fn run_child_guarded(name: &str, env: &[(&str, &str)]) -> Option<String> {
    let mut command = child_command(name, env);
    command.stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        let _ = done.send(text);
    });
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(text) => {
            child.wait().unwrap();
            Some(text)
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

#[test]
fn aws_files_that_are_not_regular_files_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let fifo = fifo.to_str().unwrap();
    let huge = huge.to_str().unwrap();
    let cases = [
        ("AWS_CONFIG_FILE", fifo, "it is a FIFO, not a regular file"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            fifo,
            "it is a FIFO, not a regular file",
        ),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            fifo,
            "it is a FIFO, not a regular file",
        ),
        ("AWS_CONFIG_FILE", huge, "more than the 1048576 accepted"),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            huge,
            "more than the 65536 accepted",
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/dev/zero",
            "not a regular file",
        ),
    ];
    for (variable, path, phrase) in cases {
        let stdout = run_child_guarded("child_wrap_with_hostile_aws_files", &[(variable, path)])
            .unwrap_or_else(|| panic!("{variable}={path}: the call hung"));
        // The KMS call and both S3 calls report it, naming the variable.
        let messages: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("CHILD_MESSAGE "))
            .collect();
        let kinds: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("CHILD_KIND "))
            .collect();
        assert_eq!(kinds, ["InvalidConfig"; 3], "{stdout}");
        for message in messages {
            assert!(
                message.contains(variable) && message.contains(phrase),
                "{variable}={path}: {message}"
            );
        }
    }
}
