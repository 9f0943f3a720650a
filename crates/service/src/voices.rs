//! Creating and deleting voices together with their audio, replacing a voice's sample, and
//! reconciling the database with object storage. Shared by the API and the operator CLI.
//!
//! Order of writes: the audio objects first, then the row that points at them. A failed
//! row write removes the objects again, so a voice row never points at missing audio;
//! a crash between the two leaves only objects without a row, which [`reconcile`] removes.
//! A replaced sample's objects go after the row points at the new ones.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use resonance_audio::DecodeError;
use resonance_audio::voice_sample::{self, SampleError, VoiceSample};
use resonance_db::{Database, DbError, NewVoice, Voice, VoiceConsent, VoiceEdit};
use resonance_domain::{Language, VoiceCategory, VoiceDescription, VoiceId, VoiceName, VoiceOwner};
use resonance_storage::{KeyPrefix, ObjectKey, SampleName, Storage, StorageError};

const WAV: &str = "audio/wav";
const CONDITIONING: &str = "application/octet-stream";

/// What describes a voice, parsed.
#[derive(Debug, Clone)]
pub struct VoiceDetails {
    pub name: VoiceName,
    pub description: Option<VoiceDescription>,
    pub category: VoiceCategory,
    pub language: Language,
    /// That the speaker agreed to the cloning, when the caller confirmed it.
    pub consent: Option<VoiceConsent>,
}

/// An uploaded recording as received.
pub struct Upload {
    pub bytes: Bytes,
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateVoiceError {
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Checks the recording, stores its canonical sample (and, for custom voices, the upload as
/// received), then creates the row unless the organization keeps `voice_slots` custom voices
/// already. Nothing stays stored when any step fails.
pub async fn create_voice(
    db: &dyn Database,
    storage: &Storage,
    owner: VoiceOwner,
    details: VoiceDetails,
    upload: Upload,
    voice_slots: Option<u64>,
) -> Result<Voice, CreateVoiceError> {
    let sample = prepare(upload.bytes.clone(), upload.content_type.clone()).await?;
    let id = VoiceId::new();
    let keys = ObjectKeys::new(&owner, &SampleName::first(&id));
    if let Err(error) = put_objects(storage, &keys, sample, upload).await {
        remove_objects(storage, &keys.all()).await;
        return Err(error.into());
    }
    let new_voice = NewVoice {
        id,
        owner,
        name: details.name,
        description: details.description,
        category: details.category,
        language: details.language,
        object_key: Some(keys.sample.to_string()),
        consent: details.consent,
    };
    match db.create_voice_within(&new_voice, voice_slots).await {
        Ok(voice) => Ok(voice),
        Err(error) => {
            remove_objects(storage, &keys.all()).await;
            Err(error.into())
        }
    }
}

/// A SYSTEM voice an engine brings with it (the checkpoint's built-in voice).
pub struct EngineVoice {
    pub details: VoiceDetails,
    /// Its sample, a WAV file.
    pub sample_wav: Bytes,
    /// Its conditioning as the engine caches it, so no one computes it again.
    pub conditioning: Option<Bytes>,
}

/// Whether the library has a SYSTEM voice called `name` (any case).
pub async fn has_system_voice(db: &dyn Database, name: &VoiceName) -> Result<bool, DbError> {
    Ok(db
        .system_voices()
        .await?
        .iter()
        .any(|voice| voice.name.as_str().eq_ignore_ascii_case(name.as_str())))
}

/// Adds an engine's voice as a SYSTEM voice: its objects first, then the row. `None` when
/// a SYSTEM voice of that name appeared meanwhile (another server starting on the same
/// database installed it first), and this copy's objects are gone again.
pub async fn install_system_voice(
    db: &dyn Database,
    storage: &Storage,
    voice: EngineVoice,
) -> Result<Option<Voice>, CreateVoiceError> {
    let id = VoiceId::new();
    let keys = ObjectKeys::new(&VoiceOwner::System, &SampleName::first(&id));
    let stored = async {
        storage.put(&keys.sample, voice.sample_wav, WAV).await?;
        if let Some(conditioning) = voice.conditioning {
            storage
                .put(&keys.conditionals, conditioning, CONDITIONING)
                .await?;
        }
        Ok::<_, StorageError>(())
    }
    .await;
    if let Err(error) = stored {
        remove_objects(storage, &keys.all()).await;
        return Err(error.into());
    }
    let name = voice.details.name.clone();
    let new_voice = NewVoice {
        id,
        owner: VoiceOwner::System,
        name: voice.details.name,
        description: voice.details.description,
        category: voice.details.category,
        language: voice.details.language,
        object_key: Some(keys.sample.to_string()),
        consent: voice.details.consent,
    };
    match db.create_voice(&new_voice).await {
        Ok(voice) => Ok(Some(voice)),
        Err(error) => {
            remove_objects(storage, &keys.all()).await;
            // System voice names are unique.
            match error {
                DbError::Conflict(_) if has_system_voice(db, &name).await? => Ok(None),
                error => Err(error.into()),
            }
        }
    }
}

/// What an edit of a voice changes; `None` keeps the field as it is.
#[derive(Debug, Clone, Default)]
pub struct VoiceChanges {
    pub name: Option<VoiceName>,
    /// `Some(None)` removes the description.
    pub description: Option<Option<VoiceDescription>>,
    pub category: Option<VoiceCategory>,
    pub language: Option<Language>,
}

impl VoiceChanges {
    /// `voice`'s details with these changes made.
    pub fn applied_to(self, voice: &Voice) -> VoiceEdit {
        VoiceEdit {
            name: self.name.unwrap_or_else(|| voice.name.clone()),
            description: self
                .description
                .unwrap_or_else(|| voice.description.clone()),
            category: self.category.unwrap_or(voice.category),
            language: self.language.unwrap_or_else(|| voice.language.clone()),
        }
    }
}

/// Replaces `voice`'s sample with a new recording, checked like a new voice's: the new
/// sample's objects first, then the row that points at them (with the consent given for
/// it), then the old sample's objects go, its cached conditioning with them. The new sample
/// has keys of its own, so no engine takes the old one's conditioning for it. Nothing new
/// stays stored when a step fails.
pub async fn replace_sample(
    db: &dyn Database,
    storage: &Storage,
    voice: &Voice,
    upload: Upload,
    consent: &VoiceConsent,
) -> Result<Voice, CreateVoiceError> {
    let sample = prepare(upload.bytes.clone(), upload.content_type.clone()).await?;
    let keys = ObjectKeys::new(&voice.owner, &SampleName::replacement(&voice.id));
    if let Err(error) = put_objects(storage, &keys, sample, upload).await {
        remove_objects(storage, &keys.all()).await;
        return Err(error.into());
    }
    let replaced = match db
        .replace_voice_sample(&voice.owner, &voice.id, keys.sample.as_str(), consent)
        .await
    {
        Ok(replaced) => replaced,
        Err(error) => {
            remove_objects(storage, &keys.all()).await;
            return Err(error.into());
        }
    };
    remove_objects(storage, &ObjectKeys::of_voice(voice).all()).await;
    Ok(replaced)
}

/// Deletes one of `owner`'s voices: the row first (generations keep the name and lose the
/// link), then its audio. Audio left behind by a storage failure is logged and later
/// removed by [`reconcile`].
pub async fn delete_voice(
    db: &dyn Database,
    storage: &Storage,
    owner: &VoiceOwner,
    id: &VoiceId,
) -> Result<(), DbError> {
    let sample_key = db.delete_voice(owner, id).await?;
    let keys = ObjectKeys::of_sample_key(owner, id, sample_key.as_deref());
    remove_objects(storage, &keys.all()).await;
    Ok(())
}

/// Decoding and resampling take a while; they run off the async threads, and stop when the
/// request that waits for them goes away (the client disconnected).
async fn prepare(bytes: Bytes, content_type: String) -> Result<VoiceSample, SampleError> {
    cancellable(move |cancelled| {
        let prepared = voice_sample::prepare(&bytes, Some(&content_type), cancelled);
        if matches!(
            prepared,
            Err(SampleError::Undecodable(DecodeError::Cancelled))
        ) {
            SAMPLES_CANCELLED.fetch_add(1, Ordering::Relaxed);
        }
        prepared
    })
    .await
    .unwrap_or(Err(SampleError::Undecodable(DecodeError::Cancelled)))
}

static SAMPLES_CANCELLED: AtomicU64 = AtomicU64::new(0);

/// Voice samples whose decoding stopped early because the uploading client went away, since
/// this process started.
pub fn samples_cancelled() -> u64 {
    SAMPLES_CANCELLED.load(Ordering::Relaxed)
}

/// Runs `work` on a blocking thread with a flag that is raised when the returned future is
/// dropped before it completes: the caller went away and `work` should stop. `None` when
/// `work` did not finish (the runtime shut down).
pub async fn cancellable<T: Send + 'static>(
    work: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Option<T> {
    let cancel = CancelOnDrop::default();
    let cancelled = Arc::clone(&cancel.0);
    tokio::task::spawn_blocking(move || work(&cancelled))
        .await
        .ok()
}

/// Raises its flag when dropped.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Every object one sample of a voice may have.
struct ObjectKeys {
    sample: ObjectKey,
    original: Option<ObjectKey>,
    conditionals: ObjectKey,
}

impl ObjectKeys {
    fn new(owner: &VoiceOwner, sample: &SampleName) -> Self {
        match owner {
            VoiceOwner::System => Self {
                sample: ObjectKey::system_voice_sample(sample),
                original: None,
                conditionals: ObjectKey::sample_conditionals(sample),
            },
            VoiceOwner::Org(org) => Self {
                sample: ObjectKey::custom_voice_sample(org, sample),
                original: Some(ObjectKey::custom_voice_sample_original(org, sample)),
                conditionals: ObjectKey::sample_conditionals(sample),
            },
        }
    }

    /// The objects of the sample at `sample_key`, a voice row's object key; those of the
    /// voice's first sample when the row has none (or one of no known shape).
    fn of_sample_key(owner: &VoiceOwner, voice: &VoiceId, sample_key: Option<&str>) -> Self {
        let sample = sample_key
            .and_then(|key| ObjectKey::parse(key).ok())
            .and_then(|key| SampleName::of_key(&key))
            .filter(|sample| &sample.voice == voice)
            .unwrap_or_else(|| SampleName::first(voice));
        Self::new(owner, &sample)
    }

    /// The objects of the voice's current sample.
    fn of_voice(voice: &Voice) -> Self {
        Self::of_sample_key(&voice.owner, &voice.id, voice.object_key.as_deref())
    }

    fn all(&self) -> Vec<ObjectKey> {
        let mut keys = vec![self.sample.clone(), self.conditionals.clone()];
        keys.extend(self.original.clone());
        keys
    }
}

async fn put_objects(
    storage: &Storage,
    keys: &ObjectKeys,
    sample: VoiceSample,
    upload: Upload,
) -> Result<(), StorageError> {
    storage
        .put(&keys.sample, Bytes::from(sample.wav), WAV)
        .await?;
    if let Some(original) = &keys.original {
        storage
            .put(original, upload.bytes, &upload.content_type)
            .await?;
    }
    Ok(())
}

async fn remove_objects(storage: &Storage, keys: &[ObjectKey]) {
    for key in keys {
        if let Err(error) = storage.delete(key).await {
            tracing::warn!(%key, %error, "could not remove a voice object; `resonance storage reconcile` will");
        }
    }
}

/// What [`reconcile`] found (and removed, unless it was a dry run).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReconcileReport {
    /// Voice rows whose audio object is missing.
    pub rows_without_objects: Vec<Voice>,
    /// Voice objects (samples, uploads, cached conditionals) no row refers to.
    pub objects_without_rows: Vec<ObjectKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// Finds voice rows without their audio and voice objects without a row, and removes them
/// unless `dry_run`. Objects younger than `grace` are left alone: an upload in progress
/// writes its objects shortly before its row.
pub async fn reconcile(
    db: &dyn Database,
    storage: &Storage,
    grace: Duration,
    dry_run: bool,
) -> Result<ReconcileReport, ReconcileError> {
    let mut report = ReconcileReport::default();
    let mut wanted = HashSet::new();
    for voice in db.all_voices().await? {
        let sample = match voice.object_key.as_deref().map(ObjectKey::parse) {
            Some(Ok(key)) => match storage.head(&key).await {
                Ok(_) => Some(key),
                Err(StorageError::NotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            },
            Some(Err(_)) | None => None,
        };
        let Some(sample) = sample else {
            report.rows_without_objects.push(voice);
            continue;
        };
        wanted.extend(ObjectKeys::of_voice(&voice).all());
        wanted.insert(sample);
    }
    let settled_before = SystemTime::now() - grace;
    for prefix in [KeyPrefix::voices(), KeyPrefix::voice_conditionals()] {
        for object in storage.list_objects(&prefix).await? {
            if !wanted.contains(&object.key) && object.last_modified <= settled_before {
                report.objects_without_rows.push(object.key);
            }
        }
    }
    report.objects_without_rows.sort();
    if dry_run {
        return Ok(report);
    }
    for voice in &report.rows_without_objects {
        match db.delete_voice(&voice.owner, &voice.id).await {
            Ok(_) | Err(DbError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        remove_objects(storage, &ObjectKeys::of_voice(voice).all()).await;
    }
    for key in &report.objects_without_rows {
        storage.delete(key).await?;
    }
    Ok(report)
}
