/** What the dashboard shows instead of a page when the collector wants its read token. */
import { h } from '../dom.js';

export function tokenForm(refused: boolean, onToken: (token: string) => void): HTMLElement {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', 'aria-label': 'read token', required: true });
  const form = h(
    'form',
    { class: 'token-form empty' },
    h('strong', {}, refused ? 'That read token was not accepted' : 'This collector needs its read token'),
    h('p', {}, 'It was started with --read-token. The token is kept in this tab only (its session storage), never in the address.'),
    input,
    h('button', { type: 'submit' }, 'Open'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (input.value !== '') onToken(input.value);
  });
  queueMicrotask(() => input.focus());
  return form;
}
