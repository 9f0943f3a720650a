// Sign-in and sign-up forms: post JSON to the auth API and show its error messages.
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
  const payload = { email, password };
  if (form.elements.name && form.elements.name.value.trim()) payload.name = form.elements.name.value.trim();
  const submit = form.querySelector('[type="submit"]');
  busy(submit, true);
  try {
    await api(form.getAttribute('action'), { method: 'POST', json: payload });
    location.assign(form.dataset.next || '/');
  } catch (error) {
    busy(submit, false);
    showError(errorBox, error);
    errorBox.focus?.();
  }
});
