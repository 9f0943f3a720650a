// Accepting an invitation: joins the organization (which becomes the session's active
// one), then opens the dashboard.
import { api, busy, showError, signInUrl } from './app.js';

const button = document.querySelector('[data-accept-invite]');
const errorBox = document.querySelector('[data-form-error]');

button.addEventListener('click', async () => {
  showError(errorBox, null);
  busy(button, true);
  try {
    await api(`/api/invites/${encodeURIComponent(button.dataset.acceptInvite)}/accept`, { method: 'POST' });
    location.assign('/');
  } catch (error) {
    busy(button, false);
    if (error.status === 401) {
      location.assign(signInUrl());
      return;
    }
    showError(errorBox, error.status === 404
      ? new Error('This invitation is no longer valid. Ask an admin of the organization for a new link.')
      : error);
  }
});
