// History: the organization's generations, newest first, filtered by voice, paginated.
import { allVoices, api, boot, durationOf, formatDate, formatSeconds, h, listOf, pageInfo, pager, showPageError, statusBadge } from './app.js';

const LIMIT = 20;

await boot();
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
    const generations = listOf(data);
    rows.replaceChildren(...generations.map((generation) => {
      const duration = durationOf(generation);
      return h('tr', {},
        h('td', { class: 'cell-text' }, h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text || 'Untitled')),
        h('td', {}, generation.voiceName || 'Deleted voice'),
        h('td', {}, statusBadge(generation)),
        h('td', {}, duration == null ? '–' : formatSeconds(duration)),
        h('td', {}, formatDate(generation.createdAt)));
    }));
    empty.hidden = generations.length > 0 || offset > 0;
    rows.closest('.table-wrap').hidden = !empty.hidden;
    if (!empty.hidden && voiceFilter.value) {
      empty.querySelector('h3').textContent = 'No generations with this voice';
    }
    showPage(pageInfo(data, offset, LIMIT));
  } catch (error) {
    rows.replaceChildren();
    showPageError(error);
  } finally {
    rows.setAttribute('aria-busy', 'false');
  }
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
}).catch(() => {}).finally(() => load(0));
