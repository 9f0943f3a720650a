// History: the organization's generations, newest first, filtered by voice, paginated;
// each row plays, downloads or deletes its audio in place.
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

async function load(offset) {
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
      return h('tr', { 'data-generation-id': generation.id },
        h('td', { class: 'cell-text' }, h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text)),
        h('td', {}, generation.voiceId ? generation.voiceName : `${generation.voiceName} (deleted)`),
        h('td', {}, statusBadge(generation)),
        h('td', { class: 'cell-number', 'data-characters': '' }, number.format([...generation.text].length)),
        duration,
        h('td', {}, formatDate(generation.createdAt)),
        h('td', { class: 'cell-actions' }, ...rowActions(generation, offset)));
    }));
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

/** Play and download once the audio is ready; delete always. */
function rowActions(generation, offset) {
  const label = `"${generation.text.slice(0, 40)}${generation.text.length > 40 ? '…' : ''}"`;
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
