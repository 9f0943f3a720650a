// What a voice sample must be, checked in the browser before uploading, as the server
// checks it again: an audio file of at most 20 MB that decodes to 10 seconds to 5 minutes.
import { formatSeconds } from './app.js';

export const MIN_SECONDS = 10;
export const MAX_SECONDS = 300;
const MAX_BYTES = 20 * 1024 * 1024;
const TYPES_BY_EXTENSION = { wav: 'audio/wav', mp3: 'audio/mpeg', flac: 'audio/flac', ogg: 'audio/ogg', m4a: 'audio/mp4', aac: 'audio/aac', webm: 'audio/webm' };

export function contentTypeOf(file) {
  if (file.type) return file.type;
  const extension = (file.name || '').split('.').pop().toLowerCase();
  return TYPES_BY_EXTENSION[extension] || '';
}

/**
 * The length in seconds of the audio in `file`, decoded as the browser would play it;
 * `undefined` when this browser cannot decode its format (the server then decides), null
 * when it should and cannot: the file is not audio.
 */
async function decodedSeconds(file) {
  if (!new Audio().canPlayType(contentTypeOf(file))) return undefined;
  try {
    const decoded = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(await file.arrayBuffer());
    return decoded.duration;
  } catch {
    return null;
  }
}

/**
 * Checks a chosen file; returns its length and size to show beside it, or throws an Error
 * that says why it cannot be a voice sample.
 */
export async function checkSampleFile(file) {
  if (file.size > MAX_BYTES) {
    throw new Error(`"${file.name}" is ${(file.size / 1048576).toFixed(1)} MB; the limit is 20 MB. Trim it or export it at a lower bitrate.`);
  }
  if (!contentTypeOf(file).startsWith('audio/') && !contentTypeOf(file).startsWith('video/')) {
    throw new Error(`"${file.name}" is not an audio file. Use WAV, MP3, FLAC, OGG or M4A.`);
  }
  const seconds = await decodedSeconds(file);
  const size = `${(file.size / 1048576).toFixed(1)} MB`;
  if (seconds === null) {
    throw new Error(`"${file.name}" could not be read as audio: it may be damaged, or not a recording at all. Choose a WAV, MP3, FLAC, OGG or M4A recording.`);
  }
  if (seconds < MIN_SECONDS) {
    throw new Error(`"${file.name}" is ${seconds.toFixed(1)} s long; a voice needs at least ${MIN_SECONDS} seconds of speech. Choose a longer recording.`);
  }
  if (seconds > MAX_SECONDS) {
    throw new Error(`"${file.name}" is longer than 5 minutes; trim it to the best 5 minutes or less.`);
  }
  return seconds === undefined ? size : `${formatSeconds(seconds)} · ${size}`;
}
