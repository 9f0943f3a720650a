// Organization settings: members and roles, invite links, API keys (shown once); and the
// signed-in person's own password and sessions.
import { api, boot, busy, copyButtons, formatDate, h, showError, showPageError, toast } from './app.js';

const session = boot();
const org = session.activeOrg;
const base = `/api/orgs/${encodeURIComponent(org.id)}`;
const errorBox = document.querySelector('[data-form-error]');
copyButtons();

async function loadMembers() {
  const tbody = document.querySelector('[data-members]');
  try {
    const { members } = await api(`${base}/members`);
    tbody.replaceChildren(...members.map((member) => {
      const { userId, role } = member;
      const isMe = userId === session.user.id;
      const roleCell = session.isAdmin && !isMe
        ? roleSelect(member, userId, role)
        : h('span', { class: `badge ${role === 'admin' ? 'badge-admin' : ''}` }, role === 'admin' ? 'Admin' : 'Member');
      const actions = h('td', { class: 'cell-actions' });
      if (session.isAdmin && !isMe) {
        actions.append(h('button', {
          type: 'button',
          class: 'btn btn-danger-ghost btn-sm',
          'aria-label': `Remove ${member.email}`,
          onclick: (event) => removeMember(member, userId, event.currentTarget),
        }, 'Remove'));
      }
      return h('tr', {},
        h('td', {}, h('span', { class: 'list-title' }, member.email),
          h('span', { class: 'list-sub' }, isMe ? `You · joined ${formatDate(member.joinedAt)}` : `Joined ${formatDate(member.joinedAt)}`)),
        h('td', {}, roleCell),
        actions);
    }));
  } catch (error) {
    tbody.replaceChildren();
    showError(errorBox, error);
  } finally {
    tbody.setAttribute('aria-busy', 'false');
  }
}

function roleSelect(member, userId, role) {
  const select = h('select', { 'aria-label': `Role of ${member.email}` },
    new Option('Member', 'member', false, role === 'member'),
    new Option('Admin', 'admin', false, role === 'admin'));
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      await api(`${base}/members/${encodeURIComponent(userId)}`, { method: 'PATCH', json: { role: select.value } });
      toast('Role updated');
    } catch (error) {
      select.value = role;
      showError(errorBox, error);
    } finally {
      select.disabled = false;
    }
  });
  return select;
}

async function removeMember(member, userId, button) {
  if (!confirm(`Remove ${member.email} from ${org.name}?`)) return;
  busy(button, true);
  try {
    await api(`${base}/members/${encodeURIComponent(userId)}`, { method: 'DELETE' });
    toast('Member removed');
    loadMembers();
  } catch (error) {
    busy(button, false);
    showError(errorBox, error);
  }
}

/** The invite's link, made absolute when the server does not know its public URL. */
function inviteUrl(invite) {
  return new URL(invite.url, location.origin).href;
}

async function loadInvites() {
  const list = document.querySelector('[data-invites]');
  try {
    const { invites } = await api(`${base}/invites`);
    list.replaceChildren(...invites.map((invite) => h('li', {},
      h('div', { class: 'list-main' },
        h('span', { class: 'list-title' }, `${invite.role === 'admin' ? 'Admin' : 'Member'} invite${invite.email ? ` for ${invite.email}` : ''}`),
        h('span', { class: 'list-sub' }, `Created ${formatDate(invite.createdAt)} · expires ${formatDate(invite.expiresAt)}`)),
      h('button', {
        type: 'button',
        class: 'btn btn-danger-ghost btn-sm',
        'aria-label': `Withdraw the ${invite.role} invite created ${formatDate(invite.createdAt)}`,
        onclick: (event) => withdrawInvite(invite, event.currentTarget),
      }, 'Withdraw'))));
  } catch (error) {
    showError(errorBox, error);
  }
}

async function withdrawInvite(invite, button) {
  busy(button, true);
  try {
    await api(`${base}/invites/${encodeURIComponent(invite.id)}`, { method: 'DELETE' });
    toast('Invite withdrawn: its link no longer works');
    loadInvites();
  } catch (error) {
    busy(button, false);
    showError(errorBox, error);
  }
}

async function createInvite(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  showError(errorBox, null);
  try {
    const email = form.elements.email.value.trim();
    const invite = await api(`${base}/invites`, {
      method: 'POST',
      json: { role: form.elements.role.value, ...(email ? { email } : {}) },
    });
    document.querySelector('[data-invite-link]').value = inviteUrl(invite);
    document.querySelector('[data-invite-result]').hidden = false;
    loadInvites();
  } catch (error) {
    showError(errorBox, error);
  } finally {
    busy(submit, false);
  }
}

async function loadKeys() {
  const tbody = document.querySelector('[data-keys]');
  try {
    const keys = (await api(`${base}/api-keys`)).apiKeys;
    if (!keys.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: '4', class: 'empty-inline' }, 'No API keys yet. Create one to call the API from your own code.')));
      return;
    }
    tbody.replaceChildren(...keys.map((key) => h('tr', {},
      h('td', {}, key.name),
      h('td', {}, h('code', {}, `${key.prefix || ''}…`)),
      h('td', {}, key.lastUsedAt ? formatDate(key.lastUsedAt) : 'Never'),
      h('td', { class: 'cell-actions' }, key.revokedAt ? h('span', { class: 'badge' }, `Revoked ${formatDate(key.revokedAt)}`) : h('button', {
        type: 'button',
        class: 'btn btn-danger-ghost btn-sm',
        'aria-label': `Revoke ${key.name}`,
        onclick: (event) => revokeKey(key, event.currentTarget),
      }, 'Revoke')))));
  } catch (error) {
    showError(errorBox, error);
  }
}

async function revokeKey(key, button) {
  if (!confirm(`Revoke "${key.name}"? Requests using it will fail at once.`)) return;
  busy(button, true);
  try {
    await api(`${base}/api-keys/${encodeURIComponent(key.id)}`, { method: 'DELETE' });
    toast('Key revoked');
    loadKeys();
  } catch (error) {
    busy(button, false);
    showPageError(error);
  }
}

async function createKey(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.elements.name.value.trim();
  if (!name) {
    showError(errorBox, new Error('Name the key so you can tell it apart later.'));
    return;
  }
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  showError(errorBox, null);
  try {
    const created = await api(`${base}/api-keys`, { method: 'POST', json: { name } });
    document.querySelector('[data-new-key]').value = created.key;
    document.querySelector('[data-key-result]').hidden = false;
    form.reset();
    loadKeys();
  } catch (error) {
    showError(errorBox, error);
  } finally {
    busy(submit, false);
  }
}

loadMembers();
// Only admins get the invite and API key sections.
if (session.isAdmin) {
  document.querySelector('[data-invite-form]').addEventListener('submit', createInvite);
  document.querySelector('[data-key-form]').addEventListener('submit', createKey);
  loadInvites();
  loadKeys();
}

const passwordForm = document.querySelector('[data-password-form]');
passwordForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const button = passwordForm.querySelector('[data-change-password]');
  busy(button, true);
  showError(errorBox, null);
  try {
    await api('/api/auth/password', {
      method: 'POST',
      json: {
        currentPassword: passwordForm.elements.currentPassword.value,
        newPassword: passwordForm.elements.newPassword.value,
      },
    });
    passwordForm.reset();
    toast('Password changed. Your other sessions are signed out.');
  } catch (error) {
    showError(errorBox, error);
  } finally {
    busy(button, false);
  }
});

document.querySelector('[data-sign-out-others]').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  busy(button, true);
  showError(errorBox, null);
  try {
    const { signedOut } = await api('/api/auth/sign-out-others', { method: 'POST' });
    toast(signedOut === 1 ? 'Signed out 1 other session.' : `Signed out ${signedOut} other sessions.`);
  } catch (error) {
    showError(errorBox, error);
  } finally {
    busy(button, false);
  }
});
