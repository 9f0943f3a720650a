// Dashboard: creating an organization (the first, or another from the switcher), recent
// generations and this billing period's usage against the plan.
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

if (session.activeOrg) {
  loadRecent();
  loadUsage();
}

async function loadRecent() {
  const list = document.querySelector('[data-recent]');
  try {
    const { generations } = await api('/api/generations?limit=5');
    list.replaceChildren();
    if (!generations.length) {
      list.append(h('li', { class: 'empty-inline' }, 'Nothing generated yet. ',
        h('a', { href: '/text-to-speech' }, 'Create your first speech')));
    }
    for (const generation of generations) {
      list.append(h('li', {},
        h('div', { class: 'list-main' },
          h('a', { href: `/text-to-speech/${encodeURIComponent(generation.id)}` }, generation.text),
          h('span', { class: 'list-sub' }, `${generation.voiceName} · ${formatDate(generation.createdAt)}`)),
        statusBadge(generation)));
    }
  } catch (error) {
    list.replaceChildren(h('li', { class: 'empty-inline' }, error.message));
  } finally {
    list.setAttribute('aria-busy', 'false');
  }
}

/** This billing period's usage against the organization's plan. */
async function loadUsage() {
  const usage = document.querySelector('[data-usage]');
  const number = new Intl.NumberFormat();
  const ofLimit = ({ used, limit }) => (limit === null ? number.format(used) : `${number.format(used)} of ${number.format(limit)}`);
  try {
    const { characters, voices, daily } = await api('/api/usage');
    const activeDays = daily.filter((day) => day.characters > 0).length;
    document.querySelector('[data-usage-characters]').textContent = ofLimit(characters);
    document.querySelector('[data-usage-voices]').textContent = ofLimit(voices);
    document.querySelector('[data-usage-days]').textContent = number.format(activeDays);
  } catch (error) {
    showError(document.querySelector('[data-usage-error]'), error);
  } finally {
    usage.setAttribute('aria-busy', 'false');
  }
}
