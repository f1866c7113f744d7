// Loads the dashboard (app.js and the modules it imports). A module that fails to load (the
// hub restarting, or a network change aborting the request) leaves a page that can do nothing,
// so the page is loaded again after a pause that grows with each failure in a row (the count
// is kept in sessionStorage: a number, never a credential).
const KEY = 'drover.bootFailures';

import('./app.js').then(() => {
  sessionStorage.removeItem(KEY);
}, (e) => {
  const n = Number(sessionStorage.getItem(KEY)) || 0;
  sessionStorage.setItem(KEY, String(n + 1));
  const wait = Math.min(30000, 500 * 2 ** n);
  const main = document.getElementById('main');
  const p = document.createElement('p');
  p.className = 'note error';
  p.setAttribute('role', 'alert');
  p.textContent = `The dashboard could not be loaded (${e.message}); trying again in ${Math.round(wait / 1000)} s…`;
  main.replaceChildren(p);
  setTimeout(() => location.reload(), wait);
});
