// A list that renders only the rows in view (fixed row height), so 5,000 nodes cost as much as
// the 20 on screen. The box scrolls by itself; rows are absolutely placed in a tall spacer.
import { h } from './dom.js';

export function vlist({ rowHeight, row, label, empty = 'Nothing to show.' }) {
  const spacer = h('div', { class: 'vspacer' });
  const box = h('div', { class: 'vlist', role: 'list', 'aria-label': label }, spacer);
  const blank = h('p', { class: 'muted' }, empty);
  let items = [];
  let drawn = '';

  function draw(force) {
    const top = box.scrollTop;
    const height = box.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / rowHeight) - 5);
    const last = Math.min(items.length, Math.ceil((top + height) / rowHeight) + 5);
    const key = `${first}:${last}:${items.length}`;
    if (!force && key === drawn) return;
    drawn = key;
    spacer.style.height = `${items.length * rowHeight}px`;
    const rows = [];
    for (let i = first; i < last; i++) {
      const el = row(items[i]);
      el.classList.add('vrow');
      el.setAttribute('role', 'listitem');
      el.style.transform = `translateY(${i * rowHeight}px)`;
      el.style.height = `${rowHeight}px`;
      rows.push(el);
    }
    // keyboard users keep their place when rows are redrawn under them
    const focused = spacer.contains(document.activeElement) && document.activeElement.getAttribute('href');
    spacer.replaceChildren(...rows);
    if (focused) {
      const again = spacer.querySelector(`a[href="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
    blank.hidden = items.length > 0;
  }

  let queued = false;
  box.addEventListener('scroll', () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; draw(false); });
  });

  return {
    el: h('div', { class: 'vwrap' }, blank, box),
    update(list) { items = list; draw(true); },
  };
}
