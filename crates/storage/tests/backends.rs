//! The same behaviour checked against the local folder backend and the S3 backend (an
//! in-process s3s-fs server).

use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use resonance_domain::{GenerationId, OrgId, VoiceId};
use resonance_storage::{
    KeyPrefix, ObjectKey, S3Settings, SignatureError, Storage, StorageError, UrlSigningSecret,
};
use resonance_testkit::s3::TestS3;
use tempfile::TempDir;

struct Fixture {
    storage: Storage,
    backend: Backend,
}

/// Owns the folder or server the storage uses, for as long as the test runs.
enum Backend {
    Local { _dir: TempDir },
    S3 { _server: TestS3 },
}

impl Fixture {
    fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let secret = UrlSigningSecret::new([7u8; 32]).unwrap();
        let storage = Storage::local(dir.path().join("objects"), secret).unwrap();
        Self {
            storage,
            backend: Backend::Local { _dir: dir },
        }
    }

    fn s3() -> Self {
        let server = TestS3::start().unwrap();
        let storage = Storage::s3(&s3_settings(&server)).unwrap();
        Self {
            storage,
            backend: Backend::S3 { _server: server },
        }
    }

    /// The local backend has nowhere to keep content types.
    fn expected_content_type(&self, stored: &str) -> Option<String> {
        match self.backend {
            Backend::Local { .. } => None,
            Backend::S3 { .. } => Some(stored.to_string()),
        }
    }
}

fn s3_settings(server: &TestS3) -> S3Settings {
    S3Settings {
        endpoint: Some(server.endpoint()),
        region: server.region().to_string(),
        bucket: server.bucket().to_string(),
        access_key_id: server.access_key_id().to_string(),
        secret_access_key: server.secret_access_key().to_string(),
        virtual_hosted_style: false,
        allow_http: true,
    }
}

fn audio_bytes(len: usize) -> Bytes {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn flip_first_hex_digit(hex: &str) -> String {
    let flipped = if hex.starts_with('0') { '1' } else { '0' };
    format!("{flipped}{}", &hex[1..])
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StorageError>, key: &ObjectKey) {
    match result {
        Err(StorageError::NotFound { key: missing }) => assert_eq!(missing, key.as_str()),
        other => panic!("expected NotFound for {key}, got {other:?}"),
    }
}

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Fixture::local()).await
            })*
        }
        mod s3 {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Fixture::s3()).await
            })*
        }
    };
}

on_both_backends!(
    put_get_head_delete_round_trip,
    put_replaces_the_object,
    get_range_returns_the_requested_bytes,
    get_stream_yields_every_byte,
    missing_objects_are_not_found,
    list_returns_the_keys_under_a_prefix,
    ping_succeeds_on_a_working_store,
);

async fn put_get_head_delete_round_trip(fixture: Fixture) {
    let storage = &fixture.storage;
    let key = ObjectKey::custom_voice(&OrgId::new(), &VoiceId::new());
    let bytes = audio_bytes(5000);

    storage.put(&key, bytes.clone(), "audio/wav").await.unwrap();

    assert_eq!(storage.get(&key).await.unwrap(), bytes);
    let info = storage.head(&key).await.unwrap();
    assert_eq!(info.size, 5000);
    assert_eq!(
        info.content_type,
        fixture.expected_content_type("audio/wav")
    );

    storage.delete(&key).await.unwrap();
    assert_not_found(storage.get(&key).await, &key);
    // Deleting again is not an error.
    storage.delete(&key).await.unwrap();
    // Cleaning up emptied folders leaves the store itself in place.
    storage.ping().await.unwrap();
}

async fn put_replaces_the_object(fixture: Fixture) {
    let storage = &fixture.storage;
    let key = ObjectKey::generation(&OrgId::new(), &GenerationId::new());
    storage
        .put(&key, audio_bytes(100), "audio/wav")
        .await
        .unwrap();
    storage
        .put(&key, Bytes::from_static(b"ID3 mp3"), "audio/mpeg")
        .await
        .unwrap();

    assert_eq!(storage.get(&key).await.unwrap(), &b"ID3 mp3"[..]);
    let info = storage.head(&key).await.unwrap();
    assert_eq!(info.size, 7);
    assert_eq!(
        info.content_type,
        fixture.expected_content_type("audio/mpeg")
    );
}

async fn get_range_returns_the_requested_bytes(fixture: Fixture) {
    let storage = &fixture.storage;
    let key = ObjectKey::system_voice(&VoiceId::new());
    let bytes = audio_bytes(1000);
    storage.put(&key, bytes.clone(), "audio/wav").await.unwrap();

    assert_eq!(
        storage.get_range(&key, 0..1).await.unwrap(),
        bytes.slice(0..1)
    );
    assert_eq!(
        storage.get_range(&key, 100..612).await.unwrap(),
        bytes.slice(100..612)
    );
    assert_eq!(
        storage.get_range(&key, 900..1000).await.unwrap(),
        bytes.slice(900..1000)
    );
    // A range running past the end is cut at the end.
    assert_eq!(
        storage.get_range(&key, 990..5000).await.unwrap(),
        bytes.slice(990..1000)
    );
    for unsatisfiable in [1000..1010, 2000..3000, 10..10] {
        match storage.get_range(&key, unsatisfiable.clone()).await {
            Err(StorageError::RangeNotSatisfiable {
                key: error_key,
                range,
            }) => {
                assert_eq!((error_key.as_str(), range), (key.as_str(), unsatisfiable));
            }
            other => panic!("{unsatisfiable:?} gave {other:?}"),
        }
    }
}

async fn get_stream_yields_every_byte(fixture: Fixture) {
    let storage = &fixture.storage;
    let key = ObjectKey::generation(&OrgId::new(), &GenerationId::new());
    // Large enough to arrive in several chunks from either backend.
    let bytes = audio_bytes(300_000);
    storage.put(&key, bytes.clone(), "audio/wav").await.unwrap();

    let stream = storage.get_stream(&key).await.unwrap();
    assert_eq!(stream.info.size, 300_000);
    assert_eq!(
        stream.info.content_type,
        fixture.expected_content_type("audio/wav")
    );
    let chunks: Vec<Bytes> = stream.body.try_collect().await.unwrap();
    assert!(
        chunks.len() > 1,
        "expected several chunks, got {}",
        chunks.len()
    );
    assert_eq!(chunks.concat(), bytes);
}

async fn missing_objects_are_not_found(fixture: Fixture) {
    let storage = &fixture.storage;
    let key = ObjectKey::custom_voice(&OrgId::new(), &VoiceId::new());
    assert_not_found(storage.get(&key).await, &key);
    assert_not_found(storage.get_range(&key, 0..10).await, &key);
    assert_not_found(storage.head(&key).await, &key);
    assert_not_found(storage.get_stream(&key).await.map(|s| s.info), &key);
}

async fn list_returns_the_keys_under_a_prefix(fixture: Fixture) {
    let storage = &fixture.storage;
    let (org_a, org_b) = (OrgId::new(), OrgId::new());
    let voice = VoiceId::new();
    let a_voices = [
        ObjectKey::custom_voice(&org_a, &voice),
        ObjectKey::custom_voice(&org_a, &VoiceId::new()),
    ];
    let others = [
        ObjectKey::system_voice(&VoiceId::new()),
        ObjectKey::custom_voice(&org_b, &VoiceId::new()),
        ObjectKey::custom_voice_original(&org_a, &voice),
        ObjectKey::generation(&org_a, &GenerationId::new()),
        ObjectKey::voice_conditionals(&voice),
    ];
    for key in a_voices.iter().chain(&others) {
        storage
            .put(key, audio_bytes(10), "audio/wav")
            .await
            .unwrap();
    }

    let sorted = |mut keys: Vec<ObjectKey>| {
        keys.sort();
        keys
    };
    assert_eq!(
        sorted(
            storage
                .list(&KeyPrefix::custom_voices(&org_a))
                .await
                .unwrap()
        ),
        sorted(a_voices.to_vec())
    );
    assert_eq!(
        storage.list(&KeyPrefix::system_voices()).await.unwrap(),
        vec![others[0].clone()]
    );
    assert_eq!(
        storage.list(&KeyPrefix::generations(&org_a)).await.unwrap(),
        vec![others[3].clone()]
    );
    assert!(
        storage
            .list(&KeyPrefix::generations(&org_b))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sorted(storage.list(&KeyPrefix::everything()).await.unwrap()),
        sorted(a_voices.iter().chain(&others).cloned().collect())
    );
    let mut every_voice_object: Vec<ObjectKey> = a_voices.to_vec();
    every_voice_object.extend([others[0].clone(), others[1].clone(), others[2].clone()]);
    assert_eq!(
        sorted(storage.list(&KeyPrefix::voices()).await.unwrap()),
        sorted(every_voice_object)
    );
    let conditionals = storage
        .list_objects(&KeyPrefix::voice_conditionals())
        .await
        .unwrap();
    assert_eq!(conditionals.len(), 1);
    assert_eq!(conditionals[0].key, others[4]);
    assert_eq!(conditionals[0].size, audio_bytes(10).len() as u64);
    let age = std::time::SystemTime::now()
        .duration_since(conditionals[0].last_modified)
        .unwrap_or_default();
    assert!(age.as_secs() < 600, "written just now, not {age:?} ago");
}

async fn ping_succeeds_on_a_working_store(fixture: Fixture) {
    fixture.storage.ping().await.unwrap();
}

#[tokio::test]
async fn s3_presigned_urls_fetch_the_object_until_they_expire() {
    let fixture = Fixture::s3();
    let storage = &fixture.storage;
    let key = ObjectKey::generation(&OrgId::new(), &GenerationId::new());
    let bytes = audio_bytes(2000);
    storage.put(&key, bytes.clone(), "audio/wav").await.unwrap();
    let client = reqwest::Client::new();

    let url = storage
        .signed_url(&key, resonance_storage::SIGNED_URL_TTL)
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Expires=3600"), "{url}");
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), bytes);

    let (unsigned, signature) = url.split_once("X-Amz-Signature=").unwrap();
    let tampered = format!(
        "{unsigned}X-Amz-Signature={}",
        flip_first_hex_digit(signature)
    );
    let response = client.get(&tampered).send().await.unwrap();
    assert_eq!(response.status(), 403);

    let other_key = ObjectKey::generation(&OrgId::new(), &GenerationId::new());
    storage
        .put(&other_key, audio_bytes(10), "audio/wav")
        .await
        .unwrap();
    let swapped = url.replace(key.as_str(), other_key.as_str());
    let response = client.get(&swapped).send().await.unwrap();
    assert_eq!(response.status(), 403);

    let short_lived = storage
        .signed_url(&key, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = client.get(&short_lived).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn s3_urls_follow_the_addressing_style() {
    let key = ObjectKey::system_voice(&VoiceId::new());
    let r2 = |virtual_hosted_style| S3Settings {
        endpoint: Some("https://account.r2.cloudflarestorage.com".to_string()),
        region: "auto".to_string(),
        bucket: "voices-bucket".to_string(),
        access_key_id: "key-id".to_string(),
        secret_access_key: "secret".to_string(),
        virtual_hosted_style,
        allow_http: false,
    };
    // Signing is local computation: no request reaches the endpoint.
    let path_style = Storage::s3(&r2(false))
        .unwrap()
        .signed_url(&key, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        path_style.starts_with(&format!(
            "https://account.r2.cloudflarestorage.com/voices-bucket/{key}?"
        )),
        "{path_style}"
    );
    let virtual_hosted = Storage::s3(&r2(true))
        .unwrap()
        .signed_url(&key, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        virtual_hosted.starts_with(&format!(
            "https://voices-bucket.account.r2.cloudflarestorage.com/{key}?"
        )),
        "{virtual_hosted}"
    );

    let mut bad_endpoint = r2(true);
    bad_endpoint.endpoint = Some("not a url".to_string());
    let error = Storage::s3(&bad_endpoint).unwrap_err();
    assert!(error.to_string().contains("not a url"), "{error}");
}

#[tokio::test]
async fn s3_storage_does_not_accept_local_signatures() {
    let fixture = Fixture::s3();
    let key = ObjectKey::system_voice(&VoiceId::new());
    assert_eq!(
        fixture
            .storage
            .verify_local_signature(&key, u64::MAX, "00", 0),
        Err(SignatureError::NotLocalStorage)
    );
}

/// Splits `/files/{key}?expires=..&sig=..` into its parts.
fn parse_local_url(url: &str) -> (ObjectKey, u64, String) {
    let rest = url
        .strip_prefix(resonance_storage::LOCAL_FILES_PATH)
        .unwrap();
    let (key, query) = rest.split_once('?').unwrap();
    let (expires, sig) = query
        .strip_prefix("expires=")
        .unwrap()
        .split_once("&sig=")
        .unwrap();
    (
        ObjectKey::parse(key).unwrap(),
        expires.parse().unwrap(),
        sig.to_string(),
    )
}

#[tokio::test]
async fn local_signed_urls_verify_until_they_expire() {
    let fixture = Fixture::local();
    let storage = &fixture.storage;
    let key = ObjectKey::custom_voice(&OrgId::new(), &VoiceId::new());

    let before = resonance_storage::unix_now();
    let url = storage
        .signed_url(&key, resonance_storage::SIGNED_URL_TTL)
        .await
        .unwrap();
    let (url_key, expires, sig) = parse_local_url(&url);
    assert_eq!(url_key, key);
    assert!((before + 3600..=resonance_storage::unix_now() + 3600).contains(&expires));

    assert_eq!(
        storage.verify_local_signature(&key, expires, &sig, before),
        Ok(())
    );
    assert_eq!(
        storage.verify_local_signature(&key, expires, &sig, expires),
        Ok(())
    );
    assert_eq!(
        storage.verify_local_signature(&key, expires, &sig, expires + 1),
        Err(SignatureError::Expired)
    );

    let mismatches = [
        (key.clone(), expires + 3600, sig.clone()),
        (key.clone(), expires, flip_first_hex_digit(&sig)),
        (key.clone(), expires, sig[..62].to_string()),
        (key.clone(), expires, "not hex".to_string()),
        (key.clone(), expires, String::new()),
        (
            ObjectKey::system_voice(&VoiceId::new()),
            expires,
            sig.clone(),
        ),
    ];
    for (other_key, other_expires, other_sig) in mismatches {
        assert_eq!(
            storage.verify_local_signature(&other_key, other_expires, &other_sig, before),
            Err(SignatureError::Mismatch),
            "{other_key} {other_expires} {other_sig}"
        );
    }

    // Another secret does not accept this signature.
    let dir = tempfile::tempdir().unwrap();
    let other_storage =
        Storage::local(dir.path(), UrlSigningSecret::new([8u8; 32]).unwrap()).unwrap();
    assert_eq!(
        other_storage.verify_local_signature(&key, expires, &sig, before),
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn local_backend_lays_files_out_by_key_and_skips_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data").join("objects");
    let storage = Storage::local(&root, UrlSigningSecret::new([1u8; 40]).unwrap()).unwrap();
    assert!(root.is_dir(), "the folder is created");

    let org = OrgId::new();
    let generation = GenerationId::new();
    let key = ObjectKey::generation(&org, &generation);
    storage
        .put(&key, audio_bytes(64), "audio/wav")
        .await
        .unwrap();
    let file = root.join(format!("generations/orgs/{org}/{generation}"));
    assert_eq!(std::fs::read(&file).unwrap(), audio_bytes(64));

    std::fs::write(root.join("generations/orgs/notes.txt"), b"not ours").unwrap();
    assert_eq!(
        storage.list(&KeyPrefix::everything()).await.unwrap(),
        vec![key.clone()]
    );

    storage.delete(&key).await.unwrap();
    assert!(!file.exists());
}

#[tokio::test]
async fn s3_ping_names_the_bucket_and_endpoint_when_it_fails() {
    let server = TestS3::start().unwrap();
    let settings = s3_settings(&server);

    let mut wrong_bucket = s3_settings(&server);
    wrong_bucket.bucket = "no-such-bucket".to_string();
    let error = Storage::s3(&wrong_bucket)
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("no-such-bucket"), "{message}");

    let mut wrong_secret = s3_settings(&server);
    wrong_secret.secret_access_key = "wrong".to_string();
    let error = Storage::s3(&wrong_secret)
        .unwrap()
        .ping()
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );

    let storage = Storage::s3(&settings).unwrap();
    storage.ping().await.unwrap();
    drop(server);
    let error = storage.ping().await.unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(settings.endpoint.as_deref().unwrap()),
        "{message}"
    );
    assert!(
        message.contains(&format!("{:?}", settings.bucket)),
        "{message}"
    );
    assert!(!message.contains(&settings.secret_access_key), "{message}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let server = TestS3::start().unwrap();
    let settings = s3_settings(&server);
    let s3 = Storage::s3(&settings).unwrap();
    for debug in [format!("{settings:?}"), format!("{s3:?}")] {
        assert!(debug.contains(&settings.bucket), "{debug}");
        assert!(!debug.contains(&settings.secret_access_key), "{debug}");
    }

    let dir = tempfile::tempdir().unwrap();
    let secret_text = "local-url-signing-secret-0123456789";
    let secret = UrlSigningSecret::new(secret_text).unwrap();
    let local = Storage::local(dir.path(), secret.clone()).unwrap();
    let secret_bytes = format!("{:?}", secret_text.as_bytes());
    for debug in [format!("{secret:?}"), format!("{local:?}")] {
        assert!(debug.contains("redacted"), "{debug}");
        assert!(!debug.contains(secret_text), "{debug}");
        assert!(!debug.contains(&secret_bytes[1..20]), "{debug}");
    }
}

#[tokio::test]
async fn local_ping_fails_when_the_folder_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let storage = Storage::local(&root, UrlSigningSecret::new([1u8; 32]).unwrap()).unwrap();
    storage.ping().await.unwrap();
    std::fs::remove_dir(&root).unwrap();
    let error = storage.ping().await.unwrap_err();
    assert!(
        matches!(error, StorageError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&root.display().to_string()),
        "{error}"
    );
}
