//! Key shapes and rejection of anything else.

use resonance_domain::{GenerationId, OrgId, VoiceId};
use resonance_storage::{ObjectKey, SampleName, StorageError};

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

/// A replaced sample has keys of its own, and its conditioning is found from its key.
#[test]
fn replaced_samples_have_keys_of_their_own() {
    let org = OrgId::new();
    let voice = VoiceId::new();
    let replacement = SampleName::replacement(&voice);
    let sample = replacement.sample.clone().unwrap();
    let cases = [
        (
            ObjectKey::system_voice_sample(&replacement),
            format!("voices/system/{voice}.{sample}"),
        ),
        (
            ObjectKey::custom_voice_sample(&org, &replacement),
            format!("voices/custom/{org}/{voice}.{sample}"),
        ),
        (
            ObjectKey::custom_voice_sample_original(&org, &replacement),
            format!("voices/custom-originals/{org}/{voice}.{sample}"),
        ),
        (
            ObjectKey::sample_conditionals(&replacement),
            format!("cache/voice-conditionals/{voice}.{sample}"),
        ),
    ];
    for (key, expected) in cases {
        assert_eq!(key.as_str(), expected);
        assert_eq!(ObjectKey::parse(&expected).unwrap(), key);
    }
    for (sample_key, name) in [
        (ObjectKey::system_voice(&voice), SampleName::first(&voice)),
        (
            ObjectKey::custom_voice(&org, &voice),
            SampleName::first(&voice),
        ),
        (
            ObjectKey::custom_voice_sample(&org, &replacement),
            replacement.clone(),
        ),
    ] {
        assert_eq!(
            sample_key.conditionals_of_sample(),
            Some(ObjectKey::sample_conditionals(&name))
        );
        assert_eq!(SampleName::of_key(&sample_key), Some(name));
    }
    for other in [
        ObjectKey::custom_voice_original(&org, &voice),
        ObjectKey::voice_conditionals(&voice),
        ObjectKey::generation(&org, &GenerationId::new()),
    ] {
        assert_eq!(other.conditionals_of_sample(), None, "{other}");
        assert_eq!(SampleName::of_key(&other), None, "{other}");
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
        format!("voices/custom/{org}/{voice}."),
        format!("voices/custom/{org}/{voice}.{voice}.{voice}"),
        format!("voices/system/{voice}..{voice}"),
        format!("cache/voice-conditionals/.{voice}"),
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
