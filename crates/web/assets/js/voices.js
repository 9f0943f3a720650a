// Voice library: system and custom tabs, category and language filters, name search,
// sample preview, and for admins editing (details, and replacing the sample with the
// speaker's consent) and deleting.
import { api, boot, busy, categoryLabel, h, isCustom, pageInfo, pager, samplePlayer, showError, showPageError, toast } from './app.js';
import { checkSampleFile, contentTypeOf } from './voice-sample.js';

const LIMIT = 24;
const AVATAR_COLORS = ['#5b4bff', '#e0487a', '#12805c', '#d97706', '#0e7490', '#7c3aed', '#be123c', '#2563eb'];

const session = boot();
const list = document.querySelector('[data-voice-list]');
const empty = document.querySelector('[data-voice-empty]');
const filters = document.querySelector('[data-voice-filters]');
const tabs = [...document.querySelectorAll('[data-variant-tab]')];
const panel = document.querySelector('#voice-panel');
const playSample = samplePlayer(document.querySelector('[data-sample-player]'));
const showPage = pager(document.querySelector('[data-pager]'), load);
let variant = 'SYSTEM';

function selectTab(next, focus) {
  variant = next;
  for (const tab of tabs) {
    const selected = tab.dataset.variantTab === variant;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) {
      panel.setAttribute('aria-labelledby', tab.id);
      if (focus) tab.focus();
    }
  }
  load(0);
}
for (const tab of tabs) {
  tab.addEventListener('click', () => selectTab(tab.dataset.variantTab, false));
  tab.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const index = tabs.indexOf(tab);
    const next = tabs[(index + (event.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next.dataset.variantTab, true);
  });
}

function avatar(voice) {
  let hash = 0;
  for (const char of voice.name || '') hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return h('span', { class: 'voice-avatar', style: `background:${AVATAR_COLORS[hash % AVATAR_COLORS.length]}`, 'aria-hidden': 'true' },
    (voice.name || '?').charAt(0).toUpperCase());
}

function voiceCard(voice) {
  const preview = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'aria-pressed': 'false', 'aria-label': `Play a sample of ${voice.name}` }, 'Preview');
  preview.addEventListener('click', () => playSample(preview, voice.audioUrl));
  const actions = h('div', { class: 'voice-actions' }, preview,
    h('a', { class: 'btn btn-ghost btn-sm', href: `/text-to-speech?voiceId=${encodeURIComponent(voice.id)}` }, 'Use'));
  if (session.isAdmin && isCustom(voice)) {
    actions.append(h('button', {
      type: 'button',
      class: 'btn btn-ghost btn-sm',
      'data-edit-voice': voice.id,
      'aria-label': `Edit ${voice.name}`,
      onclick: () => editVoice(voice),
    }, 'Edit'));
    actions.append(h('button', {
      type: 'button',
      class: 'btn btn-danger-ghost btn-sm',
      'data-delete-voice': voice.id,
      'aria-label': `Delete ${voice.name}`,
      onclick: (event) => deleteVoice(voice, event.currentTarget),
    }, 'Delete'));
  }
  return h('li', { class: 'voice-card', 'data-voice-id': voice.id },
    h('div', { class: 'voice-card-head' }, avatar(voice),
      h('div', { class: 'list-main' }, h('h3', {}, voice.name),
        h('div', { class: 'voice-meta' },
          h('span', { class: 'badge' }, categoryLabel(voice.category)),
          h('span', { class: 'badge' }, voice.language)))),
    voice.description ? h('p', {}, voice.description) : null,
    actions);
}

const editDialog = document.querySelector('[data-edit-dialog]');
const editForm = document.querySelector('[data-edit-form]');
const editError = editForm?.querySelector('[data-form-error]');
const sampleMeta = editForm?.querySelector('[data-edit-sample-meta]');
const consentField = editForm?.querySelector('[data-edit-consent]');
const SAMPLE_HINT = sampleMeta?.textContent;
let editing = null;
// The checked replacement recording, when one was chosen.
let newSample = null;
let sampleCounter = 0;

function setNewSample(file, meta) {
  newSample = file;
  sampleMeta.textContent = file ? `${file.name} · ${meta}` : SAMPLE_HINT;
  consentField.hidden = !file;
  editForm.elements.consent.checked = false;
}

editForm?.elements.consent.addEventListener('change', () => {
  if (editForm.elements.consent.checked) showError(editError, null);
});
editForm?.elements.sample.addEventListener('change', async () => {
  const file = editForm.elements.sample.files[0];
  const thisSample = ++sampleCounter;
  showError(editError, null);
  setNewSample(null);
  if (!file) return;
  try {
    const meta = await checkSampleFile(file);
    if (thisSample === sampleCounter) setNewSample(file, meta);
  } catch (error) {
    if (thisSample !== sampleCounter) return;
    editForm.elements.sample.value = '';
    showError(editError, error);
  }
});

function editVoice(voice) {
  editing = voice;
  const fields = editForm.elements;
  fields.name.value = voice.name;
  fields.description.value = voice.description || '';
  fields.category.value = voice.category;
  if (![...fields.language.options].some((option) => option.value === voice.language)) {
    fields.language.append(new Option(voice.language, voice.language));
  }
  fields.language.value = voice.language;
  fields.sample.value = '';
  sampleCounter++;
  setNewSample(null);
  showError(editError, null);
  editDialog.showModal();
  fields.name.focus();
}

editDialog?.querySelector('[data-edit-cancel]').addEventListener('click', () => editDialog.close());
editForm?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const fields = editForm.elements;
  const save = editForm.querySelector('[data-edit-save]');
  if (newSample && !fields.consent.checked) {
    showError(editError, new Error('Confirm that the speaker of the new recording agreed to having their voice cloned.'));
    fields.consent.focus();
    return;
  }
  busy(save, true);
  try {
    if (newSample) {
      await api(`/api/voices/${encodeURIComponent(editing.id)}/sample?consent=true`, {
        method: 'PUT',
        body: newSample,
        headers: { 'Content-Type': contentTypeOf(newSample) || 'application/octet-stream' },
      });
      setNewSample(null);
      fields.sample.value = '';
    }
    const edited = await api(`/api/voices/${encodeURIComponent(editing.id)}`, {
      method: 'PATCH',
      json: {
        name: fields.name.value,
        description: fields.description.value,
        category: fields.category.value,
        language: fields.language.value,
      },
    });
    editDialog.close();
    toast(`Saved ${edited.name}`);
    load(0);
  } catch (error) {
    showError(editError, error.status === 413
      ? new Error('This file is larger than the upload limit. Trim it or export it at a lower bitrate.')
      : error);
  } finally {
    busy(save, false);
  }
});

async function deleteVoice(voice, button) {
  if (!confirm(`Delete the voice "${voice.name}"? Generations made with it stay in your history.`)) return;
  button.disabled = true;
  try {
    await api(`/api/voices/${encodeURIComponent(voice.id)}`, { method: 'DELETE' });
    toast(`Deleted ${voice.name}`);
    load(0);
  } catch (error) {
    button.disabled = false;
    showPageError(error);
  }
}

let loadCounter = 0;
async function load(offset) {
  const thisLoad = ++loadCounter;
  list.setAttribute('aria-busy', 'true');
  const query = new URLSearchParams({ variant, limit: String(LIMIT), offset: String(offset) });
  const search = filters.elements.q.value.trim();
  if (search) query.set('search', search);
  if (filters.elements.category.value) query.set('category', filters.elements.category.value);
  if (filters.elements.language.value) query.set('language', filters.elements.language.value);
  try {
    const data = await api(`/api/voices?${query}`);
    if (thisLoad !== loadCounter) return;
    const { voices } = data;
    list.replaceChildren(...voices.map(voiceCard));
    const filtered = search || filters.elements.category.value || filters.elements.language.value;
    empty.hidden = voices.length > 0;
    empty.querySelector('[data-empty-title]').textContent = filtered ? 'No voices match' : variant === 'CUSTOM' ? 'No custom voices yet' : 'No system voices installed';
    empty.querySelector('[data-empty-text]').textContent = filtered
      ? 'Try another search or clear the filters.'
      : variant === 'CUSTOM'
        ? 'Clone a voice from a recording of 10 seconds or more; it will appear here for everyone in your organization.'
        : 'The operator of this instance has not imported system voices yet. Clone your own voice instead.';
    const emptyAction = empty.querySelector('[data-empty-action]');
    if (emptyAction) emptyAction.hidden = variant !== 'CUSTOM' || Boolean(filtered);
    showPage(pageInfo(data, voices.length));
  } catch (error) {
    list.replaceChildren();
    showPageError(error);
  } finally {
    if (thisLoad === loadCounter) list.setAttribute('aria-busy', 'false');
  }
}

let searchTimer;
filters.elements.q.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => load(0), 250);
});
for (const select of [filters.elements.category, filters.elements.language]) {
  select.addEventListener('change', () => load(0));
}
filters.addEventListener('submit', (event) => {
  event.preventDefault();
  load(0);
});

// The tab in the address, else system voices, or the organization's own when the instance
// has no system voice.
async function firstTab() {
  const asked = new URLSearchParams(location.search).get('tab');
  if (asked) return asked === 'custom' ? 'CUSTOM' : 'SYSTEM';
  try {
    const { voices } = await api('/api/voices?variant=SYSTEM&limit=1');
    return voices.length > 0 ? 'SYSTEM' : 'CUSTOM';
  } catch {
    return 'SYSTEM';
  }
}

selectTab(await firstTab(), false);
