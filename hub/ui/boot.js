// Loads the dashboard (app.js and the modules it imports). A module that fails to load (the
// hub restarting, or a network change aborting the request) leaves a page that can do nothing,
// so the page is loaded again after a pause that grows with each failure in a row. The count
// rides in this history entry's state (it survives a reload; no storage is used).
const failures = (history.state && history.state.bootFailures) || 0;

import('./app.js').then(() => {
  if (failures) history.replaceState(null, '', location.href);
}, (e) => {
  history.replaceState({ bootFailures: failures + 1 }, '', location.href);
  const wait = Math.min(30000, 500 * 2 ** failures);
  const main = document.getElementById('main');
  const p = document.createElement('p');
  p.className = 'note error';
  p.setAttribute('role', 'alert');
  p.textContent = `The dashboard could not be loaded (${e.message}); trying again in ${Math.round(wait / 1000)} s…`;
  main.replaceChildren(p);
  setTimeout(() => location.reload(), wait);
});
