// New voice: a sample from a dropped or chosen file (decoded here first, so that a file
// that is not audio or is too short or long is refused before uploading), or recorded in
// the browser (saving is enabled after 10 s), plus name, description, category, language
// and the required confirmation that the speaker agreed; uploaded to `POST /api/voices`
// as the raw audio body with the details as query parameters.
import { api, boot, busy, formatSeconds, showError } from './app.js';
import { MAX_SECONDS, MIN_SECONDS, checkSampleFile, contentTypeOf } from './voice-sample.js';
import { WavRecorder } from './wav-recorder.js';

boot();
const form = document.querySelector('[data-new-voice-form]');
const errorBox = form.querySelector('[data-form-error]');
const saveButton = form.querySelector('[data-save-voice]');
const preview = form.querySelector('[data-sample-preview]');
const previewAudio = form.querySelector('[data-sample-audio]');
const dropzone = form.querySelector('[data-dropzone]');
const fileInput = form.elements.file;
let sample = null;

function updateSave() {
  saveButton.disabled = !sample || !form.elements.name.value.trim() || !form.elements.consent.checked;
}
form.elements.name.addEventListener('input', updateSave);
form.elements.consent.addEventListener('change', updateSave);

function setSample(blob, label, meta) {
  sample = blob;
  if (previewAudio.src) URL.revokeObjectURL(previewAudio.src);
  previewAudio.src = URL.createObjectURL(blob);
  form.querySelector('[data-sample-name]').textContent = label;
  form.querySelector('[data-sample-meta]').textContent = meta;
  preview.hidden = false;
  if (!form.elements.name.value.trim() && blob.name) {
    form.elements.name.value = blob.name.replace(/\.[^.]+$/, '').slice(0, 100);
  }
  updateSave();
}

let fileCounter = 0;
async function takeFile(file) {
  showError(errorBox, null);
  if (!file) return;
  // Nothing can be saved until this file is checked.
  const thisFile = ++fileCounter;
  sample = null;
  preview.hidden = true;
  updateSave();
  try {
    const meta = await checkSampleFile(file);
    if (thisFile === fileCounter) setSample(file, file.name, meta);
  } catch (error) {
    if (thisFile === fileCounter) showError(errorBox, error);
  }
}

fileInput.addEventListener('change', () => takeFile(fileInput.files[0]));
for (const type of ['dragenter', 'dragover']) {
  dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    dropzone.classList.add('is-over');
  });
}
for (const type of ['dragleave', 'drop']) {
  dropzone.addEventListener(type, () => dropzone.classList.remove('is-over'));
}
dropzone.addEventListener('drop', (event) => {
  event.preventDefault();
  takeFile(event.dataTransfer.files[0]);
});

const sourceTabs = [...form.querySelectorAll('[data-source-tab]')];
for (const tab of sourceTabs) {
  tab.addEventListener('click', () => {
    for (const other of sourceTabs) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      other.tabIndex = selected ? 0 : -1;
      form.querySelector(`[data-source-panel="${other.dataset.sourceTab}"]`).hidden = !selected;
    }
  });
}

const startButton = form.querySelector('[data-record-start]');
const stopButton = form.querySelector('[data-record-stop]');
const timer = form.querySelector('[data-record-timer]');
const level = form.querySelector('[data-record-level]');
const recordHint = form.querySelector('[data-record-hint]');
let recorder = null;
let ticker = null;

startButton.addEventListener('click', async () => {
  showError(errorBox, null);
  recorder = new WavRecorder({ onLevel: (value) => { level.style.width = `${Math.round(value * 100)}%`; } });
  try {
    await recorder.start();
  } catch (error) {
    recorder = null;
    showError(errorBox, new Error(error && error.name === 'NotAllowedError'
      ? 'The browser was not allowed to use the microphone. Allow microphone access for this site and try again.'
      : 'No microphone could be opened. Connect one, or upload a recording instead.'));
    return;
  }
  sample = null;
  updateSave();
  preview.hidden = true;
  startButton.disabled = true;
  stopButton.disabled = false;
  timer.classList.remove('is-ready');
  recordHint.textContent = `Keep going: saving is possible after ${MIN_SECONDS} seconds.`;
  ticker = setInterval(() => {
    const seconds = recorder.seconds;
    timer.textContent = formatSeconds(seconds);
    if (seconds >= MIN_SECONDS && !timer.classList.contains('is-ready')) {
      timer.classList.add('is-ready');
      recordHint.textContent = 'That is enough to clone the voice. Stop when you are done.';
    }
    if (seconds >= MAX_SECONDS) stopButton.click();
  }, 200);
});

stopButton.addEventListener('click', async () => {
  clearInterval(ticker);
  stopButton.disabled = true;
  startButton.disabled = false;
  level.style.width = '0';
  const seconds = recorder.seconds;
  const wav = await recorder.stop();
  recorder = null;
  startButton.textContent = 'Record again';
  if (seconds < MIN_SECONDS) {
    recordHint.textContent = `That was ${seconds.toFixed(1)} s; record at least ${MIN_SECONDS} seconds.`;
    return;
  }
  recordHint.textContent = 'Listen back below, then save the voice.';
  setSample(wav, 'Recording', `${formatSeconds(seconds)} · WAV`);
});

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(errorBox, null);
  if (!sample) {
    showError(errorBox, new Error('Add a sample: upload a file or record one.'));
    return;
  }
  const name = form.elements.name.value.trim();
  if (!name) {
    showError(errorBox, new Error('Give the voice a name.'));
    form.elements.name.focus();
    return;
  }
  if (!form.elements.consent.checked) {
    showError(errorBox, new Error('Confirm that the speaker agreed to having their voice cloned.'));
    form.elements.consent.focus();
    return;
  }
  const query = new URLSearchParams({ name, category: form.elements.category.value, language: form.elements.language.value.trim(), consent: 'true' });
  const description = form.elements.description.value.trim();
  if (description) query.set('description', description);
  busy(saveButton, true);
  try {
    await api(`/api/voices?${query}`, { method: 'POST', body: sample, headers: { 'Content-Type': contentTypeOf(sample) || 'application/octet-stream' } });
    location.assign('/voices?tab=custom');
  } catch (error) {
    busy(saveButton, false);
    updateSave();
    showError(errorBox, error.status === 413
      ? new Error('This file is larger than the upload limit. Trim it or export it at a lower bitrate.')
      : error);
  }
});
