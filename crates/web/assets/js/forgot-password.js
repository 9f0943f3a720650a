// "Forgot password?": asks for a reset link by email. The answer is the same whether or
// not the email has an account.
import { api, busy, showError } from './app.js';

const form = document.querySelector('[data-forgot-form]');
const errorBox = form.querySelector('[data-form-error]');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(errorBox, null);
  const email = form.elements.email.value.trim();
  if (!email) {
    showError(errorBox, new Error('Enter the email of your account.'));
    form.elements.email.focus();
    return;
  }
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  try {
    const { message } = await api('/api/auth/forgot-password', { method: 'POST', json: { email } });
    form.hidden = true;
    const done = document.querySelector('[data-forgot-done]');
    done.textContent = message;
    done.hidden = false;
  } catch (error) {
    busy(submit, false);
    showError(errorBox, error);
  }
});
