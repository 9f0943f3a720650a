// One generation (details rendered by the server): waits while it is queued or running,
// showing its progress, then shows its waveform (WaveSurfer.js) with play/pause, seek by
// click or keyboard, time, download; regenerate is a link; delete asks first.
import WaveSurfer from '../vendor/wavesurfer.esm.js';
import { api, boot, busy, formatDate, formatSeconds, showPageError, toast } from './app.js';

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

function showProgress(generation) {
  const percent = generation.status === 'queued' ? 0 : generation.progress;
  const waiting = generation.waitingReason || 'Waiting in the queue…';
  statusText.textContent = generation.status === 'queued' ? waiting : `Generating… ${percent}%`;
  progress.hidden = false;
  progress.setAttribute('aria-valuenow', String(percent));
  progress.querySelector('[data-progress-bar]').style.width = `${percent}%`;
  cancelButton.hidden = false;
}

/** Resolves once the generation has succeeded; throws when it failed or was cancelled. */
async function waitUntilReady() {
  let generation = { status: root.dataset.status, progress: 0, waitingReason: root.dataset.waitingReason };
  while (generation.status === 'queued' || generation.status === 'running') {
    showProgress(generation);
    await sleep(POLL_MS);
    generation = await api(apiUrl);
  }
  root.dataset.status = generation.status;
  progress.hidden = true;
  cancelButton.hidden = true;
  if (generation.status === 'failed') {
    const reason = generation.failureReason ? `: ${generation.failureReason}` : '';
    throw new Error(`This generation failed${reason}. Use Regenerate to try again.`);
  }
  if (generation.status === 'cancelled') throw new Error('This generation was cancelled. Use Regenerate to run it again.');
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
}

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
  statusText.textContent = error.message;
}
