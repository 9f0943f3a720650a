// Text to speech: the editor, tag buttons, voice picker with sample playback, the four
// sampling sliders, this request's cost against what is left of the month's characters,
// and Generate (or Ctrl/Cmd+Enter) with live progress; the result plays in a player docked
// at the bottom of the page, which links to the generation's own page, so the user stays
// in the editor. The speech plays in that player as it is generated, then the stored file
// takes over.
import { LiveAudio, audioContext, liveSentence } from './live-audio.js';
import { allVoices, api, boot, busy, categoryLabel, failureMessage, isCustom, samplePlayer, showError } from './app.js';

const POLL_MS = 600;

boot();
const form = document.querySelector('[data-tts-form]');
const textarea = form.elements.text;
const counter = document.querySelector('[data-char-count]');
const limitLabel = document.querySelector('[data-char-limit]');
const MAX_CHARS = Number(limitLabel.textContent);
const limitNotice = document.querySelector('[data-text-limit]');
const costLabel = document.querySelector('[data-request-cost]');
const picker = document.querySelector('[data-voice-picker]');
const previewButton = document.querySelector('[data-preview-voice]');
const errorBox = form.querySelector('[data-form-error]');
const generateButton = form.querySelector('[data-generate]');
const sliders = [...form.querySelectorAll('input[type="range"]')];
const playSample = samplePlayer(document.querySelector('[data-sample-player]'));
const params = new URLSearchParams(location.search);
const number = new Intl.NumberFormat();
/** This month's characters `{ used, limit }` (limit null: unlimited), once loaded. */
let monthCharacters = null;
/** Where each voice's sample plays, by voice id. */
let sampleUrls = new Map();

/** Characters as the server counts them (Unicode scalar values, not UTF-16 units). */
const charCount = (text) => [...text].length;

/** Why `length` characters cannot go in one generation, or null when they can. */
function overLimitMessage(length) {
  if (length <= MAX_CHARS) return null;
  return `The text is ${number.format(length)} characters long; one generation takes up to ${number.format(MAX_CHARS)}. `
    + `Shorten it by ${number.format(length - MAX_CHARS)} characters, or split it into several generations.`;
}

function updateCount() {
  const length = charCount(textarea.value);
  counter.textContent = number.format(length);
  counter.parentElement.classList.toggle('is-over', length > MAX_CHARS);
  const over = overLimitMessage(length);
  limitNotice.textContent = over || '';
  limitNotice.hidden = !over;
  const cost = charCount(textarea.value.trim());
  let text = `This request: ${number.format(cost)} ${cost === 1 ? 'character' : 'characters'}`;
  if (monthCharacters && monthCharacters.limit !== null) {
    const left = Math.max(0, monthCharacters.limit - monthCharacters.used);
    text += ` · ${number.format(left)} of ${number.format(monthCharacters.limit)} left this month`;
    costLabel.classList.toggle('is-over', cost > left);
  }
  costLabel.textContent = `${text}.`;
}
textarea.addEventListener('input', updateCount);
limitLabel.textContent = number.format(MAX_CHARS);

async function loadUsage() {
  try {
    monthCharacters = (await api('/api/usage')).characters;
    updateCount();
  } catch {
    // The cost is still shown; the server checks the quota when generating.
  }
}

form.querySelector('.tag-bar').addEventListener('click', (event) => {
  const button = event.target.closest('[data-insert-tag]');
  if (!button) return;
  const tag = button.dataset.insertTag;
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  const before = value.slice(0, start);
  const spacer = before && !/\s$/.test(before) ? ' ' : '';
  textarea.setRangeText(`${spacer}${tag} `, start, end, 'end');
  textarea.focus();
  updateCount();
});

// Ctrl+Enter (Cmd+Enter on a Mac) generates from anywhere in the form.
form.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !generateButton.disabled) {
    event.preventDefault();
    form.requestSubmit();
  }
});

function showSliderValue(slider) {
  form.querySelector(`[data-output="${slider.name}"]`).textContent = slider.value;
}
for (const slider of sliders) slider.addEventListener('input', () => showSliderValue(slider));
form.querySelector('[data-reset-sliders]').addEventListener('click', () => {
  for (const slider of sliders) {
    slider.value = slider.dataset.default;
    showSliderValue(slider);
  }
});

async function loadVoices() {
  let voices;
  try {
    voices = await allVoices();
  } catch (error) {
    picker.replaceChildren(new Option('Voices could not be loaded', ''));
    showError(errorBox, error);
    return;
  }
  picker.replaceChildren();
  sampleUrls = new Map(voices.map((voice) => [voice.id, voice.audioUrl]));
  if (!voices.length) {
    picker.append(new Option('No voices yet: clone one first', ''));
    document.querySelector('[data-voice-hint]').innerHTML = '<a href="/voices/new">Clone a voice</a> to start generating.';
    return;
  }
  const groups = new Map();
  for (const voice of voices) {
    const group = isCustom(voice) ? 'Your voices' : categoryLabel(voice.category);
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(voice);
  }
  const order = [...groups.keys()].sort((a, b) => (a === 'Your voices' ? -1 : b === 'Your voices' ? 1 : a.localeCompare(b)));
  for (const name of order) {
    const optgroup = document.createElement('optgroup');
    optgroup.label = name;
    for (const voice of groups.get(name)) optgroup.append(new Option(voice.name, voice.id));
    picker.append(optgroup);
  }
  const wanted = params.get('voiceId');
  if (wanted && voices.some((voice) => voice.id === wanted)) picker.value = wanted;
  picker.disabled = false;
  previewButton.disabled = false;
}

previewButton.addEventListener('click', () => {
  if (picker.value) playSample(previewButton, sampleUrls.get(picker.value));
});

/** Regenerate: `?from={generationId}` fills the form with that generation's text, model, voice and settings. */
async function loadSettingsFrom(generationId) {
  try {
    const generation = await api(`/api/generations/${encodeURIComponent(generationId)}`);
    textarea.value = generation.text;
    updateCount();
    for (const slider of sliders) {
      slider.value = generation[slider.name];
      showSliderValue(slider);
    }
    form.elements.seed.value = generation.seed ?? '';
    // A model the server no longer offers leaves the default chosen.
    if ([...form.elements.model.options].some((option) => option.value === generation.model)) {
      form.elements.model.value = generation.model;
    }
    if (generation.voiceId && [...picker.options].some((option) => option.value === generation.voiceId)) {
      picker.value = generation.voiceId;
    } else {
      // No other voice is chosen for the user: they pick one knowing the original is gone.
      picker.prepend(new Option('Choose a voice', ''));
      picker.value = '';
      showError(errorBox, new Error(`The voice "${generation.voiceName}" of this generation has been deleted. Choose another voice to generate it again.`));
    }
  } catch (error) {
    showError(errorBox, error);
  }
}

const progressPanel = document.querySelector('[data-progress]');
const progressBar = document.querySelector('[data-progress-bar]');
function showProgress(label, percent) {
  progressPanel.hidden = false;
  document.querySelector('[data-progress-label]').textContent = label;
  document.querySelector('[data-progress-value]').textContent = `${Math.round(percent)}%`;
  progressBar.style.width = `${percent}%`;
  progressBar.parentElement.setAttribute('aria-valuenow', String(Math.round(percent)));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const cancelButton = document.querySelector('[data-cancel-generation]');
let running = null;
cancelButton.addEventListener('click', async () => {
  if (!running) return;
  busy(cancelButton, true);
  try {
    await api(`/api/generations/${encodeURIComponent(running)}/cancel`, { method: 'POST' });
  } catch (error) {
    showError(errorBox, error);
  } finally {
    busy(cancelButton, false);
  }
});

/** Polls the generation until it has finished; resolves once it has succeeded. */
async function waitForResult(id) {
  for (;;) {
    const generation = await api(`/api/generations/${encodeURIComponent(id)}`);
    const { status } = generation;
    livePercent = { running: generation.progress, succeeded: 100 }[status] ?? 0;
    if (status === 'succeeded') return generation;
    if (status === 'failed' || status === 'cancelled') throw new Error(failureMessage(generation));
    const waiting = generation.waitingReason || 'Waiting in the queue…';
    showProgress(status === 'queued' ? waiting : 'Generating speech…', Math.max(generation.progress, status === 'queued' ? 2 : 5));
    await sleep(POLL_MS);
  }
}

const resultPlayer = document.querySelector('[data-result-player]');
const resultAudio = resultPlayer.querySelector('[data-result-audio]');
const liveLine = resultPlayer.querySelector('[data-result-live]');
/** The generation being listened to as it is made, and how far along its job is. */
let live = null;
let livePercent = 0;
let liveTicker = null;

function stopListening() {
  clearInterval(liveTicker);
  live?.stop();
  live = null;
  liveLine.hidden = true;
}

resultPlayer.querySelector('[data-result-close]').addEventListener('click', () => {
  stopListening();
  resultAudio.pause();
  resultPlayer.hidden = true;
});

function showInDock(generation) {
  resultPlayer.querySelector('[data-result-voice]').textContent = generation.voiceName;
  resultPlayer.querySelector('[data-result-text]').textContent = generation.text;
  resultPlayer.querySelector('[data-result-link]').href = `/text-to-speech/${encodeURIComponent(generation.id)}`;
  resultPlayer.hidden = false;
}

function showLive() {
  liveLine.textContent = liveSentence(live, livePercent);
  resultPlayer.dataset.liveReceived = live.received.toFixed(2);
  resultPlayer.dataset.livePlayed = live.played.toFixed(2);
}

/** Plays the queued generation in the docked player while it is generated. */
function listen(generation, context) {
  stopListening();
  resultAudio.pause();
  resultAudio.removeAttribute('src');
  resultAudio.hidden = true;
  showInDock(generation);
  live = new LiveAudio(context);
  livePercent = 0;
  liveLine.hidden = false;
  resultPlayer.dataset.live = 'listening';
  showLive();
  liveTicker = setInterval(showLive, 250);
  live.play(`/api/generations/${encodeURIComponent(generation.id)}/stream`).catch(() => {
    // The stored file plays once the generation has finished.
    if (live) liveLine.hidden = true;
  });
}

/** Plays a finished generation in the docked player, from where listening got to. */
function playResult(generation) {
  showInDock(generation);
  resultAudio.hidden = false;
  resultAudio.src = generation.audioUrl;
  if (!live) {
    // The browser may refuse to start playing on its own; the player's button still works.
    resultAudio.play().catch(() => {});
    return;
  }
  resultPlayer.dataset.live = 'done';
  resultAudio.addEventListener('loadedmetadata', () => {
    if (!live) return;
    const heard = live.audible ? live.played : 0;
    stopListening();
    if (heard >= resultAudio.duration - 0.05) return;
    resultAudio.currentTime = heard;
    resultAudio.play().catch(() => {});
  }, { once: true });
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(errorBox, null);
  const text = textarea.value.trim();
  if (!text) {
    showError(errorBox, new Error('Write some text to turn into speech.'));
    textarea.focus();
    return;
  }
  const over = overLimitMessage(charCount(text));
  if (over) {
    showError(errorBox, new Error(over));
    textarea.focus();
    return;
  }
  if (!picker.value) {
    showError(errorBox, new Error('Choose a voice.'));
    picker.focus();
    return;
  }
  const body = {
    text,
    voiceId: picker.value,
    model: form.elements.model.value,
    temperature: Number(form.elements.temperature.value),
    topP: Number(form.elements.topP.value),
    topK: Number(form.elements.topK.value),
    repetitionPenalty: Number(form.elements.repetitionPenalty.value),
  };
  if (form.elements.seed.value) body.seed = Number(form.elements.seed.value);
  // Made in the user's click (or key press), so that the browser lets it play.
  const context = audioContext();
  busy(generateButton, true);
  showProgress('Sending…', 0);
  progressPanel.scrollIntoView({ block: 'nearest' });
  try {
    const created = await api('/api/generations', { method: 'POST', json: body });
    running = created.id;
    cancelButton.hidden = false;
    if (context) listen(created, context);
    const generation = await waitForResult(created.id);
    playResult(generation);
    loadUsage();
  } catch (error) {
    if (live) {
      stopListening();
      resultPlayer.hidden = true;
    } else {
      context?.close();
    }
    showError(errorBox, error);
  } finally {
    busy(generateButton, false);
    progressPanel.hidden = true;
    running = null;
    cancelButton.hidden = true;
  }
});

updateCount();
loadUsage();
await loadVoices();
if (params.get('from')) await loadSettingsFrom(params.get('from'));
form.dataset.ready = 'true';
