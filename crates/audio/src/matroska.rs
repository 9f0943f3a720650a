//! The audio frames of a Matroska / WebM file, as browsers' `MediaRecorder` writes them
//! (RFC 9559; EBML in RFC 8794). Every size, count and offset is checked against the bytes
//! that are there, so a lying file is an error, never a panic or an allocation it declares.
//! (symphonia's own Matroska reader overflows on such files.)
//!
//! Only what decoding needs is read: the first audio track's number, codec and channel
//! count, then its frames in file order. Clusters and the segment may have an unknown size
//! (a live recording); a truncated file yields the frames before the cut.

/// The four bytes every EBML file starts with (the EBML header's element ID).
pub const MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

const SEGMENT: u32 = 0x1853_8067;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const AUDIO: u32 = 0xE1;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const SIMPLE_BLOCK: u32 = 0xA3;

const TRACK_TYPE_AUDIO: u64 = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatroskaError(&'static str);

/// The audio track frames belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    pub number: u64,
    /// Matroska's codec ID, e.g. `A_OPUS`.
    pub codec: String,
    pub channels: usize,
}

/// Calls `frame` with each frame of the file's first audio track, in order, once the track
/// is known, and returns the track. Stops at the first error `frame` returns.
pub fn for_each_audio_frame<E: From<MatroskaError>>(
    bytes: &[u8],
    mut frame: impl FnMut(&AudioTrack, &[u8]) -> Result<(), E>,
) -> Result<AudioTrack, E> {
    if !bytes.starts_with(&MAGIC) {
        return Err(MatroskaError("the file is not Matroska").into());
    }
    let mut track: Option<AudioTrack> = None;
    let mut pos = 0;
    // One flat pass: the segment, clusters and block groups are entered rather than
    // skipped, which also ends an unknown-size cluster where the next element starts.
    while pos < bytes.len() {
        let element = match Element::read(bytes, pos) {
            Ok(element) => element,
            // A recording cut short mid-header: keep what came before.
            Err(_) if track.is_some() => break,
            Err(e) => return Err(e.into()),
        };
        if matches!(element.id, SEGMENT | CLUSTER | BLOCK_GROUP) {
            pos = element.data;
            continue;
        }
        let Some(end) = element.end else {
            return Err(MatroskaError("only segments and clusters may be of unknown size").into());
        };
        let Some(data) = bytes.get(element.data..end) else {
            // Cut short within this element.
            break;
        };
        match element.id {
            TRACKS if track.is_none() => track = first_audio_track(data)?,
            SIMPLE_BLOCK | BLOCK => {
                if let Some(track) = &track {
                    for_each_block_frame(data, track, &mut frame)?;
                }
            }
            _ => {}
        }
        pos = end;
    }
    track.ok_or_else(|| MatroskaError("the file has no audio track").into())
}

/// One element's header: its ID, where its data starts and ends (`None`: unknown size).
struct Element {
    id: u32,
    data: usize,
    end: Option<usize>,
}

impl Element {
    /// The element starting at `pos`; its end may lie past `bytes` (a truncated file, or
    /// a lie its caller checks).
    fn read(bytes: &[u8], pos: usize) -> Result<Self, MatroskaError> {
        let (id, id_len) =
            read_vint(bytes, pos).ok_or(MatroskaError("an element ID is malformed"))?;
        if id_len > 4 {
            return Err(MatroskaError("an element ID is longer than 4 bytes"));
        }
        let marker = 1u64 << (7 * id_len);
        let id = (id | marker) as u32;
        let size_pos = pos + id_len;
        let (size, size_len) =
            read_vint(bytes, size_pos).ok_or(MatroskaError("an element size is malformed"))?;
        let data = size_pos + size_len;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        let end = if unknown {
            None
        } else {
            let end = usize::try_from(size)
                .ok()
                .and_then(|size| data.checked_add(size));
            Some(end.ok_or(MatroskaError("an element is larger than the file"))?)
        };
        Ok(Self { id, data, end })
    }
}

/// An EBML variable-length integer at `pos` (RFC 8794, 4): its value without the length
/// marker, and its length in bytes (1 to 8). `None` when malformed or cut short.
fn read_vint(bytes: &[u8], pos: usize) -> Option<(u64, usize)> {
    let first = *bytes.get(pos)?;
    if first == 0 {
        return None;
    }
    let len = first.leading_zeros() as usize + 1;
    let rest = bytes.get(pos + 1..pos + len)?;
    let value = rest
        .iter()
        .fold(u64::from(first) & (0xFF >> len), |value, &byte| {
            (value << 8) | u64::from(byte)
        });
    Some((value, len))
}

/// Calls `visit` with each child element (ID and data) of a master element's data.
fn for_each_child(
    data: &[u8],
    mut visit: impl FnMut(u32, &[u8]) -> Result<(), MatroskaError>,
) -> Result<(), MatroskaError> {
    let mut pos = 0;
    while pos < data.len() {
        let element = Element::read(data, pos)?;
        let end = element
            .end
            .filter(|&end| end <= data.len())
            .ok_or(MatroskaError("an element is larger than its parent"))?;
        visit(element.id, &data[element.data..end])?;
        pos = end;
    }
    Ok(())
}

fn first_audio_track(tracks: &[u8]) -> Result<Option<AudioTrack>, MatroskaError> {
    let mut found = None;
    for_each_child(tracks, |id, entry| {
        if id != TRACK_ENTRY || found.is_some() {
            return Ok(());
        }
        let (mut number, mut kind, mut codec, mut channels) = (None, None, None, 1);
        for_each_child(entry, |id, value| {
            match id {
                TRACK_NUMBER => number = Some(read_uint(value)?),
                TRACK_TYPE => kind = Some(read_uint(value)?),
                CODEC_ID => codec = Some(String::from_utf8_lossy(value).into_owned()),
                AUDIO => for_each_child(value, |id, value| {
                    if id == CHANNELS {
                        channels = usize::try_from(read_uint(value)?).unwrap_or(usize::MAX);
                    }
                    Ok(())
                })?,
                _ => {}
            }
            Ok(())
        })?;
        let is_audio =
            kind == Some(TRACK_TYPE_AUDIO) || codec.as_deref().is_some_and(|c| c.starts_with("A_"));
        if let (Some(number), Some(codec), true) = (number, codec, is_audio) {
            found = Some(AudioTrack {
                number,
                codec: codec.trim_end_matches('\0').to_string(),
                channels,
            });
        }
        Ok(())
    })?;
    Ok(found)
}

fn read_uint(value: &[u8]) -> Result<u64, MatroskaError> {
    if value.len() > 8 {
        return Err(MatroskaError("an integer is longer than 8 bytes"));
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &byte| (n << 8) | u64::from(byte)))
}

/// The frames of a `SimpleBlock` or `Block` of `track` (RFC 9559, 10.2-10.4): a track
/// number, a 16-bit timestamp, flags, then one frame or several laced ones.
fn for_each_block_frame<E: From<MatroskaError>>(
    block: &[u8],
    track: &AudioTrack,
    frame: &mut impl FnMut(&AudioTrack, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let cut = || MatroskaError("a block is cut short");
    let (number, len) = read_vint(block, 0).ok_or_else(cut)?;
    if number != track.number {
        return Ok(());
    }
    let flags = *block.get(len + 2).ok_or_else(cut)?;
    let mut pos = len + 3;
    let lacing = (flags >> 1) & 0b11;
    if lacing == 0 {
        return frame(track, &block[pos..]);
    }
    let count = usize::from(*block.get(pos).ok_or_else(cut)?) + 1;
    pos += 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        // Xiph: each size but the last as a run of 255s and a final byte below 255.
        0b01 => {
            for _ in 1..count {
                let mut size = 0usize;
                loop {
                    let byte = *block.get(pos).ok_or_else(cut)?;
                    pos += 1;
                    size += usize::from(byte);
                    if byte < 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        // EBML: the first size, then signed differences to the previous one.
        0b11 => {
            let mut size = 0i64;
            for i in 1..count {
                let (value, len) = read_vint(block, pos).ok_or_else(cut)?;
                pos += len;
                size = if i == 1 {
                    i64::try_from(value).map_err(|_| cut())?
                } else {
                    let bias = (1i64 << (7 * len - 1)) - 1;
                    size.checked_add(value as i64 - bias).ok_or_else(cut)?
                };
                sizes.push(usize::try_from(size).map_err(|_| cut())?);
            }
        }
        // Fixed: equal frames filling the rest of the block.
        _ => {
            let rest = block.len().saturating_sub(pos);
            if rest % count != 0 {
                return Err(MatroskaError("a block's frames are not of equal size").into());
            }
            sizes.resize(count - 1, rest / count);
        }
    }
    for size in sizes {
        let end = pos.checked_add(size).ok_or_else(cut)?;
        frame(track, block.get(pos..end).ok_or_else(cut)?)?;
        pos = end;
    }
    frame(track, block.get(pos..).ok_or_else(cut)?)
}
