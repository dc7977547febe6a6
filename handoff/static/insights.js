/* The insights page: GET /api/insights, rendered as charts (Chart.js) and tables.
   Only for supervisors and admins: the service answers 403 to agents and 401 when signed out. */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const COLOURS = ['#1d4ed8', '#b45309', '#15803d', '#7c3aed', '#be123c', '#0e7490', '#4d7c0f', '#a21caf',
                   '#c2410c', '#334155', '#0f766e'];
  const charts = {};
  // The customer backend's kinds of promise (actions/backend/base.py Promise.kind).
  const PROMISE_KINDS = { replacement: 'Replacement', refund: 'Refund', return: 'Return', redelivery: 'Resend',
                          callback: 'Call back', privacy: 'Erasure (privacy)', goodwill: 'Goodwill gesture' };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === null || value === undefined) return;
      if (key === 'text') node.textContent = value; else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => child && node.appendChild(child));
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '–';
    const s = Math.round(seconds);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(s / 3600) + ' h ' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + ' min';
  }

  function minutes(seconds) {
    return seconds >= 3600 ? (seconds / 3600) + ' h' : (seconds / 60) + ' min';
  }

  function query() {
    const params = new URLSearchParams({ period: $('period').value });
    if ($('language').value) params.set('language', $('language').value);
    if ($('channel').value) params.set('channel', $('channel').value);
    return params.toString();
  }

  function fillSelect(select, values) {
    const current = select.value;
    Array.from(select.options).slice(1).forEach((option) => option.remove());
    values.filter((v) => v && v !== 'unknown').forEach((value) => select.appendChild(el('option', { value, text: value })));
    select.value = values.includes(current) ? current : '';
  }

  function chart(id, config) {
    if (!window.Chart) {  // chart.js not installed on this server: the tables still tell it all
      const canvas = $(id);
      if (canvas) canvas.replaceWith(el('p', { class: 'muted', text: 'Charts unavailable: chart.js is not installed on the server.' }));
      return;
    }
    if (charts[id]) charts[id].destroy();
    charts[id] = new window.Chart($(id), config);
    $(id).dataset.rendered = 'true';
  }

  function render(report) {
    const totals = report.totals;
    $('period-label').textContent = report.period.from + ' – ' + report.period.to + ' (compared with ' +
      report.previous_period.from + ' – ' + report.previous_period.to + ')';
    $('kpi-contacts').textContent = totals.contacts;
    $('kpi-previous').textContent = 'previous period ' + totals.previous;
    $('kpi-solved').textContent = totals.solved;
    $('kpi-handed').textContent = totals.handed;
    $('kpi-abandoned').textContent = totals.abandoned;
    $('kpi-repeat').textContent = totals.repeat;
    const wait = report.waiting.wait_for_person;
    $('kpi-wait').textContent = duration(wait.median_seconds);
    $('kpi-wait-p90').textContent = '90th percentile ' + duration(wait.p90_seconds);
    fillSelect($('language'), report.available.languages);
    fillSelect($('channel'), report.available.channels);
    $('csv').setAttribute('href', '/api/insights.csv?' + query());

    const topics = report.topics.filter((t) => t.contacts > 0);
    const names = Object.fromEntries(report.topics.map((t) => [t.topic, t.name]));
    chart('chart-daily', {
      type: 'bar',
      data: {
        labels: report.daily.map((d) => d.day.slice(5)),
        datasets: topics.map((t, i) => ({ label: t.name, backgroundColor: COLOURS[i % COLOURS.length],
                                          data: report.daily.map((d) => d.topics[t.topic] || 0) })),
      },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { position: 'bottom' } },
                 scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
    chart('chart-outcomes', {
      type: 'bar',
      data: {
        labels: topics.map((t) => t.name),
        datasets: [
          { label: 'solved by the assistant', backgroundColor: '#15803d', data: topics.map((t) => t.solved) },
          { label: 'handed to a person', backgroundColor: '#1d4ed8', data: topics.map((t) => t.handed) },
          { label: 'abandoned', backgroundColor: '#b45309', data: topics.map((t) => t.abandoned) },
          { label: 'still open', backgroundColor: '#94a3b8', data: topics.map((t) => t.open) },
        ],
      },
      options: { indexAxis: 'y', maintainAspectRatio: false, animation: false, plugins: { legend: { position: 'bottom' } },
                 scales: { x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } }, y: { stacked: true } } },
    });
    const buckets = report.waiting.histogram;
    chart('chart-waits', {
      type: 'bar',
      data: {
        labels: buckets.map((b) => b.to_seconds === null ? '≥ ' + minutes(b.from_seconds)
          : b.from_seconds === 0 ? '< ' + minutes(b.to_seconds) : minutes(b.from_seconds) + '–' + minutes(b.to_seconds)),
        datasets: [{ label: 'cases', backgroundColor: '#1d4ed8', data: buckets.map((b) => b.count) }],
      },
      options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } },
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    const reply = report.waiting.first_human_reply;
    $('wait-summary').textContent = 'Median ' + duration(wait.median_seconds) + ', 90th percentile ' +
      duration(wait.p90_seconds) + ' (' + wait.count + ' cases). First human reply: median ' +
      duration(reply.median_seconds) + ', 90th percentile ' + duration(reply.p90_seconds) + '. Past their promised reply time now: ' +
      report.waiting.past_promised_reply_now + '.';

    const rows = $('topics');
    rows.replaceChildren();
    report.topics.forEach((t) => {
      const change = t.previous === 0 ? (t.contacts ? 'new' : '0')
        : (t.change > 0 ? '+' : '') + t.change + (t.change_percent === null ? '' : ' (' + (t.change > 0 ? '+' : '') + t.change_percent + '%)');
      const reasons = Object.entries(t.reasons).filter(([, n]) => n > 0)
        .map(([r, n]) => (report.reason_names[r] || r) + ' ' + n).join(', ');
      rows.appendChild(el('tr', { 'data-topic': t.topic }, [
        el('th', { scope: 'row', text: t.name, lang: t.name !== t.name_en ? 'nl' : null }),
        el('td', { class: 'num', text: String(t.contacts) }),
        el('td', { class: 'num ' + (t.change > 0 ? 'up' : t.change < 0 ? 'down' : ''), text: change }),
        el('td', { class: 'num', text: String(t.solved) }),
        el('td', { class: 'num', text: String(t.handed) }),
        el('td', { text: reasons || '–' }),
        el('td', { class: 'num', text: String(t.abandoned) }),
        el('td', { class: 'num', text: String(t.repeat) }),
      ]));
    });

    renderPromises(report);
    $('promises').replaceChildren(...[['Goodwill granted', report.goodwill.granted],
      ...Object.entries(report.goodwill.by_kind).map(([kind, n]) => ['  ' + kind.replace('_', ' '), n])]
      .flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
    $('outages').replaceChildren(...(report.outages.length ? report.outages.map((o) =>
      el('li', { text: o.outage + ': ' + o.contacts + (o.contacts === 1 ? ' contact' : ' contacts') }))
      : [el('li', { class: 'muted', text: 'None in this period.' })]));
    $('repeats').replaceChildren(...(report.repeats.length ? report.repeats.map((r) => el('li', {}, [
      el('strong', { text: names[r.topic] || r.topic }),
      el('span', { text: ' customer ' + r.customer_id + ', ' + r.at.slice(0, 16).replace('T', ' ') + ' UTC (' + r.language + ', ' + r.channel + ')' }),
      el('br'),
      el('span', { class: 'muted', text: 'conversation ' + r.conversation_id + ', before: ' + r.previous_conversation_id +
                                          ' (' + r.previous_at.slice(0, 16).replace('T', ' ') + ')' }),
    ])) : [el('li', { class: 'muted', text: 'None in this period.' })]));
    $('snippets').replaceChildren(...report.topics.filter((t) => t.snippets.length).map((t) => el('div', {}, [
      el('h3', { text: t.name }),
      ...t.snippets.map((s) => el('blockquote', { lang: s.language, text: s.text })),
    ])));
    $('feedback').replaceChildren(...(report.feedback.items.length ? report.feedback.items.map((f) =>
      el('blockquote', { lang: f.language, text: f.text + ' (' + f.channel + ', ' + f.at.slice(0, 10) + ')' }))
      : [el('p', { class: 'muted', text: 'No feedback in this period.' })]));
  }

  function promiseRow(name, figures, attrs) {
    return el('tr', attrs, [el('th', { scope: 'row', text: name }),
      ...['made', 'kept', 'late', 'cancelled', 'open'].map((what) => el('td', { class: 'num',
        text: figures[what] === undefined ? '–' : String(figures[what]) }))]);
  }

  function renderPromises(report) {
    const backend = report.backend_promises;
    const rows = [promiseRow('Case replies', report.promises, { 'data-kind': 'reply' }),
      ...backend.kinds.map((k) => promiseRow(PROMISE_KINDS[k.kind] || k.kind.replace(/_/g, ' '), k, { 'data-kind': k.kind }))];
    if (backend.kinds.length > 1) rows.push(promiseRow('All backend promises', backend.total, { 'data-kind': 'total', class: 'total' }));
    if (!backend.kinds.length) {
      rows.push(el('tr', {}, [el('td', { colspan: '6', class: 'muted', text: 'No promises in the customer backend in this period.' })]));
    }
    $('promise-kinds').replaceChildren(...rows);
  }

  async function load() {
    $('insights').setAttribute('aria-busy', 'true');
    $('error').textContent = '';
    try {
      const response = await fetch('/api/insights?' + query(), { credentials: 'same-origin' });
      if (response.status === 401) { window.location.assign('/login'); return; }
      if (!response.ok) throw new Error('HTTP ' + response.status);
      render(await response.json());
    } catch (error) {
      $('error').textContent = 'The report could not be loaded (' + error.message + ').';
    } finally {
      $('insights').setAttribute('aria-busy', 'false');
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    ['period', 'language', 'channel'].forEach((id) => $(id).addEventListener('change', load));
    load();
  });
}());
