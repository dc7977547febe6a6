/* Helder agent console: sign-in page and console, plain JavaScript, no dependencies.
 *
 * The console keeps a small in-memory state, renders it with DOM calls (text always through
 * textContent, never innerHTML, because every string can come from a customer) and follows the
 * service's websocket for live updates. The API contract is handoff/API.md.
 */
(function () {
  'use strict';

  // ---- words shown to agents ---------------------------------------------------------------

  const REASONS = {
    request: 'The customer asked for a person.',
    complexity: 'Too complex for the bot to solve.',
    second_miss: 'The bot did not understand the customer twice.',
    frustration: 'The customer is fed up: no more questions from the bot.',
    identification_failed: 'The customer could not be identified.',
    no_automation: 'The bot has no automated solution for this.',
    backend_failure: 'A backend system failed while the bot was helping.',
    takeover: 'An agent took the conversation over from the bot.',
  };
  const REASONS_SHORT = {
    request: 'asked for a person',
    complexity: 'too complex',
    second_miss: 'not understood twice',
    frustration: 'customer fed up',
    identification_failed: 'not identified',
    no_automation: 'no automation',
    backend_failure: 'backend failure',
    takeover: 'taken over',
  };
  const LANGUAGES = { nl: 'Dutch', en: 'English' };
  const CHANNELS = { socketio: 'website chat', whatsapp: 'WhatsApp', rest: 'REST' };
  const STATUSES = {
    queued: 'Waiting in the queue',
    human: 'With an agent',
    bot: 'Handed back to the bot',
    resolved: 'Resolved',
  };
  const VERIFIED_BY = {
    phone: 'phone number (WhatsApp)',
    whatsapp: 'phone number (WhatsApp)',
    token: 'signed-in token from the shop',
    shop_token: 'signed-in token from the shop',
  };
  const PROMISE_KINDS = { reply: 'Reply', callback: 'Call back', replacement: 'Replacement', refund: 'Refund' };

  // ---- small helpers ---------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  /** Creates an element; attrs: class, text, dataset {..}, anything else as attribute. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function humanize(token) {
    return String(token).replace(/[_-]+/g, ' ').trim();
  }

  function capitalize(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  /** ISO strings, epoch seconds (Rasa timestamps) or epoch milliseconds → Date or null. */
  function toDate(value) {
    if (value === null || value === undefined || value === '') return null;
    if (typeof value === 'number' || /^\d+(\.\d+)?$/.test(String(value))) {
      const number = Number(value);
      return new Date(number < 1e12 ? number * 1000 : number);
    }
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function clock(date) {
    if (!date) return '';
    const time = date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
    const today = new Date();
    if (date.toDateString() === today.toDateString()) return time;
    return date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' }) + ' ' + time;
  }

  function relative(date) {
    if (!date) return '';
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    const future = seconds < 0;
    const abs = Math.abs(seconds);
    let text;
    if (abs < 45) return future ? 'in a moment' : 'just now';
    if (abs < 3600) text = Math.round(abs / 60) + ' min';
    else if (abs < 86400) text = Math.round(abs / 3600) + ' h';
    else text = Math.round(abs / 86400) + ' d';
    return future ? 'in ' + text : text + ' ago';
  }

  /** Waiting time as mm:ss (minutes keep counting past 59). */
  function mmss(totalSeconds) {
    const seconds = Math.max(0, Math.floor(totalSeconds));
    return String(Math.floor(seconds / 60)).padStart(2, '0') + ':' + String(seconds % 60).padStart(2, '0');
  }

  function languageLabel(code) {
    if (!code) return 'unknown language';
    return (LANGUAGES[code] || code) + ' (' + code + ')';
  }

  function channelLabel(code) {
    return code ? CHANNELS[code] || code : 'unknown channel';
  }

  function reasonText(reason) {
    return REASONS[reason] || (reason ? capitalize(humanize(reason)) + '.' : 'No reason given.');
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  function detailOf(data, response) {
    const detail = data && typeof data === 'object' ? data.detail : data;
    if (typeof detail === 'string' && detail) return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => (item && item.msg) || JSON.stringify(item)).join('; ');
    }
    if (detail && typeof detail === 'object') return JSON.stringify(detail);
    return response.statusText || 'request failed';
  }

  // ---- sign-in page --------------------------------------------------------------------------

  function initLogin() {
    const form = $('login-form');
    const username = $('login-username');
    const password = $('login-password');
    const error = $('login-error');
    const submit = form.querySelector('[type="submit"]');

    function showError(message) {
      error.textContent = message;
      error.hidden = false;
    }

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.hidden = true;
      error.textContent = '';
      if (!username.value.trim() || !password.value) {
        showError('Enter your username and password.');
        (username.value.trim() ? password : username).focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Signing in…';
      try {
        const response = await fetch('/auth/login', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ username: username.value.trim(), password: password.value }),
        });
        if (response.ok) {
          window.location.assign('/');
          return;
        }
        if (response.status === 401) {
          showError('Wrong username or password.');
          password.select();
          password.focus();
        } else if (response.status === 429) {
          showError('Too many attempts. Wait a minute and try again.');
        } else {
          showError('Signing in failed (HTTP ' + response.status + '). Try again or ask an administrator.');
        }
      } catch (err) {
        showError('The service cannot be reached. Check your connection and try again.');
      } finally {
        submit.disabled = false;
        submit.textContent = 'Sign in';
      }
    });
  }

  // ---- console -------------------------------------------------------------------------------

  const state = {
    agent: null, // {username, name, role}: role agent | supervisor | admin (handoff/api/roles.py)
    csrf: null,
    queue: [],
    queueLoadedAt: 0, // performance.now() when waiting_seconds were read
    conversations: [],
    names: new Map(), // conversation_id → customer name, learnt from cases
    agentNames: new Map(), // username → full name, learnt from cases and /api/me
    selection: null, // {type: 'case'|'conversation', id}
    case: null, // the open case (without transcript)
    conversation: null, // summary of the open conversation when it has no case
    conversationId: null, // conversation whose transcript is shown
    lines: [],
    lineKeys: new Set(),
    loading: 0, // transcripts being fetched; live lines meanwhile are buffered, then merged
    buffered: [], // [{conversationId, line}]
    socket: null,
    backoff: 1000,
    refreshTimer: null,
    busy: false,
  };

  function goToLogin() {
    window.location.assign('/login');
  }

  async function api(method, path, body, retried) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'the service cannot be reached');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (err) {
        data = text;
      }
    }
    if (response.status === 401) {
      goToLogin();
      throw new ApiError(401, 'your session has ended, sign in again');
    }
    if (response.ok) return data;
    const detail = detailOf(data, response);
    // A stale CSRF token (e.g. after signing in on another tab): fetch a fresh one, retry once.
    if (response.status === 403 && !retried && method !== 'GET' && /csrf/i.test(detail)) {
      await loadMe();
      return api(method, path, body, true);
    }
    throw new ApiError(response.status, detail);
  }

  function describeError(what, err) {
    if (!(err instanceof ApiError)) return what + ': ' + (err && err.message ? err.message : String(err));
    if (err.status === 0) return what + ': ' + err.detail + '.';
    let hint = '';
    if (err.status === 403) hint = ' You are not allowed to do this (only the owner of a case, or a supervisor, can).';
    if (err.status === 502 || err.status === 504) hint = ' The bot platform did not accept it; try again in a moment.';
    return what + ': ' + err.detail + ' (HTTP ' + err.status + ').' + hint;
  }

  // ---- alerts and notices ----------------------------------------------------------------------

  function showAlert(message) {
    const area = $('alert');
    const item = el('div', { class: 'alert-item' },
      el('span', { class: 'alert-text', text: message }),
      el('button', { type: 'button', class: 'alert-close', 'aria-label': 'Dismiss this message', text: '×' }));
    item.querySelector('button').addEventListener('click', () => item.remove());
    area.append(item);
    while (area.children.length > 3) area.firstElementChild.remove();
  }

  function clearAlerts() {
    $('alert').replaceChildren();
  }

  let noticeTimer = null;
  function notice(message) {
    const area = $('notice');
    area.textContent = message;
    area.classList.add('visible');
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => area.classList.remove('visible'), 4000);
  }

  async function act(what, fn) {
    if (state.busy) return;
    state.busy = true;
    renderControls();
    try {
      await fn();
      return true;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describeError(what, err));
      return false;
    } finally {
      state.busy = false;
      renderControls();
    }
  }

  // ---- loading -------------------------------------------------------------------------------

  async function loadMe() {
    const me = await api('GET', '/api/me');
    const agent = (me && me.agent) || {};
    state.agent = {
      username: agent.username || agent.id || agent.login || '',
      name: agent.name || agent.display_name || agent.username || '',
      role: agent.role || 'agent',
    };
    state.csrf = me.csrf_token;
    state.agentNames.set(state.agent.username, state.agent.name);
    $('me').textContent = 'Signed in as ' + (state.agent.name || state.agent.username) +
      (state.agent.role === 'agent' ? '' : ' (' + state.agent.role + ')');
    // The insights page is for supervisors and admins (the service refuses agents anyway).
    $('insights-link').hidden = state.agent.role === 'agent';
  }

  function learnName(kase) {
    if (kase && kase.owner && kase.owner_name) state.agentNames.set(kase.owner, kase.owner_name);
    const name = kase && kase.packet && kase.packet.identity && kase.packet.identity.name;
    if (name && kase.conversation_id) state.names.set(kase.conversation_id, name);
  }

  async function loadQueue() {
    const queue = await api('GET', '/api/queue');
    state.queue = Array.isArray(queue) ? queue : (queue && queue.cases) || [];
    state.queueLoadedAt = performance.now();
    state.queue.forEach(learnName);
    renderQueue();
  }

  async function loadConversations() {
    const conversations = await api('GET', '/api/conversations');
    state.conversations = Array.isArray(conversations) ? conversations : (conversations && conversations.conversations) || [];
    renderConversations();
  }

  async function refreshLists() {
    try {
      await Promise.all([loadQueue(), loadConversations()]);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describeError('Could not refresh the lists', err));
    }
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refreshLists, 250);
  }

  // ---- lists -----------------------------------------------------------------------------------

  function keepFocus(list, render) {
    const active = document.activeElement;
    const key = active && list.contains(active) ? active.dataset.key : null;
    render();
    if (key) {
      const again = list.querySelector('[data-key="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }

  /** The service's flag, or a promise that fell due since it was fetched (still open, not kept). */
  function isOverdue(kase) {
    if (!kase) return false;
    if (kase.overdue) return true;
    const promise = kase.promise;
    const due = promise && !promise.kept_at && toDate(promise.due_at);
    return Boolean(due && due.getTime() < Date.now() && (kase.status === 'queued' || kase.status === 'human'));
  }

  function overdueBadge(hidden) {
    return el('span', { class: 'badge badge-overdue', hidden, text: 'overdue' });
  }

  function renderQueue() {
    const list = $('queue');
    keepFocus(list, () => {
      list.replaceChildren(...state.queue.map((kase) => {
        const identity = (kase.packet && kase.packet.identity) || {};
        const selected = state.case && state.case.id === kase.id;
        const button = el('button', {
          type: 'button',
          class: 'item' + (isOverdue(kase) ? ' is-overdue' : ''),
          'data-testid': 'queue-item',
          'aria-current': selected ? 'true' : null,
          dataset: { key: 'case:' + kase.id, caseId: kase.id },
        },
        el('span', { class: 'item-top' },
          el('span', { class: 'item-name' + (identity.name ? '' : ' unknown'), text: identity.name || 'unknown' }),
          el('span', {
            class: 'wait',
            title: 'Waiting time',
            'aria-label': 'waiting',
            dataset: { base: String(kase.waiting_seconds || 0) },
            text: mmss(kase.waiting_seconds || 0),
          })),
        el('span', { class: 'item-meta' },
          overdueBadge(!isOverdue(kase)),
          el('span', { class: 'chip', title: languageLabel(kase.language), text: (kase.language || '?').toUpperCase() }),
          el('span', { text: channelLabel(kase.channel) }),
          el('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
          el('span', { text: REASONS_SHORT[kase.reason] || humanize(kase.reason || '') })));
        button.addEventListener('click', () => openCase(kase.id));
        return el('li', {}, button);
      }));
    });
    $('queue-empty').hidden = state.queue.length > 0;
    $('queue-count').textContent = String(state.queue.length);
    document.title = (state.queue.length ? '(' + state.queue.length + ') ' : '') + 'Helder agent console';
  }

  function renderConversations() {
    const list = $('conversations');
    const sorted = state.conversations.slice().sort((a, b) => {
      const ta = toDate(a.last_at), tb = toDate(b.last_at);
      return (tb ? tb.getTime() : 0) - (ta ? ta.getTime() : 0);
    });
    keepFocus(list, () => {
      list.replaceChildren(...sorted.map((conv) => {
        const id = conv.conversation_id;
        const name = state.names.get(id);
        const selected = state.conversationId === id;
        const agentOwned = conv.owner === 'agent';
        const ownerText = agentOwned ? (conv.owner_name || 'agent') : conv.case_status === 'queued' ? 'queued' : 'bot';
        const at = toDate(conv.last_at);
        const button = el('button', {
          type: 'button',
          class: 'item',
          'data-testid': 'conversation-item',
          'aria-current': selected ? 'true' : null,
          dataset: { key: 'conversation:' + id, conversationId: id },
        },
        el('span', { class: 'item-top' },
          el('span', { class: 'item-name' + (name ? '' : ' mono'), text: name || shortId(id) }),
          el('span', {
            class: 'badge owner-' + (agentOwned ? 'agent' : conv.case_status === 'queued' ? 'queued' : 'bot'),
            title: 'Owner',
            text: ownerText,
          })),
        el('span', { class: 'item-last', text: conv.last_text || '(no messages yet)' }),
        el('span', { class: 'item-meta' },
          el('span', { class: 'chip', text: (conv.language || '?').toUpperCase() }),
          el('span', { text: channelLabel(conv.channel) }),
          el('span', { class: 'sep', 'aria-hidden': 'true', text: '·' }),
          el('time', { class: 'ago', datetime: at ? at.toISOString() : null, dataset: { at: at ? String(at.getTime()) : '' }, text: relative(at) })));
        button.addEventListener('click', () => openConversation(id));
        return el('li', {}, button);
      }));
    });
    $('conversations-empty').hidden = sorted.length > 0;
    $('conversations-count').textContent = String(sorted.length);
  }

  function shortId(id) {
    const text = String(id || '');
    return text.length > 18 ? text.slice(0, 8) + '…' + text.slice(-6) : text;
  }

  function markSelection() {
    for (const button of $('queue').querySelectorAll('button.item')) {
      const selected = Boolean(state.case && button.dataset.caseId === state.case.id);
      if (selected) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
    }
    for (const button of $('conversations').querySelectorAll('button.item')) {
      if (button.dataset.conversationId === state.conversationId) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
    }
  }

  // ---- opening a case or a conversation ------------------------------------------------------

  function setHash(type, id) {
    const hash = '#' + type + '=' + encodeURIComponent(id);
    if (window.location.hash !== hash) history.replaceState(null, '', hash);
  }

  async function openCase(caseId) {
    state.selection = { type: 'case', id: caseId };
    setHash('case', caseId);
    let data;
    startLoading();
    try {
      data = await api('GET', '/api/cases/' + encodeURIComponent(caseId));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describeError('Could not open the case', err));
      return;
    } finally {
      state.loading -= 1;
    }
    if (!state.selection || state.selection.id !== caseId) return; // another one was picked meanwhile
    showCase(data);
  }

  /** Shows a case (with its transcript) in the main area. */
  function showCase(data) {
    const { transcript, ...kase } = data;
    learnName(kase);
    state.case = kase;
    state.conversation = null;
    let lines = Array.isArray(transcript) ? transcript : [];
    if (!lines.length && kase.packet && Array.isArray(kase.packet.transcript)) lines = kase.packet.transcript;
    setTranscript(kase.conversation_id, lines);
    renderDetail();
  }

  async function openConversation(conversationId) {
    const summary = state.conversations.find((c) => c.conversation_id === conversationId);
    if (summary && summary.case_id) {
      await openCase(summary.case_id);
      return;
    }
    state.selection = { type: 'conversation', id: conversationId };
    setHash('conversation', conversationId);
    let lines;
    startLoading();
    try {
      lines = await api('GET', '/api/conversations/' + encodeURIComponent(conversationId) + '/transcript');
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describeError('Could not open the conversation', err));
      return;
    } finally {
      state.loading -= 1;
    }
    if (!state.selection || state.selection.id !== conversationId) return;
    state.case = null;
    state.conversation = summary || { conversation_id: conversationId, owner: 'bot' };
    setTranscript(conversationId, Array.isArray(lines) ? lines : (lines && lines.transcript) || []);
    renderDetail();
  }

  async function reloadCase() {
    if (state.case) await openCase(state.case.id);
  }

  // ---- transcript ----------------------------------------------------------------------------

  function lineKey(line) {
    const at = toDate(line.at);
    return [line.from, at ? Math.round(at.getTime() / 1000) : '', line.text].join('|');
  }

  /** Lines pushed while a transcript is fetched may be missing from it: keep them to merge. */
  function startLoading() {
    if (!state.loading) state.buffered = [];
    state.loading += 1;
  }

  function setTranscript(conversationId, lines) {
    const buffered = state.buffered.filter((item) => item.conversationId === conversationId).map((item) => item.line);
    if (!state.loading) state.buffered = [];
    state.conversationId = conversationId;
    state.lines = [];
    state.lineKeys = new Set();
    $('transcript').replaceChildren();
    for (const line of lines.concat(buffered)) appendLine(line, false);
    scrollTranscript(true);
  }

  function appendLine(line, live) {
    if (!line || typeof line !== 'object') return;
    const key = lineKey(line);
    if (state.lineKeys.has(key)) return;
    state.lineKeys.add(key);
    state.lines.push(line);
    const box = $('transcript');
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    box.append(lineNode(line));
    if (live) scrollTranscript(nearBottom);
  }

  function lineNode(line) {
    const from = ['customer', 'bot', 'agent'].includes(line.from) ? line.from : 'bot';
    let who;
    if (from === 'customer') who = customerName() || 'Customer';
    else if (from === 'agent') who = line.agent_name || 'Agent';
    else who = 'Bot';
    const role = from === 'customer' ? 'customer' : from === 'agent' ? 'agent' : 'automated assistant';
    const at = toDate(line.at);
    const language = state.case && state.case.language;
    return el('div', { class: 'line line-' + from, 'data-testid': 'transcript-line', 'data-from': from },
      el('div', { class: 'line-meta' },
        el('span', { class: 'line-who', text: who }),
        who.toLowerCase() === role ? null : el('span', { class: 'line-role', text: role }),
        el('time', { class: 'line-at', datetime: at ? at.toISOString() : null, text: clock(at) })),
      el('p', { class: 'line-text', lang: from === 'customer' && language ? language : null, text: line.text || '' }));
  }

  function scrollTranscript(toBottom) {
    if (!toBottom) return;
    const box = $('transcript');
    box.scrollTop = box.scrollHeight;
  }

  function customerName() {
    const identity = state.case && state.case.packet && state.case.packet.identity;
    return (identity && identity.name) || (state.conversationId && state.names.get(state.conversationId)) || '';
  }

  // ---- the main area -------------------------------------------------------------------------

  function ownedByMe(kase) {
    return Boolean(kase && state.agent && kase.owner && kase.owner === state.agent.username);
  }

  /** Supervisors and admins may act on a colleague's case (the service checks it again). */
  function supervises() {
    return Boolean(state.agent && (state.agent.role === 'supervisor' || state.agent.role === 'admin'));
  }

  function renderDetail() {
    const kase = state.case;
    const conversation = state.conversation;
    if (!kase && !conversation) {
      $('empty-state').hidden = false;
      $('case-view').hidden = true;
      return;
    }
    $('empty-state').hidden = true;
    $('case-view').hidden = false;

    if (kase) {
      const name = customerName();
      $('case-title').textContent = name || 'Unknown customer';
      const subtitle = [STATUSES[kase.status] || kase.status];
      if (kase.status === 'human' && kase.owner_name) subtitle.push('owner ' + kase.owner_name);
      if (kase.status === 'resolved' && kase.outcome) subtitle.push('outcome: ' + kase.outcome);
      const created = toDate(kase.created_at);
      if (created) subtitle.push('opened ' + clock(created));
      subtitle.push('case ' + shortId(kase.id));
      $('case-subtitle').textContent = subtitle.join(' · ');
      $('case-subtitle').title = 'Case ' + kase.id + ', conversation ' + kase.conversation_id;
    } else {
      $('case-title').textContent = state.names.get(conversation.conversation_id) || 'Conversation ' + shortId(conversation.conversation_id);
      $('case-subtitle').textContent = 'Conversation ' + conversation.conversation_id;
      $('case-subtitle').title = '';
    }
    renderCard();
    renderControls();
    markSelection();
  }

  function renderCard() {
    const kase = state.case;
    const packet = (kase && kase.packet) || {};
    const identity = packet.identity || {};
    const conversation = state.conversation;
    $('card-no-case').hidden = Boolean(kase);
    // Without a case only the language and channel are known; the rest would be empty.
    for (const node of document.querySelectorAll('#context-card .case-only')) node.hidden = !kase;

    // Who
    const who = $('card-identity');
    who.replaceChildren();
    if (kase) {
      who.append(el('div', { class: 'identity-name' + (identity.name ? '' : ' unknown'), text: identity.name || 'unknown' }));
      who.append(el('div', {},
        'Customer id: ',
        identity.customer_id ? el('span', { class: 'mono', text: identity.customer_id }) : el('span', { class: 'muted', text: 'not identified' })));
      if (identity.verified_by) {
        const verified = toDate(identity.verified_at);
        who.append(el('div', { class: 'muted', text: 'Verified by ' + (VERIFIED_BY[identity.verified_by] || humanize(identity.verified_by).replace(/\s*\+\s*/g, ' + ')) + (verified ? ' at ' + clock(verified) : '') }));
      } else {
        who.append(el('div', { class: 'muted', text: 'Identity not verified' }));
      }
    }

    // Language and channel
    const language = kase ? kase.language || packet.language : conversation && conversation.language;
    const channel = kase ? kase.channel || packet.channel : conversation && conversation.channel;
    $('card-language').replaceChildren(
      el('div', { text: languageLabel(language) }),
      el('div', { class: 'muted', text: 'Channel: ' + channelLabel(channel) }));

    // Why
    const reason = kase ? kase.reason || packet.reason : null;
    $('card-reason').replaceChildren(
      el('div', { text: reasonText(reason) }),
      reason ? el('div', { class: 'muted mono', text: reason }) : null);

    // Promise
    renderPromise();

    // The problem, verbatim
    const problem = $('card-problem');
    problem.textContent = packet.problem_description || '';
    if (packet.problem_description) {
      problem.classList.remove('missing');
      if (language) problem.setAttribute('lang', language);
    } else {
      problem.classList.add('missing');
      problem.removeAttribute('lang');
      problem.textContent = 'The customer has not described a problem.';
    }

    // Intent and entities
    const intentBox = $('card-intent');
    intentBox.replaceChildren();
    if (packet.intent) {
      intentBox.append(el('div', {}, capitalize(humanize(packet.intent)), ' ', el('code', { text: packet.intent })));
    } else {
      intentBox.append(el('div', { class: 'muted', text: 'No intent recognised' }));
    }
    const entities = packet.entities && typeof packet.entities === 'object' ? Object.entries(packet.entities) : [];
    if (entities.length) {
      intentBox.append(el('dl', { class: 'entities' }, entities.map(([key, value]) => [
        el('dt', { text: humanize(key) }),
        el('dd', { text: typeof value === 'object' ? JSON.stringify(value) : String(value) }),
      ])));
    }

    // What the bot tried
    const attempts = $('card-attempts');
    const tried = Array.isArray(packet.bot_attempts) ? packet.bot_attempts : [];
    attempts.replaceChildren(...tried.map((attempt) => {
      if (attempt && typeof attempt === 'object') {
        const action = attempt.action || attempt.name || '';
        const result = attempt.result || attempt.outcome || '';
        return el('li', {}, el('strong', { text: capitalize(humanize(action)) }), result ? ': ' + humanize(result) : '');
      }
      const text = String(attempt);
      const split = text.indexOf(':');
      if (split < 0) return el('li', { text: capitalize(humanize(text)) });
      return el('li', {},
        el('strong', { text: capitalize(humanize(text.slice(0, split))) }),
        ': ' + text.slice(split + 1).replace(/_/g, ' ').trim());
    }));
    if (!tried.length) attempts.append(el('li', { class: 'muted', text: 'Nothing: it escalated straight away.' }));

    // Private notes
    const notes = (kase && Array.isArray(kase.notes)) ? kase.notes : [];
    $('card-notes').replaceChildren(...notes.map((note) => {
      const at = toDate(note.at);
      return el('li', { class: 'note', 'data-testid': 'note' },
        el('span', { class: 'badge badge-private', text: 'private' }),
        el('span', { class: 'note-text', text: note.text || '' }),
        el('span', { class: 'note-meta muted', text: '— ' + (note.agent_name || state.agentNames.get(note.agent) || note.agent || 'agent') + (at ? ', ' + clock(at) : '') }));
    }));
    if (!notes.length) $('card-notes').append(el('li', { class: 'muted empty-note', text: 'No notes yet.' }));
  }

  /** WhatsApp: how long free text can still reach the customer (Meta's 24-hour window). */
  function renderWhatsAppWindow(box, kase) {
    const left = kase && kase.channel === 'whatsapp' ? kase.whatsapp_window_seconds_left : null;
    if (left === null || left === undefined) return;
    const text = left > 0
      ? 'WhatsApp window: ' + Math.floor(left / 3600) + 'h ' + Math.floor((left % 3600) / 60) + 'm left'
      : 'WhatsApp window closed: only the approved template reaches the customer';
    box.append(el('div', { class: left > 0 ? 'muted' : 'overdue-text', text: text, 'data-testid': 'card-whatsapp-window' }));
  }

  function renderPromise() {
    const box = $('card-promise');
    const kase = state.case;
    const promise = kase && kase.promise;
    box.replaceChildren();
    renderWhatsAppWindow(box, kase);
    const overdue = isOverdue(kase);
    if (!promise || !promise.due_at) {
      if (overdue) box.append(overdueBadge(false), ' ');
      box.append(el('span', { class: 'muted', text: kase ? 'No promise made' : '—' }));
      return;
    }
    const due = toDate(promise.due_at);
    const kind = PROMISE_KINDS[promise.kind] || capitalize(humanize(promise.kind || 'reply'));
    const kept = toDate(promise.kept_at);
    if (kept) {
      box.append(el('span', { class: 'badge badge-kept', text: 'kept' }), ' ',
        el('span', { text: kind + ' promised by ' + clock(due) + ', kept at ' + clock(kept) }));
      return;
    }
    if (overdue) box.append(overdueBadge(false), ' ');
    box.append(el('span', { class: overdue ? 'overdue-text' : '', text: kind + ' by ' + clock(due) + (promise.channel ? ' via ' + channelLabel(promise.channel) : '') }));
    box.append(el('div', { class: overdue ? 'overdue-text' : 'muted', text: overdue ? 'overdue: was due ' + relative(due) : 'due ' + relative(due) }));
  }

  function renderControls() {
    const kase = state.case;
    const conversation = state.conversation;
    const busy = state.busy;
    const mine = ownedByMe(kase);
    const claim = $('claim');
    const owner = $('owner-info');
    owner.textContent = '';
    claim.hidden = false;
    if (kase && kase.status === 'queued') {
      claim.textContent = 'Take over';
      claim.disabled = busy;
    } else if (kase && kase.status === 'human') {
      // A supervisor can take a colleague's case over; an agent only sees who has it.
      claim.hidden = mine;
      claim.textContent = supervises() && !mine ? 'Take over from ' + (kase.owner_name || kase.owner) : 'Take over';
      claim.disabled = !supervises() || busy;
      owner.textContent = mine ? 'You own this case' : 'Claimed by ' + (kase.owner_name || kase.owner);
    } else if (kase || conversation) {
      // Handed back, resolved, or never escalated: the bot has it; taking over opens a case.
      claim.textContent = 'Take over';
      claim.disabled = busy;
      owner.textContent = 'The bot is handling this conversation';
    }
    const canReply = Boolean(kase && kase.status === 'human' && mine);
    $('reply-input').disabled = !canReply;
    $('reply-send').disabled = !canReply || busy;
    $('reply-input').placeholder = canReply ? 'Type your reply…' : kase && kase.status === 'human' ? 'Only the owner can reply.' : 'Take over to reply.';
    $('note-input').disabled = !kase;
    $('reply-form').classList.toggle('is-disabled', !canReply);
    document.querySelector('[data-testid="note-add"]').disabled = !kase || busy;
    // Replies need the case (a supervisor takes it over first: one voice per conversation);
    // a supervisor may hand back or resolve a colleague's case, e.g. one left behind.
    const mayAct = mine || supervises();
    $('handback').disabled = !(kase && kase.status === 'human' && mayAct) || busy;
    // The owner resolves their case; a queued or handed-back case anyone may close.
    const canResolve = Boolean(kase && ((kase.status === 'human' && mayAct) || kase.status === 'queued' || kase.status === 'bot'));
    $('resolve-input').disabled = !canResolve;
    document.querySelector('[data-testid="resolve-button"]').disabled = !canResolve || busy;
  }

  // ---- actions -------------------------------------------------------------------------------

  function caseIdOf(response) {
    if (!response || typeof response !== 'object') return null;
    return response.id || response.case_id || (response.case && response.case.id) || null;
  }

  async function takeOver() {
    const kase = state.case;
    if (kase && kase.status === 'queued') {
      const ok = await act('Could not take over', async () => {
        await api('POST', '/api/cases/' + encodeURIComponent(kase.id) + '/claim');
        await reloadCase();
      });
      if (ok) {
        notice('You own this case now. The bot stays silent.');
        $('reply-input').focus();
      } else {
        await reloadCase(); // show who owns it now
      }
      scheduleRefresh();
      return;
    }
    // The bot's conversation, or (supervisors) a colleague's case: the takeover endpoint decides.
    const conversationId = state.conversationId;
    if (!conversationId) return;
    const ok = await act('Could not take over', async () => {
      const response = await api('POST', '/api/conversations/' + encodeURIComponent(conversationId) + '/takeover');
      let caseId = caseIdOf(response);
      if (!caseId) {
        await loadConversations();
        const summary = state.conversations.find((c) => c.conversation_id === conversationId);
        caseId = summary && summary.case_id;
      }
      if (caseId) await openCase(caseId);
    });
    if (ok) {
      notice('You took over the conversation. The bot is paused.');
      $('reply-input').focus();
    }
    scheduleRefresh();
  }

  async function sendReply() {
    const kase = state.case;
    const input = $('reply-input');
    const text = input.value.trim();
    if (!kase || !text || input.disabled || state.busy) return;
    if (text.length > 4000) {
      showAlert('The reply is too long: at most 4000 characters.');
      return;
    }
    const ok = await act('Could not send the reply', async () => {
      const line = await api('POST', '/api/cases/' + encodeURIComponent(kase.id) + '/messages', { text });
      // The service records the line as sent; the websocket brings the same line (shown once).
      if (line && line.from && state.conversationId === kase.conversation_id) appendLine(line, true);
    });
    if (ok) {
      if (input.value.trim() === text) input.value = '';
      notice('Sent to the customer via ' + channelLabel(kase.channel) + '.');
    }
    input.focus();
  }

  async function addNote() {
    const kase = state.case;
    const input = $('note-input');
    const text = input.value.trim();
    if (!kase || !text) return;
    const ok = await act('Could not add the note', async () => {
      const response = await api('POST', '/api/cases/' + encodeURIComponent(kase.id) + '/notes', { text });
      if (response && Array.isArray(response.notes) && state.case && state.case.id === kase.id) {
        state.case = { ...state.case, ...response, transcript: undefined };
        delete state.case.transcript;
        renderDetail();
      } else {
        await reloadCase();
      }
    });
    if (ok) {
      input.value = '';
      notice('Private note added.');
    }
  }

  async function handBack() {
    const kase = state.case;
    if (!kase) return;
    const ok = await act('Could not hand back to the bot', async () => {
      await api('POST', '/api/cases/' + encodeURIComponent(kase.id) + '/handback');
      await reloadCase();
    });
    if (ok) notice('Handed back: the bot continues the conversation.');
    scheduleRefresh();
  }

  async function resolve() {
    const kase = state.case;
    const input = $('resolve-input');
    const outcome = input.value.trim();
    if (!kase) return;
    if (!outcome) {
      showAlert('Write the outcome before resolving (what was done for the customer).');
      input.focus();
      return;
    }
    const ok = await act('Could not resolve the case', async () => {
      await api('POST', '/api/cases/' + encodeURIComponent(kase.id) + '/resolve', { outcome });
      await reloadCase();
    });
    if (ok) {
      input.value = '';
      notice('Case resolved.');
    }
    scheduleRefresh();
  }

  async function logout() {
    try {
      await api('POST', '/auth/logout');
    } catch (err) {
      // Signing out locally is enough; the cookie expires anyway.
    }
    goToLogin();
  }

  // ---- live updates --------------------------------------------------------------------------

  function setConnection(status, text) {
    const node = $('connection');
    node.dataset.state = status;
    node.textContent = text;
  }

  function connectSocket() {
    const url = (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + '/ws';
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (err) {
      reconnectLater();
      return;
    }
    state.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      state.backoff = 1000;
      setConnection('live', 'Live');
      // Whatever happened while we were away: fetch it once.
      refreshLists();
      if (state.case) reloadCase();
    });
    socket.addEventListener('message', (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      handleMessage(message);
    });
    socket.addEventListener('close', (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (!opened || event.code === 4401 || event.code === 1008) {
        // Refused or signed out elsewhere? /api/me answers 401 then, and we go to the sign-in page.
        loadMe().catch(() => {});
      }
      reconnectLater();
    });
  }

  function reconnectLater() {
    const delay = Math.round(state.backoff * (0.8 + Math.random() * 0.4));
    state.backoff = Math.min(state.backoff * 2, 30000);
    setConnection('offline', 'Offline, reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s');
    setTimeout(connectSocket, delay);
  }

  function handleMessage(message) {
    if (!message || typeof message !== 'object') return;
    if (message.type === 'line') {
      const id = message.conversation_id;
      if (state.loading) state.buffered.push({ conversationId: id, line: message.line });
      if (id && id === state.conversationId) appendLine(message.line, true);
      const summary = state.conversations.find((c) => c.conversation_id === id);
      if (summary && message.line) {
        summary.last_text = message.line.text;
        summary.last_at = message.line.at;
        renderConversations();
      } else if (!summary) {
        scheduleRefresh();
      }
    } else if (message.type === 'case' && message.case) {
      const kase = message.case;
      learnName(kase);
      if (state.case && state.case.id === kase.id) {
        const { transcript, ...rest } = kase;
        state.case = { ...state.case, ...rest };
        renderDetail();
      } else if (!state.case && state.conversation && kase.conversation_id === state.conversationId &&
                 (kase.status === 'queued' || kase.status === 'human')) {
        // The conversation we watch was just escalated: show its case.
        openCase(kase.id);
      }
      scheduleRefresh();
    } else if (message.type === 'resync') {
      // The service missed pushes (its Redis subscription was away): fetch once, as after a reconnect.
      refreshLists();
      if (state.case) reloadCase();
    } else if (message.type === 'conversation' && message.conversation) {
      const conversation = message.conversation;
      const index = state.conversations.findIndex((c) => c.conversation_id === conversation.conversation_id);
      if (index >= 0) state.conversations[index] = { ...state.conversations[index], ...conversation };
      else state.conversations.push(conversation);
      renderConversations();
      if (!state.case && state.conversation && conversation.conversation_id === state.conversationId) {
        state.conversation = { ...state.conversation, ...conversation };
        if (conversation.case_id && (conversation.case_status === 'queued' || conversation.case_status === 'human')) {
          openCase(conversation.case_id);
        }
      }
      scheduleRefresh();
    }
  }

  // ---- clock ---------------------------------------------------------------------------------

  function tick() {
    const elapsed = (performance.now() - state.queueLoadedAt) / 1000;
    for (const button of $('queue').querySelectorAll('button.item')) {
      const wait = button.querySelector('.wait');
      wait.textContent = mmss(Number(wait.dataset.base) + elapsed);
      const kase = state.queue.find((c) => c.id === button.dataset.caseId);
      const overdue = isOverdue(kase);
      button.classList.toggle('is-overdue', overdue);
      button.querySelector('.badge-overdue').hidden = !overdue;
    }
    for (const time of $('conversations').querySelectorAll('time.ago')) {
      if (time.dataset.at) time.textContent = relative(new Date(Number(time.dataset.at)));
    }
    if (state.case && state.case.promise) renderPromise();
  }

  // ---- wiring --------------------------------------------------------------------------------

  function bindConsole() {
    $('claim').addEventListener('click', takeOver);
    $('reply-form').addEventListener('submit', (event) => {
      event.preventDefault();
      sendReply();
    });
    $('reply-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        sendReply();
      }
    });
    $('note-form').addEventListener('submit', (event) => {
      event.preventDefault();
      addNote();
    });
    $('handback').addEventListener('click', handBack);
    $('resolve-form').addEventListener('submit', (event) => {
      event.preventDefault();
      resolve();
    });
    $('logout').addEventListener('click', logout);
  }

  async function initConsole() {
    bindConsole();
    renderControls();
    try {
      await loadMe();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showAlert(describeError('Could not load your account', err));
      return;
    }
    await refreshLists();
    const match = /^#(case|conversation)=(.+)$/.exec(window.location.hash);
    if (match) {
      const id = decodeURIComponent(match[2]);
      if (match[1] === 'case') openCase(id);
      else openConversation(id);
    }
    connectSocket();
    setInterval(() => {
      // Keeps idle proxies from closing the socket; the service answers with a pong.
      if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify({ type: 'ping' }));
    }, 25000);
    setInterval(tick, 1000);
    setInterval(refreshLists, 60000); // a safety net; the websocket does the real work
  }

  document.addEventListener('DOMContentLoaded', () => {
    const page = document.body.dataset.page;
    if (page === 'login') initLogin();
    else if (page === 'console') initConsole();
  });
})();
