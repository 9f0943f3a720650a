// Usage and billing: this month's usage against the plan, per day, and the Polar
// subscription with a checkout button when the instance bills through Polar.
import { api, boot, busy, h, showError } from './app.js';

const session = await boot();
const errorBox = document.querySelector('[data-form-error]');
const $ = (selector) => document.querySelector(selector);
const number = new Intl.NumberFormat();
const limitText = (limit) => (limit === null || limit === undefined ? 'Unlimited' : number.format(limit));
const dayLabel = (date) => new Date(`${date}T00:00:00Z`).toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const cents = (amount) => new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' }).format(amount / 100);

function showUsage(usage) {
  const end = new Date(usage.period.end);
  const lastDay = new Date(end.getTime() - 1);
  $('[data-period]').textContent = `${dayLabel(usage.period.start.slice(0, 10))} – ${dayLabel(lastDay.toISOString().slice(0, 10))} (UTC)`;

  const { used, limit } = usage.characters;
  const bar = $('[data-characters-bar]');
  $('[data-characters-text]').textContent = limit === null
    ? `${number.format(used)} used`
    : `${number.format(used)} of ${number.format(limit)}`;
  const share = limit ? Math.min(1, used / limit) : 0;
  $('[data-characters-fill]').style.width = `${(share * 100).toFixed(1)}%`;
  bar.classList.toggle('is-full', limit !== null && used >= limit);
  if (limit !== null) {
    bar.setAttribute('aria-valuemax', String(limit));
    bar.setAttribute('aria-valuenow', String(Math.min(used, limit)));
  }
  $('[data-reset]').textContent = `Usage starts again on ${end.toLocaleDateString(undefined, { dateStyle: 'long', timeZone: 'UTC' })}.`;

  const chart = $('[data-day-chart]');
  const busiest = Math.max(1, ...usage.daily.map((day) => day.characters));
  chart.replaceChildren(...usage.daily.map((day) => {
    const label = `${dayLabel(day.date)}: ${number.format(day.characters)} characters, ${day.voiceCreations} voices created`;
    return h('div', { class: 'day-bar', title: label },
      h('span', { class: 'day-bar-fill', style: `height: ${((day.characters / busiest) * 100).toFixed(1)}%` }),
      h('span', { class: 'visually-hidden' }, label));
  }));
  chart.setAttribute('aria-label', `Characters per day, most on one day: ${number.format(busiest)}`);
  chart.setAttribute('aria-busy', 'false');

  $('[data-limit-characters]').textContent = limitText(limit);
  $('[data-limit-voices]').textContent = `${number.format(usage.voices.used)} of ${limitText(usage.voices.limit).toLowerCase()}`;
  $('[data-limit-jobs]').textContent = limitText(usage.concurrentJobs.limit);
}

function showStatus(status) {
  $('[data-billing-disabled]').hidden = status.billingEnabled;
  $('[data-billing-enabled]').hidden = !status.billingEnabled;
  if (!status.billingEnabled) return;
  const badge = $('[data-subscription-badge]');
  badge.hidden = false;
  badge.textContent = status.hasActiveSubscription ? 'Active' : 'No subscription';
  badge.className = `badge ${status.hasActiveSubscription ? 'badge-succeeded' : 'badge-failed'}`;
  $('[data-estimated-cost]').textContent = cents(status.estimatedCostCents);
  $('[data-customer-id]').textContent = status.customerId || '–';
  $('[data-checkout-hint]').hidden = status.hasActiveSubscription;
  $('[data-checkout]').hidden = status.hasActiveSubscription || !session.isAdmin;
}

$('[data-checkout]').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  busy(button, true);
  try {
    const checkout = await api('/api/billing/checkout', { method: 'POST' });
    window.location.assign(checkout.url);
  } catch (error) {
    busy(button, false);
    showError(errorBox, error);
  }
});

try {
  const [usage, status] = await Promise.all([api('/api/usage'), api('/api/billing/status')]);
  showUsage(usage);
  showStatus(status);
} catch (error) {
  showError(errorBox, error);
}
