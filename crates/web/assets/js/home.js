// Dashboard: creating an organization (the first, or another from the switcher), recent
// generations and usage this period.
import { api, boot, busy, formatDate, h, showError, statusBadge } from './app.js';

const session = boot();
const onboarding = document.querySelector('[data-create-org]');

if (!session.activeOrg || new URLSearchParams(location.search).has('new-org')) {
  onboarding.hidden = false;
  const form = document.querySelector('[data-create-org-form]');
  const errorBox = onboarding.querySelector('[data-form-error]');
  form.elements.name.focus();
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError(errorBox, null);
    const name = form.elements.name.value.trim();
    if (!name) {
      showError(errorBox, new Error('Give your organization a name.'));
      return;
    }
    const submit = form.querySelector('[type="submit"]');
    busy(submit, true);
    try {
      const org = await api('/api/orgs', { method: 'POST', json: { name } });
      // The first organization becomes the active one by itself; another needs choosing.
      if (session.activeOrg) await api(`/api/orgs/${encodeURIComponent(org.id)}/activate`, { method: 'POST' });
      location.assign('/');
    } catch (error) {
      busy(submit, false);
      showError(errorBox, error);
    }
  });
}

if (session.activeOrg) loadRecent();

async function loadRecent() {
  const list = document.querySelector('[data-recent]');
  try {
    const data = await api('/api/generations?limit=100');
    const { generations } = data;
    list.replaceChildren();
    if (!generations.length) {
      list.append(h('li', { class: 'empty-inline' }, 'Nothing generated yet. ',
        h('a', { href: '/text-to-speech' }, 'Create your first speech')));
    }
    for (const generation of generations.slice(0, 5)) {
      list.append(h('li', {},
        h('div', { class: 'list-main' },
          h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text),
          h('span', { class: 'list-sub' }, `${generation.voiceName} · ${formatDate(generation.createdAt)}`)),
        statusBadge(generation)));
    }
    showUsage(data);
  } catch (error) {
    list.replaceChildren(h('li', { class: 'empty-inline' }, error.message));
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

/** Counts this calendar month's generations among the newest 100 ("+" when there may be more). */
function showUsage({ generations, total }) {
  const start = new Date();
  start.setDate(1);
  start.setHours(0, 0, 0, 0);
  const thisPeriod = generations.filter((g) => new Date(g.createdAt) >= start);
  const more = total > generations.length && thisPeriod.length === generations.length ? '+' : '';
  const characters = thisPeriod.reduce((sum, g) => sum + [...g.text].length, 0);
  const succeeded = thisPeriod.filter((g) => g.status === 'succeeded').length;
  document.querySelector('[data-usage-generations]').textContent = `${thisPeriod.length}${more}`;
  document.querySelector('[data-usage-characters]').textContent = `${characters.toLocaleString()}${more}`;
  document.querySelector('[data-usage-succeeded]').textContent = `${succeeded}${more}`;
}
