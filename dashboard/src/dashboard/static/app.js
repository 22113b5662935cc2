// Gateway dashboard: local times, copy/reveal buttons, code tabs and live updates by polling.
(function () {
  'use strict';

  var body = document.body;
  var POLL_MS = Math.max(parseInt(body.getAttribute('data-poll-interval'), 10) || 4000, 1000);
  var LOGIN_URL = body.getAttribute('data-login-url') || '/login';
  var timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  // Tables get a compact form: no year when it is this year's.
  var now = new Date();
  var thisYear = now.getFullYear();
  var timeOnlyFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var compactFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  var compactYearFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  // Show every <time datetime="..."> in the browser's locale and time zone.
  function formatTimes(root) {
    var nodes = (root || document).querySelectorAll('time[datetime]');
    for (var i = 0; i < nodes.length; i++) {
      var d = new Date(nodes[i].getAttribute('datetime'));
      if (!isNaN(d.getTime())) {
        var inTable = nodes[i].closest('td') !== null;
        var format = !inTable ? timeFormat
          : d.toDateString() === now.toDateString() ? timeOnlyFormat
          : d.getFullYear() === thisYear ? compactFormat : compactYearFormat;
        nodes[i].textContent = format.format(d);
        nodes[i].title = d.toISOString();
      }
    }
  }

  function copyText(text, button) {
    function done() {
      button.classList.add('copied');
      var old = button.getAttribute('data-label');
      if (button.classList.contains('copy-code')) { button.textContent = 'Copied'; }
      setTimeout(function () {
        button.classList.remove('copied');
        if (button.classList.contains('copy-code')) { button.textContent = old || 'Copy'; }
      }, 1400);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'sr-only';
      document.body.appendChild(area);
      area.select();
      try { document.execCommand('copy'); done(); } catch (e) { /* nothing to copy with */ }
      document.body.removeChild(area);
    }
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button');
    if (!button) { return; }
    if (button.hasAttribute('data-copy')) {
      copyText(button.getAttribute('data-copy'), button);
    } else if (button.hasAttribute('data-copy-code')) {
      var code = button.parentNode.querySelector('pre');
      if (code) { copyText(code.textContent, button); }
    } else if (button.hasAttribute('data-reveal')) {
      var target = document.getElementById(button.getAttribute('data-reveal'));
      if (target) {
        var masked = target.classList.toggle('masked');
        button.textContent = masked ? 'Reveal' : 'Hide';
      }
    } else if (button.hasAttribute('data-tab')) {
      var tabs = button.closest('.code-tabs');
      var tabButtons = tabs.querySelectorAll('[data-tab]');
      for (var i = 0; i < tabButtons.length; i++) {
        var on = tabButtons[i] === button;
        tabButtons[i].classList.toggle('active', on);
        tabButtons[i].setAttribute('aria-selected', on ? 'true' : 'false');
        var pane = document.getElementById(tabButtons[i].getAttribute('data-tab'));
        if (pane) { pane.hidden = !on; }
      }
    }
  });

  // --- live updates: poll a small JSON endpoint of the dashboard; a missed update is harmless ---

  function setIndicator(online) {
    var nodes = document.querySelectorAll('[data-live-indicator]');
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].classList.toggle('offline', !online);
      nodes[i].lastChild.textContent = online ? 'Live' : 'Reconnecting…';
    }
  }

  function poll(url, apply) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
        .then(function (response) {
          if (response.status === 401) {
            window.location.href = LOGIN_URL + '?expired=1&next=' + encodeURIComponent(window.location.pathname + window.location.search);
            return null;
          }
          if (!response.ok) { throw new Error('HTTP ' + response.status); }
          return response.json();
        })
        .then(function (data) { if (data) { apply(data); setIndicator(true); } })
        .catch(function () { setIndicator(false); })
        .then(function () { busy = false; });
    }
    setInterval(tick, POLL_MS);
    document.addEventListener('visibilitychange', function () { if (!document.hidden) { tick(); } });
  }

  function rowIds(tbody) {
    var ids = {};
    var rows = tbody.querySelectorAll('tr[data-payment-id], tr[data-webhook-id]');
    for (var i = 0; i < rows.length; i++) {
      var id = rows[i].getAttribute('data-payment-id') || rows[i].getAttribute('data-webhook-id');
      ids[id] = (rows[i].getAttribute('data-status') || '') + '|' + rows[i].textContent.replace(/\s+/g, ' ');
    }
    return ids;
  }

  // Replace a table body with fresh server-rendered rows, highlighting new and changed rows.
  function swapRows(tbody, html) {
    var holder = document.createElement('tbody');
    holder.innerHTML = html;
    formatTimes(holder);
    if (holder.innerHTML.replace(/\s+/g, ' ') === tbody.innerHTML.replace(/\s+/g, ' ')) { return; }
    var before = rowIds(tbody);
    var active = document.activeElement && tbody.contains(document.activeElement);
    if (active) { return; } // do not yank a row out from under a keyboard user
    tbody.innerHTML = holder.innerHTML;
    var after = tbody.querySelectorAll('tr[data-payment-id], tr[data-webhook-id]');
    for (var i = 0; i < after.length; i++) {
      var id = after[i].getAttribute('data-payment-id') || after[i].getAttribute('data-webhook-id');
      var sig = (after[i].getAttribute('data-status') || '') + '|' + after[i].textContent.replace(/\s+/g, ' ');
      if (before[id] !== sig) { after[i].classList.add('row-new'); }
    }
  }

  var liveRows = document.querySelectorAll('tbody[data-live-rows]');
  Array.prototype.forEach.call(liveRows, function (tbody) {
    var card = tbody.closest('.card') || document;
    poll(tbody.getAttribute('data-live-rows'), function (data) {
      swapRows(tbody, data.rows);
      var summary = card.querySelector('[data-live-summary]');
      if (summary && typeof data.summary === 'string') { summary.textContent = data.summary.trim(); }
    });
  });

  var overview = document.querySelector('[data-live-overview]');
  if (overview) {
    poll(overview.getAttribute('data-live-overview'), function (data) {
      var fields = overview.querySelectorAll('[data-live-field]');
      for (var i = 0; i < fields.length; i++) {
        var name = fields[i].getAttribute('data-live-field');
        if (!(name in data)) { continue; }
        // A compact figure (₹1,002.8 Cr) carries the exact one on hover.
        if (typeof data[name + '_title'] === 'string' && fields[i].getAttribute('title') !== data[name + '_title']) {
          fields[i].setAttribute('title', data[name + '_title']);
        }
        if (name === 'rows') {
          swapRows(fields[i], data.rows);
        } else if (fields[i].hasAttribute('data-live-html')) {
          if (fields[i].innerHTML !== data[name]) { fields[i].innerHTML = data[name]; }
        } else if (fields[i].textContent !== data[name]) {
          fields[i].textContent = data[name];
          fields[i].classList.add('changed');
          (function (node) { setTimeout(function () { node.classList.remove('changed'); }, 1500); })(fields[i]);
        }
      }
    });
  }

  // A payment still at the bank: reload until it is final (nothing on the page can be lost yet).
  if (document.querySelector('[data-refresh-while-pending]')) {
    setInterval(function () { if (!document.hidden) { window.location.reload(); } }, Math.min(POLL_MS, 3000));
  }

  formatTimes(document);
})();
