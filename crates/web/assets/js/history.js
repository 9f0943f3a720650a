// History: the organization's generations, newest first, filtered by voice, paginated;
// each row plays, downloads or deletes its audio in place, and rows selected together are
// downloaded or deleted together.
import { allVoices, api, boot, busy, formatDate, formatSeconds, h, pageInfo, pager, samplePlayer, showPageError, statusBadge, toast, wavSeconds } from './app.js';

const LIMIT = 20;

boot();
const number = new Intl.NumberFormat();
const play = samplePlayer(document.querySelector('[data-history-player]'));
const rows = document.querySelector('[data-history-rows]');
const empty = document.querySelector('[data-history-empty]');
const voiceFilter = document.querySelector('[data-history-voice]');
const params = new URLSearchParams(location.search);
const showPage = pager(document.querySelector('[data-pager]'), load);
const selectAll = document.querySelector('[data-select-all]');
const selectionBar = document.querySelector('[data-selection]');
/** The selected generations of this page, by id. */
const selected = new Map();
let shownOffset = 0;

function showSelection() {
  const boxes = [...rows.querySelectorAll('[data-select-row]')];
  selectionBar.hidden = selected.size === 0;
  selectionBar.querySelector('[data-selection-count]').textContent =
    `${number.format(selected.size)} selected`;
  selectAll.checked = boxes.length > 0 && selected.size === boxes.length;
  selectAll.indeterminate = selected.size > 0 && selected.size < boxes.length;
}

function selectBox(generation, label) {
  const box = h('input', { type: 'checkbox', 'aria-label': `Select ${label}`, 'data-select-row': '' });
  box.addEventListener('change', () => {
    if (box.checked) selected.set(generation.id, generation);
    else selected.delete(generation.id);
    showSelection();
  });
  return box;
}

selectAll.addEventListener('change', () => {
  const checked = selectAll.checked;
  for (const box of rows.querySelectorAll('[data-select-row]')) {
    if (box.checked !== checked) {
      box.checked = checked;
      box.dispatchEvent(new Event('change'));
    }
  }
});

document.querySelector('[data-download-selected]').addEventListener('click', () => {
  const ready = [...selected.values()].filter((generation) => generation.audioUrl);
  if (!ready.length) {
    toast('None of the selected generations has audio yet.');
    return;
  }
  for (const generation of ready) {
    h('a', { href: `${generation.audioUrl}?download=1`, download: '' }).click();
  }
  if (ready.length < selected.size) {
    toast(`Downloading ${ready.length} of ${selected.size}: the others have no audio yet.`);
  }
});

document.querySelector('[data-delete-selected]').addEventListener('click', async (event) => {
  const count = selected.size;
  const what = count === 1 ? 'the selected generation' : `${number.format(count)} generations`;
  if (!confirm(`Delete ${what} and their audio? This cannot be undone.`)) return;
  const button = event.currentTarget;
  busy(button, true);
  let deleted = 0;
  try {
    for (const id of selected.keys()) {
      await api(`/api/generations/${encodeURIComponent(id)}`, { method: 'DELETE' });
      deleted += 1;
    }
    toast(deleted === 1 ? 'Generation deleted' : `${number.format(deleted)} generations deleted`);
  } catch (error) {
    showPageError(error);
  } finally {
    busy(button, false);
    load(shownOffset);
  }
});

async function load(offset) {
  shownOffset = offset;
  selected.clear();
  showSelection();
  rows.setAttribute('aria-busy', 'true');
  const query = new URLSearchParams({ limit: String(LIMIT), offset: String(offset) });
  if (voiceFilter.value) query.set('voiceId', voiceFilter.value);
  try {
    const data = await api(`/api/generations?${query}`);
    const { generations } = data;
    rows.replaceChildren(...generations.map((generation) => {
      const duration = h('td', { 'data-duration': '' }, '–');
      if (generation.audioUrl) {
        wavSeconds(generation.audioUrl).then((seconds) => {
          if (seconds !== null) duration.textContent = formatSeconds(seconds);
        }).catch(() => {});
      }
      const label = rowLabel(generation);
      return h('tr', { 'data-generation-id': generation.id },
        h('td', { class: 'cell-select' }, selectBox(generation, label)),
        h('td', { class: 'cell-text' }, h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text)),
        h('td', {}, generation.voiceId ? generation.voiceName : `${generation.voiceName} (deleted)`),
        h('td', {}, statusBadge(generation)),
        h('td', { class: 'cell-number', 'data-characters': '' }, number.format([...generation.text].length)),
        duration,
        h('td', { class: 'cell-date' }, formatDate(generation.createdAt)),
        h('td', { class: 'cell-actions' }, ...rowActions(generation, label, offset)));
    }));
    showSelection();
    empty.hidden = data.total > 0;
    rows.closest('.table-wrap').hidden = !empty.hidden;
    empty.querySelector('h3').textContent = voiceFilter.value ? 'No generations with this voice' : 'No generations yet';
    showPage(pageInfo(data, generations.length));
  } catch (error) {
    rows.replaceChildren();
    showPageError(error);
  } finally {
    rows.setAttribute('aria-busy', 'false');
  }
}

/** The start of the generation's text, quoted, to name it in labels and questions. */
function rowLabel(generation) {
  return `"${generation.text.slice(0, 40)}${generation.text.length > 40 ? '…' : ''}"`;
}

/** Play and download once the audio is ready; delete always. */
function rowActions(generation, label, offset) {
  const actions = [];
  if (generation.audioUrl) {
    const playButton = h('button', {
      type: 'button',
      class: 'btn btn-secondary btn-sm',
      'aria-pressed': 'false',
      'aria-label': `Play ${label}`,
      'data-play-row': '',
    }, 'Play');
    playButton.addEventListener('click', () => play(playButton, generation.audioUrl));
    actions.push(playButton, h('a', {
      class: 'btn btn-ghost btn-sm',
      href: `${generation.audioUrl}?download=1`,
      download: '',
      'aria-label': `Download ${label}`,
      'data-download-row': '',
    }, 'Download'));
  }
  actions.push(h('button', {
    type: 'button',
    class: 'btn btn-danger-ghost btn-sm',
    'aria-label': `Delete ${label}`,
    'data-delete-row': '',
    onclick: async (event) => {
      if (!confirm(`Delete ${label} and its audio? This cannot be undone.`)) return;
      const button = event.currentTarget;
      busy(button, true);
      try {
        await api(`/api/generations/${encodeURIComponent(generation.id)}`, { method: 'DELETE' });
        toast('Generation deleted');
        load(offset);
      } catch (error) {
        busy(button, false);
        showPageError(error);
      }
    },
  }, 'Delete'));
  return actions;
}

voiceFilter.addEventListener('change', () => {
  const url = new URL(location.href);
  if (voiceFilter.value) url.searchParams.set('voiceId', voiceFilter.value);
  else url.searchParams.delete('voiceId');
  history.replaceState(null, '', url);
  load(0);
});

allVoices().then((voices) => {
  for (const voice of voices) voiceFilter.append(new Option(voice.name, voice.id));
  if (params.get('voiceId')) voiceFilter.value = params.get('voiceId');
}).catch(showPageError).finally(() => load(0));
