// One generation: waits until it is ready, then shows its waveform (WaveSurfer.js) with
// play/pause, seek, time, download, regenerate and delete.
import WaveSurfer from '../vendor/wavesurfer.esm.js';
import { api, boot, busy, formatDate, formatSeconds, showPageError, statusOf, toast } from './app.js';

const POLL_MS = 800;

await boot();
const root = document.querySelector('[data-generation]');
const id = root.dataset.generation;
const statusBox = root.querySelector('[data-player-status]');
const statusText = root.querySelector('[data-status-text]');
const waveformEl = root.querySelector('[data-waveform]');
const controls = root.querySelector('[data-player-controls]');
const playButton = root.querySelector('[data-play]');
const currentTimeEl = root.querySelector('[data-current-time]');
const durationEl = root.querySelector('[data-duration]');
const audioUrl = `/api/generations/${encodeURIComponent(id)}/audio`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showDetails(generation) {
  root.querySelector('[data-text]').textContent = generation.text || '';
  root.querySelector('[data-voice-name]').textContent = generation.voiceName || 'Deleted voice';
  root.querySelector('[data-created]').textContent = formatDate(generation.createdAt);
  for (const el of root.querySelectorAll('[data-param]')) {
    const value = generation[el.dataset.param] ?? (generation.params && generation.params[el.dataset.param]);
    el.textContent = value ?? '–';
  }
  const regenerate = new URLSearchParams({ from: id });
  if (generation.voiceId) regenerate.set('voiceId', generation.voiceId);
  root.querySelector('[data-regenerate]').onclick = () => location.assign(`/text-to-speech?${regenerate}`);
}

async function loadGeneration() {
  for (;;) {
    const generation = await api(`/api/generations/${encodeURIComponent(id)}`);
    showDetails(generation);
    const status = statusOf(generation);
    if (status === 'succeeded') return generation;
    if (status === 'failed' || status === 'cancelled') {
      const reason = generation.error || generation.failureReason || generation.errorMessage;
      throw new Error(status === 'failed'
        ? `This generation failed${reason ? `: ${reason}` : ''}. Use Regenerate to try again.`
        : 'This generation was cancelled. Use Regenerate to run it again.');
    }
    statusText.textContent = status === 'queued' ? 'Waiting in the queue…' : `Generating… ${Math.round(Number(generation.progress) || 0)}%`;
    await sleep(POLL_MS);
  }
}

function showPlayer() {
  const styles = getComputedStyle(document.documentElement);
  const wavesurfer = WaveSurfer.create({
    container: waveformEl,
    url: audioUrl,
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
    root.dataset.waveform = 'ready';
  });
  wavesurfer.on('timeupdate', (time) => { currentTimeEl.textContent = formatSeconds(time); });
  wavesurfer.on('play', () => { controls.classList.add('is-playing'); playButton.setAttribute('aria-label', 'Pause'); });
  wavesurfer.on('pause', () => { controls.classList.remove('is-playing'); playButton.setAttribute('aria-label', 'Play'); });
  wavesurfer.on('error', () => {
    statusText.textContent = 'The audio could not be loaded. Reload the page to try again.';
  });
  playButton.addEventListener('click', () => wavesurfer.playPause());
  waveformEl.addEventListener('keydown', (event) => {
    if (event.key === ' ' || event.key === 'Enter') wavesurfer.playPause();
    else if (event.key === 'ArrowRight') wavesurfer.skip(5);
    else if (event.key === 'ArrowLeft') wavesurfer.skip(-5);
    else return;
    event.preventDefault();
  });
  root.querySelector('[data-download]').href = `${audioUrl}?download=1`;
}

root.querySelector('[data-delete]').addEventListener('click', async (event) => {
  if (!confirm('Delete this generation and its audio? This cannot be undone.')) return;
  const button = event.currentTarget;
  busy(button, true);
  try {
    await api(`/api/generations/${encodeURIComponent(id)}`, { method: 'DELETE' });
    toast('Generation deleted');
    location.assign('/history');
  } catch (error) {
    busy(button, false);
    showPageError(error);
  }
});

try {
  await loadGeneration();
  showPlayer();
} catch (error) {
  statusBox.querySelector('.spinner').hidden = true;
  statusText.textContent = error.status === 404
    ? 'This generation does not exist in this organization. It may have been deleted; find others in your history.'
    : error.message;
}
