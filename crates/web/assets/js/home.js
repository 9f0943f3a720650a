// Dashboard: organization onboarding, greeting, recent generations and usage this period.
import { api, boot, busy, durationOf, formatDate, formatSeconds, h, listOf, showError, statusBadge } from './app.js';

const session = await boot({ requireOrg: false });
const onboarding = document.querySelector('[data-create-org]');
const dashboard = document.querySelector('[data-dashboard]');

if (!session.activeOrg || new URLSearchParams(location.search).has('new-org')) {
  onboarding.hidden = false;
  dashboard.hidden = !session.activeOrg;
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
      const id = org.id || (org.org && org.org.id);
      if (id) await api(`/api/orgs/${encodeURIComponent(id)}/activate`, { method: 'POST' });
      location.assign('/');
    } catch (error) {
      busy(submit, false);
      showError(errorBox, error);
    }
  });
}

if (session.activeOrg) {
  document.querySelector('[data-org-name]').textContent = session.activeOrg.name;
  const name = session.user.name || (session.user.email || '').split('@')[0];
  document.querySelector('[data-greeting]').textContent = name ? `Welcome back, ${name}` : 'Welcome back';
  loadRecent();
}

async function loadRecent() {
  const list = document.querySelector('[data-recent]');
  try {
    const data = await api('/api/generations?limit=100');
    const generations = listOf(data);
    list.replaceChildren();
    if (!generations.length) {
      list.append(h('li', { class: 'empty-inline' }, 'Nothing generated yet. ',
        h('a', { href: '/text-to-speech' }, 'Create your first speech')));
    }
    for (const generation of generations.slice(0, 5)) {
      list.append(h('li', {},
        h('div', { class: 'list-main' },
          h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text || 'Untitled'),
          h('span', { class: 'list-sub' }, `${generation.voiceName || 'Deleted voice'} · ${formatDate(generation.createdAt)}`)),
        statusBadge(generation)));
    }
    showUsage(generations, data);
  } catch (error) {
    list.replaceChildren(h('li', { class: 'empty-inline' }, error.message));
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

function showUsage(generations, data) {
  const start = new Date();
  start.setDate(1);
  start.setHours(0, 0, 0, 0);
  const thisPeriod = generations.filter((g) => new Date(g.createdAt) >= start);
  const characters = thisPeriod.reduce((sum, g) => sum + (g.text ? g.text.length : 0), 0);
  const seconds = thisPeriod.reduce((sum, g) => sum + (durationOf(g) || 0), 0);
  const complete = !(data && typeof data.total === 'number' && data.total > generations.length);
  document.querySelector('[data-usage-generations]').textContent = `${thisPeriod.length}${complete ? '' : '+'}`;
  document.querySelector('[data-usage-characters]').textContent = characters.toLocaleString();
  document.querySelector('[data-usage-audio]').textContent = formatSeconds(seconds);
}
