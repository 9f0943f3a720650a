// One generation (details rendered by the server): while it is queued or running, plays
// its speech as it is generated and shows its progress, then shows its waveform (WaveSurfer.js) with play/pause (Space),
// seek by click or keyboard, time, speed, download in a format; regenerate is a link;
// delete asks first.
import WaveSurfer from '../vendor/wavesurfer.esm.js';
import { LiveAudio, audioContext, liveSentence } from './live-audio.js';
import { api, boot, busy, failureMessage, formatDate, formatSeconds, showPageError, toast } from './app.js';

const POLL_MS = 800;

boot();
const root = document.querySelector('[data-generation]');
const id = root.dataset.generation;
const statusBox = root.querySelector('[data-player-status]');
const statusText = root.querySelector('[data-status-text]');
const progress = root.querySelector('[data-generation-progress]');
const cancelButton = root.querySelector('[data-cancel]');
const waveformEl = root.querySelector('[data-waveform]');
const controls = root.querySelector('[data-player-controls]');
const playButton = root.querySelector('[data-play]');
const currentTimeEl = root.querySelector('[data-current-time]');
const durationEl = root.querySelector('[data-duration]');
const apiUrl = `/api/generations/${encodeURIComponent(id)}`;

const created = root.querySelector('[data-created]');
created.textContent = formatDate(created.getAttribute('datetime'));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const listenButton = root.querySelector('[data-listen]');
/** The speech as it is generated, while the job runs. */
let live = null;
let percent = 0;
/** Why the job has not started, while it is queued. */
let waiting = null;

function showProgress(generation) {
  percent = generation.status === 'queued' ? 0 : generation.progress;
  waiting = generation.status === 'queued' ? generation.waitingReason || 'Waiting in the queue…' : null;
  showLive();
  progress.hidden = false;
  progress.setAttribute('aria-valuenow', String(percent));
  progress.querySelector('[data-progress-bar]').style.width = `${percent}%`;
  cancelButton.hidden = false;
}

function showLive() {
  if (waiting && !live?.received) {
    statusText.textContent = waiting;
    return;
  }
  if (!live) {
    statusText.textContent = `Generating… ${percent}%`;
    return;
  }
  statusText.textContent = liveSentence(live, percent, 'Press Listen now to hear it.');
  listenButton.hidden = live.audible || !live.received;
  root.dataset.liveReceived = live.received.toFixed(2);
  root.dataset.livePlayed = live.played.toFixed(2);
}

let liveTicker = null;
function stopListening() {
  clearInterval(liveTicker);
  live?.stop();
  live = null;
  listenButton.hidden = true;
}

/** Starts playing the job's audio as it arrives; the browser may wait for Listen now. */
function listen() {
  const context = audioContext();
  if (!context) return;
  live = new LiveAudio(context);
  root.dataset.live = 'listening';
  listenButton.addEventListener('click', () => context.resume().then(showLive));
  liveTicker = setInterval(showLive, 250);
  // On failure, the waveform of the stored file shows once the generation has finished.
  live.play(`${apiUrl}/stream`).catch(stopListening);
}

/** Resolves once the generation has succeeded; throws when it failed or was cancelled. */
async function waitUntilReady() {
  let generation = await api(apiUrl);
  if (generation.status === 'queued' || generation.status === 'running') listen();
  while (generation.status === 'queued' || generation.status === 'running') {
    showProgress(generation);
    await sleep(POLL_MS);
    generation = await api(apiUrl);
  }
  root.dataset.status = generation.status;
  percent = 100;
  progress.hidden = true;
  cancelButton.hidden = true;
  if (generation.status === 'failed' || generation.status === 'cancelled') {
    stopListening();
    throw new Error(`${failureMessage(generation)} Use Regenerate to run it again.`);
  }
}

function showPlayer() {
  const styles = getComputedStyle(document.documentElement);
  const wavesurfer = WaveSurfer.create({
    container: waveformEl,
    url: `${apiUrl}/audio`,
    height: 112,
    waveColor: '#c9c3ff',
    progressColor: styles.getPropertyValue('--primary').trim() || '#5b4bff',
    cursorColor: '#141827',
    barWidth: 3,
    barGap: 2,
    barRadius: 3,
    normalize: true,
  });
  statusText.textContent = 'Loading audio…';
  waveformEl.hidden = false;
  waveformEl.tabIndex = 0;
  wavesurfer.on('ready', (duration) => {
    statusBox.hidden = true;
    controls.hidden = false;
    durationEl.textContent = formatSeconds(duration);
    root.dataset.player = 'ready';
    if (live) {
      // Carries on from where listening got to, now with the waveform.
      const heard = live.audible ? live.played : 0;
      stopListening();
      root.dataset.live = 'done';
      if (heard > 0 && heard < duration - 0.05) {
        wavesurfer.setTime(heard);
        wavesurfer.play();
      }
    }
  });
  wavesurfer.on('timeupdate', (time) => { currentTimeEl.textContent = formatSeconds(time); });
  wavesurfer.on('play', () => { controls.classList.add('is-playing'); playButton.setAttribute('aria-label', 'Pause'); });
  wavesurfer.on('pause', () => { controls.classList.remove('is-playing'); playButton.setAttribute('aria-label', 'Play'); });
  wavesurfer.on('error', () => {
    statusText.textContent = 'The audio could not be loaded. Reload the page to try again.';
  });
  playButton.addEventListener('click', () => wavesurfer.playPause());
  // Faster or slower with the pitch kept, as the download at that speed sounds.
  speedSlider.addEventListener('input', () => wavesurfer.setPlaybackRate(Number(speedSlider.value), true));
  // Space plays or pauses from anywhere on the page that does not take typing or clicks.
  document.addEventListener('keydown', (event) => {
    if (event.key !== ' ' || event.target.closest('input, select, textarea, button, a, [data-waveform]')) return;
    event.preventDefault();
    wavesurfer.playPause();
  });
  waveformEl.addEventListener('keydown', (event) => {
    if (event.key === ' ' || event.key === 'Enter') wavesurfer.playPause();
    else if (event.key === 'ArrowRight') wavesurfer.skip(5);
    else if (event.key === 'ArrowLeft') wavesurfer.skip(-5);
    else return;
    event.preventDefault();
  });
}

// The stored WAV, or the audio encoded in the chosen format at the chosen speed.
const downloadLink = root.querySelector('[data-download]');
const downloadFormat = root.querySelector('[data-download-format]');
const speedSlider = root.querySelector('[data-speed]');
function updateDownload() {
  const query = new URLSearchParams({ download: '1' });
  if (downloadFormat.value) query.set('format', downloadFormat.value);
  if (Number(speedSlider.value) !== 1) query.set('speed', speedSlider.value);
  downloadLink.href = `${apiUrl}/audio?${query}`;
}
downloadFormat.addEventListener('change', updateDownload);
speedSlider.addEventListener('input', () => {
  root.querySelector('[data-speed-value]').textContent = `${Number(speedSlider.value)}×`;
  updateDownload();
});

cancelButton.addEventListener('click', async () => {
  busy(cancelButton, true);
  try {
    await api(`${apiUrl}/cancel`, { method: 'POST' });
  } catch (error) {
    showPageError(error);
  } finally {
    busy(cancelButton, false);
  }
});

root.querySelector('[data-delete]').addEventListener('click', async (event) => {
  if (!confirm('Delete this generation and its audio? This cannot be undone.')) return;
  const button = event.currentTarget;
  busy(button, true);
  try {
    await api(apiUrl, { method: 'DELETE' });
    toast('Generation deleted');
    location.assign('/history');
  } catch (error) {
    busy(button, false);
    showPageError(error);
  }
});

try {
  await waitUntilReady();
  showPlayer();
} catch (error) {
  statusBox.querySelector('.spinner').hidden = true;
  statusBox.classList.add('is-finished');
  statusText.textContent = error.message;
}
