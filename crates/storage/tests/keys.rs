//! Key shapes and rejection of anything else.

use resonance_domain::{GenerationId, OrgId, VoiceId};
use resonance_storage::{ObjectKey, StorageError};

#[test]
fn keys_follow_the_shared_bucket_layout() {
    let org = OrgId::new();
    let voice = VoiceId::new();
    let generation = GenerationId::new();
    let cases = [
        (
            ObjectKey::system_voice(&voice),
            format!("voices/system/{voice}"),
        ),
        (
            ObjectKey::custom_voice(&org, &voice),
            format!("voices/custom/{org}/{voice}"),
        ),
        (
            ObjectKey::custom_voice_original(&org, &voice),
            format!("voices/custom-originals/{org}/{voice}"),
        ),
        (
            ObjectKey::generation(&org, &generation),
            format!("generations/orgs/{org}/{generation}"),
        ),
        (
            ObjectKey::voice_conditionals(&voice),
            format!("cache/voice-conditionals/{voice}"),
        ),
    ];
    for (key, expected) in cases {
        assert_eq!(key.as_str(), expected);
        assert_eq!(key.to_string(), expected);
        assert_eq!(ObjectKey::parse(&expected).unwrap(), key);
    }
}

#[test]
fn parse_rejects_traversal_and_unknown_shapes() {
    let org = OrgId::new();
    let voice = VoiceId::new();
    let rejected = [
        String::new(),
        "../../etc/passwd".to_string(),
        format!("voices/system/../../{voice}"),
        format!("voices/system/{voice}/.."),
        format!("voices/system/{voice}/extra"),
        format!("/voices/system/{voice}"),
        format!("voices//system/{voice}"),
        format!("voices/system/{voice}/"),
        format!("voices/system/{voice}\n"),
        format!("voices\\system\\{voice}"),
        format!("voices/system/%2e%2e%2f{voice}"),
        format!("voices/system/{}", voice.as_str().to_uppercase()),
        format!("voices/custom/{voice}"),
        format!("voices/custom/{org}/{voice}/{voice}"),
        format!("voices/custom/../{org}/{voice}"),
        format!("voices/custom-originals/{org}"),
        format!("voices/other/{voice}"),
        format!("generations/orgs/{org}"),
        format!("generations/{org}/{voice}"),
        format!("cache/voice-conditionals/{org}/{voice}"),
        "voices/system/..".to_string(),
        "voices/system/".to_string(),
    ];
    for text in rejected {
        match ObjectKey::parse(&text) {
            Err(StorageError::InvalidKey { key }) => assert_eq!(key, text),
            other => panic!("{text:?} gave {other:?}"),
        }
    }
}
