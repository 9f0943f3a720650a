// Sign-in and sign-up forms: post JSON to the auth API and show its error messages. Signing
// up creates the account without a session, so the page then signs in with the same
// credentials.
import { api, busy, showError } from './app.js';

const form = document.querySelector('[data-auth-form]');
const errorBox = form.querySelector('[data-form-error]');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showError(errorBox, null);
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    showError(errorBox, new Error('Enter your email and password.'));
    (email ? form.elements.password : form.elements.email).focus();
    return;
  }
  const credentials = { email, password };
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  try {
    if (form.dataset.authForm === 'sign-up') {
      await api('/api/auth/sign-up', { method: 'POST', json: credentials });
    }
    await api('/api/auth/sign-in', { method: 'POST', json: credentials });
    location.assign(form.dataset.next || '/');
  } catch (error) {
    busy(submit, false);
    showError(errorBox, form.dataset.authForm === 'sign-up' && error.code === 'INVALID_CREDENTIALS'
      ? new Error('This email already has an account with another password. Sign in instead, or use another email.')
      : error);
    errorBox.focus?.();
  }
});
