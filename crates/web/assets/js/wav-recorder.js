// Records the microphone as 16-bit PCM WAV in the browser, so uploads need no Opus
// decoder on the server.

/** 24 kHz mono, the model's rate: five minutes stay under 15 MB. */
const SAMPLE_RATE = 24000;
const FRAME = 4096;

export class WavRecorder {
  constructor({ onLevel } = {}) {
    this.onLevel = onLevel || (() => {});
    this.chunks = [];
    this.length = 0;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.context = new AudioContext({ sampleRate: SAMPLE_RATE });
    const source = this.context.createMediaStreamSource(this.stream);
    // ScriptProcessorNode is deprecated but needs no separate worklet module and is
    // supported by every browser we target.
    this.processor = this.context.createScriptProcessor(FRAME, 1, 1);
    this.processor.onaudioprocess = (event) => {
      const samples = new Float32Array(event.inputBuffer.getChannelData(0));
      this.chunks.push(samples);
      this.length += samples.length;
      let sum = 0;
      for (const sample of samples) sum += sample * sample;
      this.onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 4));
    };
    source.connect(this.processor);
    this.processor.connect(this.context.destination);
  }

  /** Seconds recorded so far. */
  get seconds() {
    return this.context ? this.length / this.context.sampleRate : 0;
  }

  /** Stops recording and returns the WAV file. */
  async stop() {
    this.processor.disconnect();
    for (const track of this.stream.getTracks()) track.stop();
    const rate = this.context.sampleRate;
    await this.context.close();
    return encodeWav(this.chunks, this.length, rate);
  }
}

function encodeWav(chunks, length, sampleRate) {
  const buffer = new ArrayBuffer(44 + length * 2);
  const view = new DataView(buffer);
  const writeAscii = (offset, text) => { for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i)); };
  writeAscii(0, 'RIFF');
  view.setUint32(4, 36 + length * 2, true);
  writeAscii(8, 'WAVE');
  writeAscii(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  writeAscii(36, 'data');
  view.setUint32(40, length * 2, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const sample of chunk) {
      const clamped = Math.max(-1, Math.min(1, sample));
      view.setInt16(offset, clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([buffer], { type: 'audio/wav' });
}
