// History: the organization's generations, newest first, filtered by voice, paginated.
import { allVoices, api, boot, formatDate, formatSeconds, h, pageInfo, pager, showPageError, statusBadge, wavSeconds } from './app.js';

const LIMIT = 20;

boot();
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
        duration,
        h('td', {}, formatDate(generation.createdAt)));
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
