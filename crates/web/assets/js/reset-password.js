// The one-time password reset link: sets the new password with the link's token.
import { api, busy, showError } from './app.js';

const form = document.querySelector('[data-reset-form]');
const errorBox = form.querySelector('[data-form-error]');
const token = new URLSearchParams(location.search).get('token') || '';

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(errorBox, null);
  const newPassword = form.elements.newPassword.value;
  if (newPassword.length < 8) {
    showError(errorBox, new Error('Choose a password of at least 8 characters.'));
    form.elements.newPassword.focus();
    return;
  }
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  try {
    await api('/api/auth/reset-password', { method: 'POST', json: { token, newPassword } });
    form.hidden = true;
    document.querySelector('[data-reset-done]').hidden = false;
  } catch (error) {
    busy(submit, false);
    showError(errorBox, error);
  }
});
