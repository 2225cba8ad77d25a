//! The documented semantics, on every backend: create is a strict insert, push an upsert, get
//! returns the stored blob or NOT_FOUND, delete is idempotent; and the input rules.

mod common;

use common::{aws_kms_blob, both_stores, hostile_names, none_blob, sorted};
use cyborgdb_kms::{
    create_index_kms, delete_index_kms, get_index_kms, list_index_kms, push_index_kms, ErrorKind,
    IndexName, KmsBlob, StorageConfig,
};
use std::time::{SystemTime, UNIX_EPOCH};

#[test]
fn create_is_a_strict_insert_that_keeps_the_first_envelope() {
    for (kind, store, _dir) in both_stores() {
        create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
        let err = create_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{kind}");
        assert_eq!(
            err.message(),
            "index \"idx\": a KMS envelope already exists"
        );
        assert_eq!(
            get_index_kms(&store, "idx").unwrap(),
            aws_kms_blob(1),
            "{kind}"
        );
    }
}

#[test]
fn push_creates_then_replaces() {
    for (kind, store, _dir) in both_stores() {
        push_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
        assert_eq!(
            get_index_kms(&store, "idx").unwrap(),
            aws_kms_blob(1),
            "{kind}"
        );
        push_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap();
        assert_eq!(
            get_index_kms(&store, "idx").unwrap(),
            aws_kms_blob(2),
            "{kind}"
        );
        push_index_kms(&store, "idx", &aws_kms_blob(2)).unwrap();
        assert_eq!(
            get_index_kms(&store, "idx").unwrap(),
            aws_kms_blob(2),
            "{kind}"
        );
    }
}

#[test]
fn get_of_a_missing_envelope_is_not_found_naming_the_index() {
    for (kind, store, _dir) in both_stores() {
        let err = get_index_kms(&store, "nope").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{kind}");
        assert_eq!(err.message(), "index \"nope\": no KMS envelope is stored");
    }
}

#[test]
fn delete_is_idempotent_and_allows_create_again() {
    for (kind, store, _dir) in both_stores() {
        delete_index_kms(&store, "idx").unwrap();
        create_index_kms(&store, "idx", &aws_kms_blob(1)).unwrap();
        delete_index_kms(&store, "idx").unwrap();
        delete_index_kms(&store, "idx").unwrap();
        assert_eq!(
            get_index_kms(&store, "idx").unwrap_err().kind(),
            ErrorKind::NotFound,
            "{kind}"
        );
        create_index_kms(&store, "idx", &aws_kms_blob(3)).unwrap();
        assert_eq!(get_index_kms(&store, "idx").unwrap(), aws_kms_blob(3));
    }
}

#[test]
fn indexes_are_independent() {
    for (_, store, _dir) in both_stores() {
        create_index_kms(&store, "a", &aws_kms_blob(1)).unwrap();
        create_index_kms(&store, "b", &aws_kms_blob(2)).unwrap();
        delete_index_kms(&store, "a").unwrap();
        assert_eq!(get_index_kms(&store, "b").unwrap(), aws_kms_blob(2));
    }
}

#[test]
fn list_returns_every_stored_name_once_sorted_and_forgets_deleted_ones() {
    let names = hostile_names();
    let hashed = names
        .iter()
        .filter(|n| IndexName::new(n).unwrap().storage_key().starts_with('~'))
        .count();
    assert_eq!(hashed, 6, "the list exercises hashed keys");
    for (kind, store, _dir) in both_stores() {
        assert!(list_index_kms(&store).unwrap().is_empty(), "{kind}");
        for (i, name) in names.iter().enumerate() {
            create_index_kms(&store, name, &aws_kms_blob(i as u8)).unwrap();
        }
        assert_eq!(list_index_kms(&store).unwrap(), sorted(&names), "{kind}");
        // Replacing an envelope does not list its name twice.
        for name in &names {
            push_index_kms(&store, name, &none_blob()).unwrap();
        }
        assert_eq!(list_index_kms(&store).unwrap(), sorted(&names), "{kind}");
        // Every listed name reads back.
        for name in list_index_kms(&store).unwrap() {
            assert_eq!(get_index_kms(&store, &name).unwrap(), none_blob(), "{kind}");
        }

        let (gone, kept): (Vec<_>, Vec<_>) = names
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        for (_, name) in &gone {
            delete_index_kms(&store, name).unwrap();
        }
        let kept: Vec<String> = kept.into_iter().map(|(_, n)| n).collect();
        assert_eq!(list_index_kms(&store).unwrap(), sorted(&kept), "{kind}");
        for name in &kept {
            delete_index_kms(&store, name).unwrap();
        }
        assert!(list_index_kms(&store).unwrap().is_empty(), "{kind}");
    }
}

#[test]
fn clones_and_other_configs_on_one_store_list_the_same_names() {
    let memory = StorageConfig::memory();
    push_index_kms(&memory, "idx", &none_blob()).unwrap();
    assert_eq!(list_index_kms(&memory.clone()).unwrap(), ["idx"]);
    assert!(list_index_kms(&StorageConfig::memory()).unwrap().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let a = StorageConfig::disk(dir.path()).unwrap();
    push_index_kms(&a, &"鍵".repeat(85), &none_blob()).unwrap();
    let b = StorageConfig::disk(dir.path()).unwrap();
    assert_eq!(list_index_kms(&b).unwrap(), ["鍵".repeat(85)]);
}

#[test]
fn zero_created_at_is_stamped_and_nonzero_kept() {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    for (kind, store, _dir) in both_stores() {
        let before = now();
        let blob = KmsBlob {
            created_at: 0,
            ..aws_kms_blob(1)
        };
        create_index_kms(&store, "c", &blob).unwrap();
        push_index_kms(&store, "p", &blob).unwrap();
        let after = now();
        for name in ["c", "p"] {
            let stamped = get_index_kms(&store, name).unwrap().created_at;
            assert!((before..=after).contains(&stamped), "{kind} {name}");
        }
        let kept = KmsBlob {
            created_at: -5,
            ..aws_kms_blob(1)
        };
        push_index_kms(&store, "k", &kept).unwrap();
        assert_eq!(get_index_kms(&store, "k").unwrap().created_at, -5);
    }
}

#[test]
fn provider_none_round_trips_with_nothing_key_derived() {
    for (_, store, _dir) in both_stores() {
        create_index_kms(&store, "sdk", &none_blob()).unwrap();
        let got = get_index_kms(&store, "sdk").unwrap();
        assert_eq!(got, none_blob());
        assert!(got.wrapped_kek.is_empty());
    }
}

#[test]
fn extreme_field_values_round_trip() {
    for (_, store, _dir) in both_stores() {
        let blob = KmsBlob {
            kms_name: "ü".repeat(1024),
            key_id: "k".repeat(2048),
            region: "r".repeat(2048),
            wrapped_kek: vec![0xFF; 8192],
            version: u32::MAX,
            created_at: i64::MIN,
            ..aws_kms_blob(1)
        };
        push_index_kms(&store, "big", &blob).unwrap();
        assert_eq!(get_index_kms(&store, "big").unwrap(), blob);
    }
}

#[test]
fn invalid_blobs_are_rejected_and_store_nothing() {
    let invalid = [
        KmsBlob {
            provider: "gcp".into(),
            ..aws_kms_blob(1)
        },
        KmsBlob {
            wrapped_kek: vec![1],
            ..none_blob()
        },
        KmsBlob {
            key_id: String::new(),
            ..aws_kms_blob(1)
        },
        KmsBlob {
            key_id: "k".repeat(2049),
            ..aws_kms_blob(1)
        },
        KmsBlob {
            wrapped_kek: vec![0; 8193],
            ..aws_kms_blob(1)
        },
    ];
    for (kind, store, _dir) in both_stores() {
        push_index_kms(&store, "kept", &aws_kms_blob(1)).unwrap();
        for blob in &invalid {
            for result in [
                create_index_kms(&store, "new", blob),
                push_index_kms(&store, "new", blob),
                push_index_kms(&store, "kept", blob),
            ] {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{kind} {blob:?}");
                assert!(err.message().starts_with("index \""), "{}", err.message());
            }
        }
        assert_eq!(
            get_index_kms(&store, "new").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(get_index_kms(&store, "kept").unwrap(), aws_kms_blob(1));
    }
}

#[test]
fn bad_index_names_are_invalid_arguments_for_every_operation() {
    let too_long = "n".repeat(256);
    for (kind, store, _dir) in both_stores() {
        for name in ["", "a\0b", too_long.as_str()] {
            let results = [
                create_index_kms(&store, name, &aws_kms_blob(1)),
                push_index_kms(&store, name, &aws_kms_blob(1)),
                get_index_kms(&store, name).map(|_| ()),
                delete_index_kms(&store, name),
            ];
            for result in results {
                assert_eq!(
                    result.unwrap_err().kind(),
                    ErrorKind::InvalidArgument,
                    "{kind} {name:?}"
                );
            }
        }
    }
}

#[test]
fn memory_copies_share_envelopes_and_separate_stores_do_not() {
    let first = StorageConfig::memory();
    let copy = first.clone();
    create_index_kms(&first, "idx", &aws_kms_blob(1)).unwrap();
    assert_eq!(get_index_kms(&copy, "idx").unwrap(), aws_kms_blob(1));
    let other = StorageConfig::memory();
    assert_eq!(
        get_index_kms(&other, "idx").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn disk_stores_on_one_root_share_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let a = StorageConfig::disk(dir.path()).unwrap();
    let b = StorageConfig::disk(dir.path()).unwrap();
    create_index_kms(&a, "idx", &aws_kms_blob(1)).unwrap();
    assert_eq!(get_index_kms(&b, "idx").unwrap(), aws_kms_blob(1));
}

#[test]
fn disk_path_must_be_usable() {
    assert_eq!(
        StorageConfig::disk("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}
