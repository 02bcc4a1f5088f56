(function () {
  // The report's script: draws the lanes (all of them up to ALL_UP_TO stops, else those near
  // the view, as it scrolls) and the details (all, or on a click) from the embedded data, and
  // zooms. The data's layout is documented in tracer/src/report/data.rs.
  var errs = [];
  window.addEventListener('error', function (e) {
    errs.push(String(e.message));
    document.body.dataset.errors = errs.join(' | ');
  });
  document.addEventListener('securitypolicyviolation', function () {
    var n = +(document.body.dataset.cspViolations || 0) + 1;
    document.body.dataset.cspViolations = n;
  });
  var svg = document.getElementById('lanes');
  if (!svg) { document.body.dataset.ready = '1'; return; }
  var D = JSON.parse(document.getElementById('stops-data').textContent);
  var S = D.strings, L = D.lanes, G = D.groups;
  var NS = 'http://www.w3.org/2000/svg';
  var ALL_UP_TO = 2000, ROW = 18, PART = 11, MARGIN = 1500;
  var all = L.length <= ALL_UP_TO;
  var KINDS = ['Pod', 'Container', 'Process'];
  var lw = +svg.dataset.labelW, base = +svg.dataset.scale, range = +svg.dataset.range, zoom = 1;
  var rows = document.getElementById('rows');
  var list = document.getElementById('detail-list');

  function k() { return base * zoom; }
  function X(us) { return lw + us / 1e6 * k(); }
  function W(a, b) { return Math.max(0, (b - a) / 1e6 * k()); }
  function el(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var a in attrs) e.setAttribute(a, attrs[a]);
    if (text != null) e.textContent = text;
    return e;
  }
  function titled(e, text) {
    var t = document.createElementNS(NS, 'title');
    t.textContent = text;
    e.appendChild(t);
    return e;
  }
  function timed(e, t0, t1) {
    e.setAttribute('class', e.getAttribute('class') + ' t');
    e.dataset.t0 = (t0 / 1e6).toFixed(6);
    if (t1 != null) e.dataset.t1 = (t1 / 1e6).toFixed(6);
    return e;
  }
  // RFC 3339 with microseconds, from µs after the first stop.
  function iso(us) {
    var t = D.first_us + us, ms = Math.floor(t / 1000), r = ((t % 1000) + 1000) % 1000;
    return new Date(ms).toISOString().replace('Z', ('00' + r).slice(-3) + 'Z');
  }

  function lane(i) {
    var l = L[i], y = l[0], d = D.diagnoses[l[5]], dur = l[6] / 1000;
    var g = el('g', { 'class': 'lane', 'data-kind': KINDS[l[1]], 'data-stop': i,
      'data-node': S[l[2]], 'data-label': S[l[3]] });
    var label = el('text', { 'class': 'label', x: 14, y: y + 13 }, S[l[3]] + ' ');
    label.appendChild(el('tspan', { 'class': 'node' }, S[l[2]]));
    g.appendChild(label);
    if (l[10]) {
      var a = l[10][0], b = l[10][1];
      g.appendChild(titled(timed(el('rect', { 'class': 'prestop', x: X(a), y: y + 2,
        width: W(a, b), height: ROW - 4 }), a, b), 'preStop hook: ' + ((b - a) / 1e6).toFixed(3) + ' s'));
    }
    var bar = el('rect', { 'class': 'bar', 'data-stop': i, 'data-diagnosis': d[0],
      'data-duration': dur.toFixed(3), x: X(l[7]), y: y + 3, width: W(l[7], l[8]),
      height: ROW - 6, fill: d[1] });
    g.appendChild(titled(timed(bar, l[7], l[8]), S[l[3]] + ' on ' + S[l[2]] + ': ' + d[0] +
      ' in ' + dur.toFixed(3) + ' s' + (l[9] != null ? ' \u2014 ' + S[l[9]] : '')));
    l[11].forEach(function (m) {
      var x = X(m[0]);
      g.appendChild(titled(timed(el('line', { 'class': 'mark', x1: x, x2: x, y1: y + 1,
        y2: y + ROW - 1 }), m[0]), S[m[1]] + ' from ' + S[m[2]] + ': ' + S[m[3]] + ' at ' + iso(m[0])));
    });
    if (l[12] != null) {
      var x = X(l[12]);
      g.appendChild(titled(timed(el('line', { 'class': 'deadline', x1: x, x2: x, y1: y,
        y2: y + ROW }), l[12]), 'grace deadline: SIGKILL at ' + iso(l[12])));
    }
    var py = y + ROW;
    l[13].forEach(function (p) {
      var pd = D.diagnoses[p[1]];
      g.appendChild(el('text', { 'class': 'part-label', x: 28, y: py + 9 }, S[p[0]]));
      g.appendChild(titled(timed(el('rect', { 'class': 'part', x: X(p[2]), y: py + 2,
        width: W(p[2], p[3]), height: PART - 3, fill: pd[1] }), p[2], p[3]), S[p[0]] + ': ' + pd[0]));
      py += PART;
    });
    return g;
  }

  // The first index of `arr` whose y (`at(item)`) is at least `y`.
  function first(arr, y, at) {
    var a = 0, b = arr.length;
    while (a < b) { var m = (a + b) >> 1; if (at(arr[m]) < y) a = m + 1; else b = m; }
    return a;
  }
  var shown = {}, shownGroups = {};
  function sync(items, shownMap, i0, i1, make) {
    for (var key in shownMap) {
      var n = +key;
      if (n < i0 || n >= i1) { rows.removeChild(shownMap[key]); delete shownMap[key]; }
    }
    for (var i = i0; i < i1; i++) {
      if (!shownMap[i]) { shownMap[i] = make(i); rows.appendChild(shownMap[i]); }
    }
  }
  // The lanes near the view; at load, at least the first screens of the timeline, wherever
  // the page is scrolled, so that they are there when it comes into view.
  function render(atLoad) {
    var top = -Infinity, bottom = Infinity;
    if (!all) {
      var r = svg.getBoundingClientRect();
      top = -r.top - MARGIN;
      bottom = -r.top + window.innerHeight + MARGIN;
      if (atLoad) { top = Math.min(top, 0); bottom = Math.max(bottom, 2 * MARGIN); }
    }
    var y = function (l) { return l[0]; };
    sync(L, shown, Math.max(0, first(L, top, y) - 1), first(L, bottom, y), lane);
    sync(G, shownGroups, Math.max(0, first(G, top, y) - 1), first(G, bottom, y), function (j) {
      return el('text', { 'class': 'group', x: 4, y: G[j][0] + 15 }, S[G[j][1]]);
    });
  }
  var pending = false;
  window.addEventListener('scroll', function () {
    if (all || pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; render(); });
  });

  function cell(tr, text, tag) {
    var c = document.createElement(tag || 'td');
    c.textContent = text;
    tr.appendChild(c);
    return c;
  }
  function detail(i) {
    var l = L[i], d = D.diagnoses[l[5]];
    var box = document.createElement('details');
    box.id = 'stop-' + i;
    var sum = document.createElement('summary');
    var sw = document.createElement('i');
    sw.className = 'sw';
    sw.style.background = d[1];
    sum.appendChild(sw);
    var b = document.createElement('b');
    b.textContent = S[l[3]];
    sum.appendChild(b);
    sum.appendChild(document.createTextNode(' ' + S[l[4]] + ' on ' + S[l[2]] + ' \u2014 ' + d[0] +
      ' in ' + (l[6] / 1000).toFixed(3) + ' s'));
    box.appendChild(sum);
    if (l[9] != null) {
      var hint = document.createElement('p');
      hint.className = 'hint';
      hint.textContent = S[l[9]];
      box.appendChild(hint);
    }
    var table = document.createElement('table');
    var head = document.createElement('tr');
    ['process', 'signal', 'from', 'kernel', 'disposition', 'at'].forEach(function (h) { cell(head, h, 'th'); });
    table.appendChild(head);
    l[14].forEach(function (p) {
      p[1].forEach(function (s) {
        var tr = document.createElement('tr');
        cell(tr, S[p[0]]); cell(tr, S[s[0]]); cell(tr, S[s[1]] + ' (' + S[s[2]] + ')');
        cell(tr, S[s[3]]); cell(tr, S[s[4]]); cell(tr, iso(s[5]));
        table.appendChild(tr);
      });
      var tr = document.createElement('tr');
      tr.className = 'exit';
      cell(tr, S[p[0]]);
      cell(tr, S[p[2]] + '; forwarded ' + p[3] + ' signal(s); dispositions ' + S[p[4]]).colSpan = 5;
      table.appendChild(tr);
    });
    box.appendChild(table);
    if (l[15]) {
      var pre = document.createElement('p'), h = l[15];
      pre.textContent = 'preStop hook: ' + S[h[0]] + ' (' + S[h[1]] + ') from ' + iso(h[2]) +
        (h[3] >= 0 ? ', ' + (h[3] / 1000).toFixed(3) + ' s' : ', still running at the end');
      box.appendChild(pre);
    }
    return box;
  }

  function layout() {
    svg.setAttribute('width', Math.ceil(lw + range * k() + 20));
    svg.querySelectorAll('.t').forEach(function (e) {
      var t0 = +e.dataset.t0, x = lw + t0 * k();
      if (e.tagName === 'line') { e.setAttribute('x1', x); e.setAttribute('x2', x); }
      else if (e.tagName === 'g') {
        var ln = e.querySelector('line'), tx = e.querySelector('text');
        ln.setAttribute('x1', x); ln.setAttribute('x2', x); tx.setAttribute('x', x);
      } else { e.setAttribute('x', x); e.setAttribute('width', Math.max(0, (+e.dataset.t1 - t0) * k())); }
    });
    document.getElementById('scale').textContent = ' zoom \u00d7' + zoom + ' ';
  }
  document.getElementById('zoom-in').addEventListener('click', function () { zoom *= 2; layout(); });
  document.getElementById('zoom-out').addEventListener('click', function () { zoom = Math.max(1, zoom / 2); layout(); });
  svg.addEventListener('click', function (e) {
    var bar = e.target.closest('.bar');
    if (!bar) return;
    var i = +bar.dataset.stop, box = document.getElementById('stop-' + i);
    if (!box) { box = detail(i); list.appendChild(box); }
    box.open = true;
    box.scrollIntoView({ block: 'center' });
  });

  render(true);
  if (all) {
    for (var i = 0; i < L.length; i++) list.appendChild(detail(i));
  } else {
    document.getElementById('details-note').textContent = L.length +
      ' stops: lanes are drawn as they come into view; click a bar for its details.';
  }
  document.getElementById('scale').textContent = ' zoom \u00d71 ';
  document.body.dataset.stops = L.length;
  document.body.dataset.ready = '1';
})();
