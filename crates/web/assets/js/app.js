// Shared by every page: calling the JSON API, the signed-in shell (user, organization
// switcher, navigation, sign-out) and small DOM helpers.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const FALLBACK_MESSAGES = {
  401: 'Your session has ended. Sign in again to continue.',
  403: 'Only an admin of this organization can do that.',
  404: 'That was not found. It may have been deleted.',
  413: 'That file is too large.',
  429: 'Too many attempts. Wait a moment and try again.',
};

/** Calls the API with the session cookie; throws ApiError with the server's message. */
export async function api(path, { method = 'GET', json, body, headers = {} } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'Could not reach the server. Check your connection and try again.');
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!response.ok) {
    const error = data && data.error;
    if (error && error.code === 'UNAUTHENTICATED' && document.querySelector('[data-app]')) {
      // The session ended while the page was open: sign in again and come back.
      location.assign(signInUrl());
    }
    const retry = response.headers.get('Retry-After');
    let message = (error && error.message && sentence(error.message)) || FALLBACK_MESSAGES[response.status]
      || `Something went wrong (${response.status}). Try again in a moment.`;
    if (response.status === 429 && retry && !error) message += ` Try again in ${retry} seconds.`;
    throw new ApiError(response.status, (error && error.code) || `HTTP_${response.status}`, message);
  }
  return data;
}

/** Dates the API writes (`2026-01-31`, or RFC 3339 with a time). */
const ISO_DATE = /\b(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?\b/g;

/**
 * The API's terse messages ("the quota resets on 2026-01-01") as a sentence a person
 * reads: a capital first letter, dates in the reader's locale, a full stop.
 */
export function sentence(text) {
  let words = String(text).trim().replace(ISO_DATE, (match, day, time) => (time
    ? formatDate(match)
    : new Date(`${day}T00:00:00Z`).toLocaleDateString(undefined, { dateStyle: 'long', timeZone: 'UTC' })));
  if (!words) return words;
  words = words.charAt(0).toUpperCase() + words.slice(1);
  return /[.!?…]$/.test(words) ? words : `${words}.`;
}

/** Why a generation gave no audio, as the text-to-speech and generation pages say it. */
export function failureMessage(generation) {
  if (generation.status === 'cancelled') return 'The generation was cancelled.';
  const reason = generation.failureReason ? ` ${sentence(generation.failureReason)}` : '';
  return `The generation failed.${reason}`;
}

/** Where a paged listing (`{ <items>, total, limit, offset }`) stands. */
export function pageInfo(data, count) {
  const { total, offset, limit } = data;
  return { offset, limit, hasPrev: offset > 0, hasNext: offset + count < total, page: Math.floor(offset / limit) + 1, pages: Math.max(1, Math.ceil(total / limit)) };
}

export function signInUrl() {
  return `/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`;
}

/**
 * Starts a signed-in page. The server rendered it for a signed-in user (sending anyone
 * else to sign in) and put who is looking on the shell; returns that session:
 * `{ user: { id, email }, activeOrg: { id, name, role } | null, isAdmin }`.
 */
export function boot() {
  wireShell();
  const shell = document.querySelector('[data-app]').dataset;
  const activeOrg = shell.orgId ? { id: shell.orgId, name: shell.orgName, role: shell.role } : null;
  document.body.dataset.ready = 'true';
  return { user: { id: shell.userId, email: shell.userEmail }, activeOrg, isAdmin: shell.role === 'admin' };
}

/**
 * The menu drawer of narrow screens: the button opens and closes it, as do Escape and a tap
 * anywhere outside it; focus moves into it when it opens.
 */
function wireMenu() {
  const shell = document.querySelector('[data-app]');
  const toggle = document.querySelector('[data-menu-toggle]');
  if (!toggle || !shell) return;
  const sidebar = document.querySelector('#sidebar');
  const isOpen = () => shell.classList.contains('is-menu-open');
  function setOpen(open, { focusToggle = false } = {}) {
    shell.classList.toggle('is-menu-open', open);
    toggle.setAttribute('aria-expanded', String(open));
    toggle.querySelector('.visually-hidden').textContent = open ? 'Close menu' : 'Menu';
    if (open) sidebar.querySelector('a[aria-current="page"], a[href]').focus({ preventScroll: true });
    else if (focusToggle) toggle.focus();
  }
  toggle.addEventListener('click', () => setOpen(!isOpen()));
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && isOpen()) setOpen(false, { focusToggle: true });
  });
  document.addEventListener('click', (event) => {
    if (isOpen() && !sidebar.contains(event.target) && !toggle.contains(event.target)) setOpen(false);
  });
}

function wireShell() {
  wireMenu();
  const switcher = document.querySelector('[data-org-switcher]');
  switcher.addEventListener('change', async () => {
    const value = switcher.value;
    if (value === '__new') {
      location.assign('/?new-org=1');
      return;
    }
    if (!value) return;
    switcher.disabled = true;
    try {
      await api(`/api/orgs/${encodeURIComponent(value)}/activate`, { method: 'POST' });
      location.reload();
    } catch (error) {
      switcher.disabled = false;
      showPageError(error);
    }
  });
  const signOut = document.querySelector('[data-sign-out]');
  if (signOut) {
    signOut.addEventListener('click', async () => {
      busy(signOut, true);
      try { await api('/api/auth/sign-out', { method: 'POST' }); } catch { /* signed out either way */ }
      location.assign('/sign-in');
    });
  }
}

/** Shows `error` in the page's alert area (or `target`), or hides it when null. */
export function showError(target, error) {
  if (!target) return;
  if (!error) {
    target.hidden = true;
    target.textContent = '';
    return;
  }
  target.textContent = error.message || String(error);
  target.hidden = false;
  target.scrollIntoView({ block: 'nearest' });
}

export function showPageError(error) {
  showError(document.querySelector('[data-page-error]'), error);
}

let toastTimer;
export function toast(message) {
  const el = document.querySelector('[data-toast]');
  if (!el) return;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3000);
}

export function busy(button, on) {
  button.disabled = on;
  button.classList.toggle('is-busy', on);
  button.setAttribute('aria-busy', String(on));
}

/** Creates an element: `h('a', { href: '/x', class: 'link' }, 'text', child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

export function formatDate(value) {
  if (value === null || value === undefined || value === '') return '–';
  const date = typeof value === 'number' ? new Date(value) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function formatSeconds(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '0:00';
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
}

/**
 * The length in seconds of the WAV at `url`, read from its header alone (a range request
 * for the first bytes): the data chunk's size over the format chunk's byte rate.
 */
export async function wavSeconds(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Range: 'bytes=0-255' } });
  if (!response.ok) return null;
  const view = new DataView(await response.arrayBuffer());
  const tag = (at) => String.fromCharCode(...new Uint8Array(view.buffer, at, 4));
  if (view.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
  let byteRate = null;
  for (let at = 12; at + 8 <= view.byteLength;) {
    const size = view.getUint32(at + 4, true);
    if (tag(at) === 'fmt ' && at + 16 <= view.byteLength) byteRate = view.getUint32(at + 16, true);
    if (tag(at) === 'data') return byteRate ? size / byteRate : null;
    at += 8 + size + (size % 2);
  }
  return null;
}

export function statusBadge(generation) {
  const { status } = generation;
  return h('span', { class: `badge badge-${status}` }, status.charAt(0).toUpperCase() + status.slice(1));
}

export function categoryLabel(value) {
  const words = String(value || 'GENERAL').replace(/_/g, ' ').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** One shared <audio> for sample previews; returns a toggle function for a button. */
export function samplePlayer(audio) {
  let current = null;
  audio.addEventListener('ended', () => setPlaying(current, false));
  function setPlaying(button, playing) {
    if (!button) return;
    button.setAttribute('aria-pressed', String(playing));
    button.classList.toggle('is-playing', playing);
  }
  return async function toggle(button, url) {
    if (current === button && !audio.paused) {
      audio.pause();
      setPlaying(button, false);
      return;
    }
    setPlaying(current, false);
    current = button;
    audio.src = url;
    setPlaying(button, true);
    try {
      await audio.play();
    } catch {
      setPlaying(button, false);
      toast('This sample could not be played.');
    }
  };
}

export function copyButtons(root = document) {
  root.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-copy]');
    if (!button) return;
    const input = document.querySelector(button.dataset.copy);
    if (!input) return;
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      document.execCommand('copy');
    }
    toast('Copied to the clipboard');
  });
}

/** Wires a `[data-pager]` nav to `load(offset)`; returns a function that shows a page's info. */
export function pager(nav, load) {
  const prev = nav.querySelector('[data-page-prev]');
  const next = nav.querySelector('[data-page-next]');
  const label = nav.querySelector('[data-page-label]');
  let info = null;
  prev.addEventListener('click', () => info && load(Math.max(0, info.offset - info.limit)));
  next.addEventListener('click', () => info && load(info.offset + info.limit));
  return function show(pageInfo) {
    info = pageInfo;
    nav.hidden = !pageInfo.hasPrev && !pageInfo.hasNext;
    prev.disabled = !pageInfo.hasPrev;
    next.disabled = !pageInfo.hasNext;
    label.textContent = `Page ${pageInfo.page} of ${pageInfo.pages}`;
  };
}

/** Every voice the organization can use (system and its own), following pages. */
export async function allVoices() {
  const voices = [];
  for (let offset = 0; offset < 1000; offset += 100) {
    const data = await api(`/api/voices?limit=100&offset=${offset}`);
    voices.push(...data.voices);
    if (data.voices.length < 100 || voices.length >= data.total) break;
  }
  return voices;
}

export function isCustom(voice) {
  return voice.variant === 'CUSTOM';
}
