//! WebM (Matroska) around Opus packets, as Chromium's `MediaRecorder` writes it: an EBML
//! header, then a segment with the track description and clusters of `SimpleBlock`s.
//! Element IDs and layout follow the Matroska specification (RFC 9559) and the WebM
//! container guidelines.

use std::io::Cursor;

const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

const TRACK_TYPE_AUDIO: u64 = 2;
/// Block timestamps are in milliseconds (`TimestampScale` in nanoseconds).
const NANOS_PER_TICK: u64 = 1_000_000;
/// Opus packets as Resonance encodes them: 20 ms.
const PACKET_MILLIS: u64 = 20;
/// A block's timestamp is a signed 16-bit offset from its cluster's: start a new cluster
/// well before that overflows.
const CLUSTER_MILLIS: u64 = 5_000;
/// Recommended for Opus (RFC 7845, 4.2): 80 ms.
const OPUS_SEEK_PRE_ROLL_NANOS: u64 = 80_000_000;
const OPUS_RATE: f64 = 48_000.0;

/// Rewraps an Ogg Opus stream (from Resonance's encoder, 20 ms packets) as WebM: the
/// `OpusHead` packet becomes the track's `CodecPrivate`, each audio packet a block.
pub fn webm_from_ogg_opus(ogg: &[u8]) -> Vec<u8> {
    let mut reader = ogg::PacketReader::new(Cursor::new(ogg));
    let mut packets = std::iter::from_fn(|| reader.read_packet().expect("a valid Ogg stream"))
        .map(|packet| packet.data);
    let head = packets.next().expect("an OpusHead packet");
    assert!(head.starts_with(b"OpusHead"), "the stream is Ogg Opus");
    let channels = u64::from(head[9]);
    let pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
    let _tags = packets.next().expect("an OpusTags packet");
    let packets: Vec<Vec<u8>> = packets.collect();

    let header = element(
        EBML,
        &[
            uint(EBML_VERSION, 1),
            uint(EBML_READ_VERSION, 1),
            uint(EBML_MAX_ID_LENGTH, 4),
            uint(EBML_MAX_SIZE_LENGTH, 8),
            element(DOC_TYPE, b"webm"),
            uint(DOC_TYPE_VERSION, 4),
            uint(DOC_TYPE_READ_VERSION, 2),
        ]
        .concat(),
    );
    let duration_millis = (packets.len() as u64 * PACKET_MILLIS) as f64;
    let info = element(
        INFO,
        &[
            uint(TIMESTAMP_SCALE, NANOS_PER_TICK),
            float(DURATION, duration_millis),
            element(MUXING_APP, b"resonance-testkit"),
            element(WRITING_APP, b"resonance-testkit"),
        ]
        .concat(),
    );
    let audio = element(
        AUDIO,
        &[
            float(SAMPLING_FREQUENCY, OPUS_RATE),
            uint(CHANNELS, channels),
        ]
        .concat(),
    );
    let track = element(
        TRACK_ENTRY,
        &[
            uint(TRACK_NUMBER, 1),
            uint(TRACK_UID, 1),
            uint(TRACK_TYPE, TRACK_TYPE_AUDIO),
            element(CODEC_ID, b"A_OPUS"),
            element(CODEC_PRIVATE, &head),
            uint(CODEC_DELAY, pre_skip * 1_000_000_000 / 48_000),
            uint(SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NANOS),
            audio,
        ]
        .concat(),
    );
    let tracks = element(TRACKS, &track);

    let packets_per_cluster = (CLUSTER_MILLIS / PACKET_MILLIS) as usize;
    let clusters: Vec<u8> = packets
        .chunks(packets_per_cluster)
        .enumerate()
        .flat_map(|(index, chunk)| {
            let start = index as u64 * CLUSTER_MILLIS;
            let mut body = uint(TIMESTAMP, start);
            for (offset, packet) in chunk.iter().enumerate() {
                body.extend(simple_block(offset as u64 * PACKET_MILLIS, packet));
            }
            element(CLUSTER, &body)
        })
        .collect();

    let segment = element(SEGMENT, &[info, tracks, clusters].concat());
    [header, segment].concat()
}

/// A keyframe of track 1, `millis` after its cluster's timestamp.
fn simple_block(millis: u64, packet: &[u8]) -> Vec<u8> {
    const TRACK_1: u8 = 0x81;
    const KEYFRAME: u8 = 0x80;
    let relative = i16::try_from(millis).expect("within the cluster's range");
    let mut body = vec![TRACK_1];
    body.extend_from_slice(&relative.to_be_bytes());
    body.push(KEYFRAME);
    body.extend_from_slice(packet);
    element(SIMPLE_BLOCK, &body)
}

/// An element: its ID (which carries its own length marker), the body's size as an EBML
/// variable-length integer, the body.
fn element(id: u32, body: &[u8]) -> Vec<u8> {
    let id_bytes = id.to_be_bytes();
    let first = id_bytes.iter().position(|&b| b != 0).unwrap_or(3);
    let mut bytes = id_bytes[first..].to_vec();
    bytes.extend(size_vint(body.len() as u64));
    bytes.extend_from_slice(body);
    bytes
}

fn uint(id: u32, value: u64) -> Vec<u8> {
    let be = value.to_be_bytes();
    let first = be.iter().position(|&b| b != 0).unwrap_or(7);
    element(id, &be[first..])
}

fn float(id: u32, value: f64) -> Vec<u8> {
    element(id, &value.to_be_bytes())
}

/// The shortest EBML variable-length integer for `value`: a length marker bit, then the
/// value (all-ones is reserved for "unknown size").
fn size_vint(value: u64) -> Vec<u8> {
    let length = (1..=8)
        .find(|&length| value < (1u64 << (7 * length)) - 1)
        .expect("element sizes fit in 56 bits");
    let marked = value | (1u64 << (7 * length));
    marked.to_be_bytes()[8 - length..].to_vec()
}
