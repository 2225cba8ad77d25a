//! The `cyborgdb-kms` binary, driven as an operator drives it: every command on Disk, exit codes
//! 1 and 2 with their exact messages, copy/import never overwriting a newer envelope, a re-wrap
//! killed 20 times (SIGKILL and SIGINT in turn) and resumed, the progress bar on a
//! pseudo-terminal, and S3 + KMS on moto. Every output is scanned for key material.

#[path = "../../tests/common/moto.rs"]
#[allow(dead_code)]
mod moto;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cyborgdb_kms::{
    get_index_kms, push_index_kms, KmsBlob, KmsClient, KmsClientOptions, Slot, StorageConfig,
};

const BIN: &str = env!("CARGO_BIN_EXE_cyborgdb-kms");

/// One finished run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exited, not signalled"),
            stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
        }
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A Disk store with two `local` slots (`a`, `b`) and the outputs seen, for the secret scan.
struct Fixture {
    dir: tempfile::TempDir,
    outputs: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key-a"), [0xA1u8; 32]).unwrap();
        std::fs::write(dir.path().join("key-b"), [0xB2u8; 32]).unwrap();
        Fixture {
            dir,
            outputs: Vec::new(),
        }
    }

    fn store_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn store(&self) -> StorageConfig {
        StorageConfig::disk(self.store_path()).unwrap()
    }

    fn slot_args(&self) -> Vec<String> {
        ["a", "b"]
            .iter()
            .flat_map(|s| {
                [
                    "--dev-local-slot".to_owned(),
                    format!(
                        "{s}=file:{}",
                        self.dir.path().join(format!("key-{s}")).display()
                    ),
                ]
            })
            .collect()
    }

    /// The binary with `--store` and both slots, run in the fixture's directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(self.dir.path())
            .arg("--store")
            .arg(self.store_path())
            .args(self.slot_args())
            .args(args)
            .env_remove("CYBORGDB_KMS_STORE")
            .env_remove("CYBORGDB_KMS_REGISTRY")
            .stdin(Stdio::null());
        command
    }

    fn run(&mut self, args: &[&str]) -> Run {
        let run = Run::of(self.command(args).output().unwrap());
        self.outputs.push(run.stdout.clone());
        self.outputs.push(run.stderr.clone());
        run
    }

    /// A client that unwraps with both slots, to check KEKs from outside the binary.
    fn client(&self) -> KmsClient {
        let client = KmsClient::new(KmsClientOptions {
            allow_local_provider: true,
            ..KmsClientOptions::default()
        })
        .unwrap();
        for s in ["a", "b"] {
            let source = format!(
                "file:{}",
                self.dir.path().join(format!("key-{s}")).display()
            );
            client
                .add_slot(
                    s,
                    Slot::from_fields(s, "local", &source, "", "", "", "").unwrap(),
                )
                .unwrap();
        }
        client
    }

    fn kek(&self, index: &str) -> [u8; 32] {
        let blob = get_index_kms(&self.store(), index).unwrap();
        *self.client().unwrap_kek(index, &blob).unwrap().as_bytes()
    }

    /// No KEK of `indexes`, no wrap key and no wrapped KEK bytes in any output so far.
    #[track_caller]
    fn assert_no_key_material(&self, keks: &[[u8; 32]]) {
        let mut secrets: Vec<Vec<u8>> = vec![vec![0xA1; 32], vec![0xB2; 32]];
        secrets.extend(keks.iter().map(|k| k.to_vec()));
        for output in &self.outputs {
            for secret in &secrets {
                let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                assert!(
                    !output.contains(&hex),
                    "hex key material printed:\n{output}"
                );
                assert!(
                    !output.as_bytes().windows(8).any(|w| w == &secret[..8]),
                    "raw key material printed"
                );
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
                assert!(!output.contains(&b64[..40]), "base64 key material printed");
            }
        }
    }
}

#[test]
fn every_command_on_disk() {
    let mut f = Fixture::new();
    let created = f.run(&["create", "orders", "--slot", "a"]).ok();
    assert_eq!(
        created.stdout,
        "INDEX   STATUS   DETAIL\norders  created  slot=a provider=local version=1\n"
    );
    f.run(&["create", "users", "--slot", "a"]).ok();
    let keks = [f.kek("orders"), f.kek("users")];

    assert_eq!(f.run(&["list"]).ok().stdout, "orders\nusers\n");
    assert_eq!(
        f.run(&["list", "--json"]).ok().stdout,
        "{\"command\":\"list\",\"indexes\":[\"orders\",\"users\"]}\n"
    );

    let blob = get_index_kms(&f.store(), "orders").unwrap();
    let show = f.run(&["show", "orders"]).ok();
    use sha2::Digest as _;
    let digest: String = sha2::Sha256::digest(&blob.wrapped_kek)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        show.stdout.contains(&format!(
            "wrapped_kek  {} bytes, sha256:{digest}\n",
            blob.wrapped_kek.len()
        )),
        "{}",
        show.stdout
    );
    assert!(show.stdout.contains("kms_name     a\n"));
    let show_json: serde_json::Value =
        serde_json::from_str(&f.run(&["show", "orders", "--json"]).ok().stdout).unwrap();
    assert_eq!(show_json["version"], 1);
    assert_eq!(show_json["wrapped_kek_sha256"], format!("sha256:{digest}"));
    assert!(show_json.get("wrapped_kek").is_none());

    let verify = f.run(&["verify", "--all", "--json"]).ok();
    let verify: serde_json::Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(verify["total"], 2);
    assert_eq!(verify["failed"], 0);
    let unwrap = f.run(&["verify", "--unwrap", "orders"]).ok();
    assert!(
        unwrap.stdout.contains("orders  unwrapped"),
        "{}",
        unwrap.stdout
    );

    let dry = f.run(&["rewrap", "--to", "b", "--all", "--dry-run"]).ok();
    assert!(dry.stdout.contains("would-rewrap"), "{}", dry.stdout);
    assert_eq!(get_index_kms(&f.store(), "orders").unwrap().version, 1);
    assert!(!f.dir.path().join("cyborgdb-kms-rewrap.journal").exists());

    let rewrap = f
        .run(&["rewrap", "--to", "b", "--from-key", &blob.key_id])
        .ok();
    assert!(rewrap
        .stdout
        .contains("orders  rewrapped  from=a to=b version=2"));
    // The journal (default: in the current directory) makes a re-run a no-op.
    assert!(f.dir.path().join("cyborgdb-kms-rewrap.journal").exists());
    let again = f.run(&["rewrap", "--to", "b", "--all"]).ok();
    assert!(
        again.stdout.contains("orders  done-earlier  version=2"),
        "{}",
        again.stdout
    );
    assert_eq!(get_index_kms(&f.store(), "users").unwrap().version, 2);
    assert_eq!([f.kek("orders"), f.kek("users")], keks);

    // Drift: slot b's key replaced; its previous key trusted through the registry only, so
    // with local slots (not in YAML) the drifted key is untrusted: reported, never re-wrapped.
    let drift = f.run(&["drift"]).ok();
    assert!(drift.stdout.contains("orders  in-sync"), "{}", drift.stdout);

    // Copy to a file:// URL, export, import into a third store.
    let copy_target = f.dir.path().join("copy");
    let copy_url = format!("file://{}", copy_target.display());
    let store_arg = f.store_path().display().to_string();
    let copied = f
        .run(&["copy", "--from", &store_arg, "--to", &copy_url])
        .ok();
    assert!(
        copied.stdout.contains("orders  copied"),
        "{}",
        copied.stdout
    );
    let target = StorageConfig::disk(&copy_target).unwrap();
    assert_eq!(
        get_index_kms(&target, "orders").unwrap(),
        get_index_kms(&f.store(), "orders").unwrap()
    );
    let export = f.run(&["export"]).ok();
    assert_eq!(export.stdout.lines().count(), 2);
    let line: serde_json::Value =
        serde_json::from_str(export.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["index"], "orders");
    assert_eq!(line["version"], 2);
    let export_file = f.dir.path().join("export.jsonl");
    std::fs::write(&export_file, &export.stdout).unwrap();
    let imported_root = f.dir.path().join("imported");
    let import = Run::of(
        Command::new(BIN)
            .args(["--store", imported_root.to_str().unwrap(), "import"])
            .arg(&export_file)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        import.stdout.contains("users   copied"),
        "{}",
        import.stdout
    );
    let imported = StorageConfig::disk(&imported_root).unwrap();
    assert_eq!(
        get_index_kms(&imported, "users").unwrap(),
        get_index_kms(&f.store(), "users").unwrap()
    );

    // Delete needs --yes.
    let refused = f.run(&["delete", "users"]);
    assert_eq!(refused.code, 2);
    assert_eq!(
        refused.stderr,
        "cyborgdb-kms: delete \"users\": refusing to delete without --yes (the KEK is lost unless the envelope is backed up)\n"
    );
    f.run(&["delete", "users", "--yes"]).ok();
    assert_eq!(f.run(&["list"]).ok().stdout, "orders\n");
    f.assert_no_key_material(&keks);
}

#[test]
fn usage_and_configuration_errors_exit_2_with_exact_messages() {
    let mut f = Fixture::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--store", "ftp://x/y", "list"],
            "cyborgdb-kms: store URL \"ftp://x/y\": unknown scheme (use file:///path, a path, s3://bucket/prefix or memory:)\n",
        ),
        (
            &["--store", "file://relative", "list"],
            "cyborgdb-kms: store URL \"file://relative\": a file URL needs an absolute path (file:///var/lib/cyborgdb)\n",
        ),
        (
            &["verify", "--parallel", "0"],
            "cyborgdb-kms: --parallel must be 1..=256, not 0\n",
        ),
        (
            &["rewrap", "--to", "nope", "--all"],
            "cyborgdb-kms: UNKNOWN_SLOT: KMS slot \"nope\" is not in the registry (slots: [a, b])\n",
        ),
        (
            &["--dev-local-slot", "broken", "create", "x", "--slot", "a"],
            "cyborgdb-kms: --dev-local-slot \"broken\": expected NAME=file:PATH or NAME=env:VARIABLE\n",
        ),
    ];
    for (args, expected) in cases {
        let run = match args[0] {
            "--store" => Run::of(Command::new(BIN).args(*args).output().unwrap()),
            _ => f.run(args),
        };
        assert_eq!((run.code, run.stderr.as_str()), (2, *expected), "{args:?}");
    }
    // Without a registry (and no dev slots).
    let run = Run::of(
        Command::new(BIN)
            .args(["--store", "memory:", "drift"])
            .env_remove("CYBORGDB_KMS_REGISTRY")
            .output()
            .unwrap(),
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "cyborgdb-kms: drift needs the KMS registry: pass --registry cyborgdb.yaml (or set CYBORGDB_KMS_REGISTRY)\n"
        )
    );
    let run = Run::of(
        Command::new(BIN)
            .arg("list")
            .env_remove("CYBORGDB_KMS_STORE")
            .output()
            .unwrap(),
    );
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            2,
            "cyborgdb-kms: no store: pass --store URL (or set CYBORGDB_KMS_STORE)\n"
        )
    );
    // clap's own usage errors exit 2 too.
    assert_eq!(f.run(&["rewrap", "--to", "b"]).code, 2);
    assert_eq!(f.run(&["no-such-command"]).code, 2);
    // A journal of another re-wrap is refused, naming both.
    f.run(&["create", "i", "--slot", "a"]).ok();
    f.run(&["rewrap", "--to", "b", "i"]).ok();
    let run = f.run(&["rewrap", "--to", "a", "i"]);
    assert_eq!(run.code, 2);
    let store = f.store_path().display().to_string();
    assert_eq!(
        run.stderr,
        format!(
            "cyborgdb-kms: journal cyborgdb-kms-rewrap.journal belongs to a re-wrap of {store:?} to slot \"b\", \
             not of {store:?} to slot \"a\": finish that one, pass another --journal, or --fresh to discard it\n"
        )
    );
    f.run(&["rewrap", "--to", "a", "i", "--fresh"]).ok();
    assert_eq!(get_index_kms(&f.store(), "i").unwrap().version, 3);
}

#[test]
fn failed_items_exit_1_each_named_with_code_and_message() {
    let mut f = Fixture::new();
    f.run(&["create", "good", "--slot", "a"]).ok();
    // A damaged envelope and a missing one.
    std::fs::write(f.store_path().join("bad.kms"), b"not an envelope").unwrap();
    let run = f.run(&["verify"]);
    assert_eq!(run.code, 1);
    let bad = f.store_path().join("bad.kms");
    // Progress lines (one a second on a slow machine, and a last one), then the failures.
    let (progress, failures): (Vec<&str>, Vec<&str>) = run
        .stderr
        .lines()
        .partition(|l| l.starts_with("verify: ") && l.contains(" done, "));
    assert!(
        progress
            .last()
            .unwrap()
            .starts_with("verify: 2/2 done, 1 failed, "),
        "{}",
        run.stderr
    );
    let lines: Vec<&str> = [""].into_iter().chain(failures).collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(
        lines[1].starts_with(&format!(
            "error: verify \"bad\": CORRUPT: index \"bad\": stored KMS envelope at {:?} is corrupt: ",
            bad
        )),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "verify: 1 of 2 failed");
    assert!(run
        .stdout
        .contains("bad    FAILED  CORRUPT: index \"bad\": stored KMS envelope at"));

    // Stored data cannot pick a key: an envelope of slot "a" naming slot b's key file is
    // refused by the registry's trust rules, never unwrapped or re-wrapped.
    let forged = KmsBlob {
        kms_name: "a".into(),
        provider: "local".into(),
        key_id: format!("file:{}", f.dir.path().join("key-b").display()),
        region: String::new(),
        wrapped_kek: vec![5; 61],
        version: 1,
        created_at: 1_700_000_000,
    };
    push_index_kms(&f.store(), "forged", &forged).unwrap();
    let run = f.run(&["--quiet", "verify", "--unwrap", "forged"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("error: verify \"forged\": UNTRUSTED_KEY: index \"forged\": the envelope names local key"),
        "{}",
        run.stderr
    );
    let run = f.run(&["--quiet", "rewrap", "--to", "b", "forged"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("UNTRUSTED_KEY"), "{}", run.stderr);
    assert_eq!(get_index_kms(&f.store(), "forged").unwrap(), forged);

    let run = f.run(&["show", "missing"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "cyborgdb-kms: NOT_FOUND: index \"missing\": no KMS envelope is stored\n"
        )
    );
    let run = f.run(&["--quiet", "rewrap", "--to", "b", "good", "missing"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: rewrap \"missing\": NOT_FOUND: index \"missing\": no KMS envelope is stored\n\
         rewrap: 1 of 2 failed\n"
    );
    assert_eq!(get_index_kms(&f.store(), "good").unwrap().version, 2);
    let run = f.run(&["delete", "missing", "--yes", "--json"]);
    assert_eq!(run.code, 1);
    let document: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["results"][0]["error"]["code"], "NOT_FOUND");
    assert_eq!(document["failed"], 1);
}

#[test]
fn audit_records_every_change_and_verify_finds_tampering() {
    let mut f = Fixture::new();
    let audited = |f: &mut Fixture, args: &[&str]| {
        let mut all = vec!["--audit", "--actor", "ops-alice", "--quiet"];
        all.extend_from_slice(args);
        f.run(&all).ok()
    };
    audited(&mut f, &["create", "orders", "--slot", "a"]);
    audited(&mut f, &["create", "users", "--slot", "a"]);
    audited(&mut f, &["rewrap", "--to", "b", "orders"]);
    audited(&mut f, &["delete", "users", "--yes"]);
    let copy_root = f.dir.path().join("copy");
    let store_arg = f.store_path().display().to_string();
    audited(
        &mut f,
        &[
            "copy",
            "--from",
            &store_arg,
            "--to",
            copy_root.to_str().unwrap(),
        ],
    );
    // Unaudited commands append nothing.
    f.run(&["create", "quiet", "--slot", "a"]).ok();

    let verify = f.run(&["audit", "verify"]).ok();
    assert!(
        verify
            .stdout
            .contains("chain             intact\nverified records  4\n"),
        "{}",
        verify.stdout
    );
    let tail = f.run(&["audit", "tail", "-n", "2"]).ok();
    let rows: Vec<Vec<&str>> = tail
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{}", tail.stdout);
    assert_eq!(
        (rows[0][0], rows[0][2], rows[0][3]),
        ("2", "orders", "rewrapped")
    );
    assert_eq!(
        (rows[1][0], rows[1][2], rows[1][3]),
        ("3", "users", "deleted")
    );
    assert!(rows[1][4].starts_with("ops-alice@"), "{}", tail.stdout);
    let export = f.run(&["audit", "export"]).ok();
    let records: Vec<serde_json::Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = records
        .iter()
        .map(|r| r["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["created", "created", "rewrapped", "deleted"]);
    assert_eq!(records[2]["event"]["from_version"], 1);
    assert_eq!(records[2]["event"]["to_version"], 2);
    assert!(records
        .iter()
        .all(|r| r["actor"]["principal"] == "ops-alice"));
    // The copy's target has its own chain: one created record for the one index copied.
    let copy_audit = Run::of(
        Command::new(BIN)
            .args(["--store", copy_root.to_str().unwrap(), "audit", "export"])
            .output()
            .unwrap(),
    )
    .ok();
    assert_eq!(copy_audit.stdout.lines().count(), 1);
    assert!(copy_audit.stdout.contains("\"type\":\"created\""));

    // Tampering: a changed principal breaks the chain at that record (exit 1, named).
    let log = f.store_path().join(".audit/log.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let second = text.match_indices("ops-alice").nth(1).unwrap().0;
    let mut tampered = text.clone();
    tampered.replace_range(second..second + 9, "ops-mallo");
    std::fs::write(&log, tampered).unwrap();
    let broken = f.run(&["audit", "verify", "--json"]);
    assert_eq!(broken.code, 1);
    let report: serde_json::Value = serde_json::from_str(&broken.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["records"], 1);
    assert_eq!(report["first_break"]["seq"], 1);
    assert_eq!(report["first_break"]["kind"], "changed");
    assert_eq!(
        broken.stderr,
        format!(
            "error: audit verify: the chain breaks at seq 1 (changed): {}\n",
            report["first_break"]["message"].as_str().unwrap()
        )
    );
    // Bad actor: a usage error.
    let run = f.run(&["--audit", "--actor", "", "list"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "cyborgdb-kms: INVALID_ARGUMENT: audit option principal \"\": must not be empty\n"
    );
    let keks = [f.kek("orders")];
    f.assert_no_key_material(&keks);
}

/// A `local` envelope of `version` for copy/import tests (no KMS involved).
fn envelope(version: u32, tag: u8) -> KmsBlob {
    KmsBlob {
        kms_name: "a".into(),
        provider: "aws-kms".into(),
        key_id: "alias/k".into(),
        region: "us-east-1".into(),
        wrapped_kek: vec![tag; 48],
        version,
        created_at: 1_700_000_000,
    }
}

#[test]
fn copy_and_import_never_overwrite_a_newer_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    let (source, target) = (
        StorageConfig::disk(&from).unwrap(),
        StorageConfig::disk(&to).unwrap(),
    );
    push_index_kms(&source, "older-there", &envelope(3, 1)).unwrap();
    push_index_kms(&target, "older-there", &envelope(2, 9)).unwrap();
    push_index_kms(&source, "newer-there", &envelope(3, 1)).unwrap();
    push_index_kms(&target, "newer-there", &envelope(7, 9)).unwrap();
    push_index_kms(&source, "same-version-other-bytes", &envelope(4, 1)).unwrap();
    push_index_kms(&target, "same-version-other-bytes", &envelope(4, 9)).unwrap();
    let run = Run::of(
        Command::new(BIN)
            .args(["--quiet", "copy", "--from"])
            .arg(&from)
            .arg("--to")
            .arg(&to)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "INDEX                     STATUS          DETAIL\n\
         newer-there               kept-newer      version=3 target_version=7\n\
         older-there               replaced-older  version=3 previous_version=2\n\
         same-version-other-bytes  FAILED          CONFLICT: index \"same-version-other-bytes\": the target holds version 4 with other contents; not overwritten\n"
    );
    assert_eq!(
        get_index_kms(&target, "newer-there").unwrap(),
        envelope(7, 9)
    );
    assert_eq!(
        get_index_kms(&target, "older-there").unwrap(),
        envelope(3, 1)
    );
    assert_eq!(
        get_index_kms(&target, "same-version-other-bytes").unwrap(),
        envelope(4, 9)
    );
    // Import: a bad line is named; the others still land.
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"index\":\"n\",\"kms_name\":\"a\",\"provider\":\"aws-kms\",\"key_id\":\"alias/k\",\"region\":\"us-east-1\",\"wrapped_kek\":\"AAAA\",\"version\":1,\"created_at\":5}\n\
         {\"index\":\"m\",\"wrapped_kek\":\"!!\"}\n",
    )
    .unwrap();
    let run = Run::of(
        Command::new(BIN)
            .arg("--store")
            .arg(&to)
            .arg("import")
            .arg(&input)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(
            "error: import \"line 2\": INVALID_ARGUMENT: import line 2: not an export line: missing field `kms_name`"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        get_index_kms(&target, "n").unwrap().wrapped_kek,
        vec![0, 0, 0]
    );
}

/// Lines in the journal so far.
fn journal_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn rewrap_killed_20_times_resumes_and_rewraps_every_index_exactly_once() {
    // Rounds of 100 indexes: each round's `rewrap --all` is killed (SIGKILL and SIGINT, i.e.
    // Ctrl-C, in turn) at random journal positions until it finishes on its own, then checked;
    // rounds go on until 20 kills in all (a busy machine may let one run get far before its kill
    // lands).
    const INDEXES: usize = 100;
    let mut f = Fixture::new();
    let client = f.client();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill points seed {seed}");
    let mut state = seed | 1;
    let mut next_random = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let (mut kills, mut resumed_work, mut all_keks) = (0, 0, Vec::new());
    for round in 0.. {
        if kills >= 20 {
            break;
        }
        let root = f.dir.path().join(format!("round-{round}"));
        let store = StorageConfig::disk(&root).unwrap();
        let mut keks = Vec::new();
        for i in 0..INDEXES {
            let name = format!("idx-{i:03}");
            let (blob, kek) = client.wrap_new_kek(&name, "a").unwrap();
            cyborgdb_kms::create_index_kms(&store, &name, &KmsBlob { version: 1, ..blob }).unwrap();
            keks.push((name, *kek.as_bytes()));
        }
        let journal = f.dir.path().join(format!("journal-{round}"));
        let rewrap = |quiet: bool| {
            let mut command = Command::new(BIN);
            command
                .arg("--store")
                .arg(&root)
                .args(f.slot_args())
                .args([
                    "rewrap",
                    "--to",
                    "b",
                    "--all",
                    "--parallel",
                    "4",
                    "--journal",
                ])
                .arg(&journal)
                .stdin(Stdio::null());
            if quiet {
                command
                    .arg("--quiet")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
            command
        };
        while kills < 20 {
            let before = journal_lines(&journal);
            // Kill after 0..=8 more records (0: possibly before the journal is even opened).
            let target = before + next_random(9);
            let mut child = rewrap(true).spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            let finished = loop {
                if journal_lines(&journal) >= target {
                    break false;
                }
                if child.try_wait().unwrap().is_some() {
                    break true;
                }
                assert!(Instant::now() < deadline, "no journal progress within 60 s");
                std::thread::yield_now();
            };
            if finished {
                break;
            }
            if kills % 2 == 0 {
                child.kill().unwrap(); // SIGKILL: a crash
            } else {
                // SIGINT: the operator's Ctrl-C (the default action: the process ends there).
                let status = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success(), "kill -INT");
            }
            let status = child.wait().unwrap();
            // Ended by the signal, unless it finished in the meantime.
            assert!(status.signal().is_some() || status.success(), "{status:?}");
            kills += 1;
        }
        let last = Run::of(rewrap(false).arg("--json").output().unwrap()).ok();
        let document: serde_json::Value = serde_json::from_str(&last.stdout).unwrap();
        assert_eq!(document["total"], INDEXES);
        assert_eq!(document["failed"], 0);
        resumed_work += document["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "done-earlier" || r["status"] == "resumed")
            .count();
        for (name, kek) in &keks {
            let blob = get_index_kms(&store, name).unwrap();
            assert_eq!((blob.version, blob.kms_name.as_str()), (2, "b"), "{name}");
            assert_eq!(client.unwrap_kek(name, &blob).unwrap().as_bytes(), kek);
        }
        // A further run changes nothing.
        Run::of(rewrap(true).output().unwrap()).ok();
        assert!(keks
            .iter()
            .all(|(name, _)| get_index_kms(&store, name).unwrap().version == 2));
        f.outputs.push(last.stdout);
        f.outputs.push(last.stderr);
        all_keks.extend(keks.iter().map(|(_, k)| *k));
    }
    assert!(resumed_work > 0, "the killed runs re-wrapped nothing");
    f.assert_no_key_material(&all_keks);
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise() {
    let mut f = Fixture::new();
    for i in 0..30 {
        f.run(&["create", &format!("i{i:02}"), "--slot", "a"]).ok();
    }
    // Not a terminal: plain lines on stderr, no escape sequences.
    let plain = f.run(&["verify"]).ok();
    assert!(
        plain.stderr.lines().all(|l| l.starts_with("verify: ")),
        "{}",
        plain.stderr
    );
    assert!(
        plain
            .stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("verify: 30/30 done, 0 failed, "),
        "{}",
        plain.stderr
    );
    assert!(!plain.stderr.contains('\x1b'));
    // A pseudo-terminal (script(1) runs the command on one): the bar, with count and failures.
    let mut command = vec![
        BIN.to_owned(),
        "--store".into(),
        f.store_path().display().to_string(),
    ];
    command.extend(f.slot_args());
    command.extend(["rewrap", "--to", "b", "--all"].map(String::from));
    let line = command
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .current_dir(f.dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("rewrap [##############################] 30/30"),
        "{text}"
    );
    assert!(text.contains("failed: 0"), "{text}");
    assert!(!text.contains("rewrap: 30/30 done"), "{text}");
    f.outputs.push(text);
    f.assert_no_key_material(&[]);
}

#[test]
fn s3_store_and_kms_on_moto() {
    let moto = moto::moto();
    let kms = moto.kms("us-east-1");
    let key = |description: &str| {
        moto::runtime()
            .block_on(kms.create_key().description(description).send())
            .unwrap()
            .key_metadata
            .unwrap()
            .arn
            .unwrap()
    };
    let (old_key, new_key) = (key("old"), key("new"));
    moto.create_bucket("cli-keystore");
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("cyborgdb.yaml");
    std::fs::write(
        &registry,
        format!(
            "kms:\n  registry:\n    old:\n      provider: aws-kms\n      key_id: {old_key}\n      region: us-east-1\n\
             \x20   new:\n      provider: aws-kms\n      key_id: {new_key}\n      region: us-east-1\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Run::of(
            Command::new(BIN)
                .args(["--store", "s3://cli-keystore/team/keys", "--registry"])
                .arg(&registry)
                .args([
                    "--s3-endpoint",
                    &moto.endpoint,
                    "--kms-endpoint",
                    &moto.endpoint,
                ])
                .args(args)
                .env("CYBORGDB_S3_ACCESS_KEY_ID", "s3-storage-key")
                .env("CYBORGDB_S3_SECRET_ACCESS_KEY", "s3-storage-secret")
                .output()
                .unwrap(),
        )
    };
    run(&["create", "orders", "--slot", "old"]).ok();
    run(&["create", "users", "--slot", "old"]).ok();
    assert_eq!(run(&["list"]).ok().stdout, "orders\nusers\n");
    assert!(moto
        .list_keys("cli-keystore")
        .contains(&"team/keys/orders.kms".to_owned()));
    let verify = run(&["verify", "--unwrap"]).ok();
    assert!(
        verify.stdout.contains("orders  unwrapped"),
        "{}",
        verify.stdout
    );
    let rewrap = run(&[
        "--journal",
        "j",
        "rewrap",
        "--to",
        "new",
        "--from-key",
        &old_key,
    ]);
    // --journal is an option of rewrap, not global: clap says so (exit 2).
    assert_eq!(rewrap.code, 2);
    let journal = dir.path().join("j");
    let rewrap = run(&[
        "rewrap",
        "--to",
        "new",
        "--from-key",
        &old_key,
        "--journal",
        journal.to_str().unwrap(),
    ])
    .ok();
    assert!(rewrap
        .stdout
        .contains("users   rewrapped  from=old to=new version=2"));
    let show = run(&["show", "users", "--json"]).ok();
    let show: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(show["key_id"], new_key.as_str());
    run(&["verify", "--unwrap", "--all"]).ok();
    // S3 → Disk migration, then the secret scan: no storage secret in any output.
    let disk = dir.path().join("disk");
    let copy = run(&[
        "copy",
        "--from",
        "s3://cli-keystore/team/keys",
        "--to",
        disk.to_str().unwrap(),
    ])
    .ok();
    assert!(
        copy.stdout.contains("users   copied  version=2"),
        "{}",
        copy.stdout
    );
    // Missing storage secret: a usage error naming the variable, not the value.
    let run_no_secret = Run::of(
        Command::new(BIN)
            .args([
                "--store",
                "s3://cli-keystore/team/keys",
                "--s3-endpoint",
                &moto.endpoint,
            ])
            .args(["--s3-access-key-id", "s3-storage-key", "list"])
            .env_remove("CYBORGDB_S3_SECRET_ACCESS_KEY")
            .output()
            .unwrap(),
    );
    assert_eq!(
        (run_no_secret.code, run_no_secret.stderr.as_str()),
        (
            2,
            "cyborgdb-kms: S3 storage credentials: an access key id is given but CYBORGDB_S3_SECRET_ACCESS_KEY is not set\n"
        )
    );
    // Drift: slot "old" rotated to the new key, its old key trusted as a previous key; the
    // registry also names a role with an ExternalId (never printed).
    run(&["create", "legacy", "--slot", "old"]).ok();
    std::fs::write(
        &registry,
        format!(
            "kms:\n  registry:\n    old:\n      provider: aws-kms\n      key_id: {new_key}\n      region: us-east-1\n\
             \x20     previous_keys: [{{provider: aws-kms, key_id: \"{old_key}\", region: us-east-1}}]\n\
             \x20   new:\n      provider: aws-kms\n      key_id: {new_key}\n      region: us-east-1\n\
             \x20   byok:\n      provider: aws-kms\n      key_id: arn:aws:kms:us-east-1:999999999999:key/00000000-0000-0000-0000-000000000000\n      region: us-east-1\n\
             \x20     role_arn: arn:aws:iam::123456789012:role/cyborgdb-byok\n\
             \x20     external_id: extid-do-not-print-4711\n"
        ),
    )
    .unwrap();
    let drift = run(&["drift"]).ok();
    assert!(drift.stdout.contains("legacy  drifted"), "{}", drift.stdout);
    assert!(drift.stdout.contains("users   in-sync"), "{}", drift.stdout);
    let repaired = run(&["drift", "--rewrap"]).ok();
    assert!(
        repaired.stdout.contains("legacy  rewrapped"),
        "{}",
        repaired.stdout
    );
    let after = run(&["--json", "drift"]).ok();
    let after: serde_json::Value = serde_json::from_str(&after.stdout).unwrap();
    assert!(after["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "in-sync"));
    // The custody audit on S3: one object per record, verified through the CLI.
    run(&[
        "--audit", "--actor", "ops-s3", "create", "audited", "--slot", "new",
    ])
    .ok();
    run(&["--audit", "--actor", "ops-s3", "delete", "audited", "--yes"]).ok();
    let audit = run(&["--json", "audit", "verify"]).ok();
    let audit: serde_json::Value = serde_json::from_str(&audit.stdout).unwrap();
    assert_eq!(
        (audit["intact"].clone(), audit["records"].clone()),
        (true.into(), 2.into())
    );
    let tail = run(&["audit", "tail"]).ok();
    assert!(
        tail.stdout.contains(" audited  deleted  ops-s3@"),
        "{}",
        tail.stdout
    );
    let failing = run(&["create", "acme", "--slot", "byok"]);
    assert_eq!(failing.code, 1);
    for output in [
        &verify.stdout,
        &verify.stderr,
        &rewrap.stdout,
        &copy.stdout,
        &drift.stdout,
        &repaired.stdout,
        &failing.stdout,
        &failing.stderr,
    ] {
        assert!(!output.contains("s3-storage-secret"));
        assert!(!output.contains("extid-do-not-print-4711"), "{output}");
    }
}
