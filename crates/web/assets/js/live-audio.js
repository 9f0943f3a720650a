// Listening to a generation while it is made: its PCM stream (s16le mono, 24 kHz) is read
// as it arrives and played through Web Audio, each piece scheduled right after the one
// before. Browsers only let an AudioContext play after a user gesture, so the caller
// creates it (`audioContext()`) in a click handler, or offers a button that resumes it.

const RATE = 24000;
/** How far ahead of the clock a piece starts when playback has caught up with the stream. */
const LEAD_SECONDS = 0.1;

/** A new AudioContext, or null in a browser without Web Audio. */
export function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  return Context ? new Context() : null;
}

/** Why a stream could not be listened to, as a sentence for the user. */
export class LiveAudioError extends Error {}

export class LiveAudio {
  constructor(context) {
    this.context = context;
    this.receivedSamples = 0;
    this.nextStart = 0;
    this.sources = new Set();
    this.abort = new AbortController();
    this.stopped = false;
  }

  /** Seconds of audio that have arrived. */
  get received() {
    return this.receivedSamples / RATE;
  }

  /** Seconds of audio that have been heard (none while the context is suspended). */
  get played() {
    const ahead = Math.max(0, this.nextStart - this.context.currentTime);
    return Math.max(0, this.received - ahead);
  }

  /** Whether the browser lets this page play sound now. */
  get audible() {
    return this.context.state === 'running';
  }

  /** Plays the stream at `url` until it ends, is stopped, or fails (LiveAudioError). */
  async play(url) {
    try {
      const response = await fetch(url, { credentials: 'same-origin', signal: this.abort.signal });
      if (!response.ok || !response.body) {
        throw new LiveAudioError('The audio could not be listened to while it is generated.');
      }
      const reader = response.body.getReader();
      let pending = null;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        pending = this.schedule(pending, value);
      }
    } catch (error) {
      if (this.stopped) return;
      throw error instanceof LiveAudioError ? error : new LiveAudioError('The audio stopped arriving before the end.');
    }
  }

  /**
   * Schedules the whole samples of `bytes` (after `pending`, an odd byte left from the read
   * before); returns the odd byte left this time, if any.
   */
  schedule(pending, bytes) {
    if (this.stopped) return null;
    let data = bytes;
    if (pending) {
      data = new Uint8Array(pending.length + bytes.length);
      data.set(pending);
      data.set(bytes, pending.length);
    }
    const count = data.length >> 1;
    const left = data.length % 2 ? data.slice(data.length - 1) : null;
    if (!count) return left;
    const view = new DataView(data.buffer, data.byteOffset, count * 2);
    const samples = new Float32Array(count);
    for (let i = 0; i < count; i += 1) samples[i] = view.getInt16(i * 2, true) / 32768;
    const buffer = this.context.createBuffer(1, count, RATE);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    source.addEventListener('ended', () => this.sources.delete(source));
    this.nextStart = Math.max(this.nextStart, this.context.currentTime + LEAD_SECONDS);
    source.start(this.nextStart);
    this.sources.add(source);
    this.nextStart += buffer.duration;
    this.receivedSamples += count;
    return left;
  }

  /** Stops reading and playing; the job runs on. */
  stop() {
    this.stopped = true;
    this.abort.abort();
    for (const source of this.sources) source.stop();
    this.sources.clear();
    this.context.close().catch(() => {});
  }
}

/** "2.4 s" */
export function seconds(value) {
  return `${value.toFixed(1)} s`;
}

/**
 * What a listener hears of a running job, as a sentence; `silentHint` says what to do while
 * the browser does not let the page play sound.
 */
export function liveSentence(live, percent, silentHint = 'The browser has not allowed this page to play sound.') {
  const done = `${Math.round(percent)}% generated`;
  if (!live.received) return `Generating… ${Math.round(percent)}%`;
  if (!live.audible) return `${seconds(live.received)} of speech ready, ${done}. ${silentHint}`;
  return `Playing as it is generated: ${seconds(live.played)} heard of ${seconds(live.received)} received, ${done}.`;
}
