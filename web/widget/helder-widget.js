/*!
 * Helder chat widget: one script tag on any page.
 *
 *   <script src="https://shop.example/widget/helder-widget.js"
 *           data-rasa-url="https://bot.example" data-history-url="https://handoff.example"
 *           data-locale="nl-NL" data-shop-token="<JWT from the shop, optional>"
 *           data-token-url="/token" defer></script>
 *
 * Talks to Rasa's socket.io channel (bot/channels/webchat.py) with socket.io-client v4, loaded from
 * vendor/socket.io.min.js next to this file (no CDN). The conversation id is a random 128-bit
 * session id kept in localStorage: a reload or another page of the site continues the same
 * conversation, and its history comes from the handoff service's public transcript endpoint.
 * No inline scripts or styles, no eval: works under a strict Content-Security-Policy.
 */
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script || window.HelderWidget) return;

  var STORE_KEY = 'helder.session';
  var TITLES_KEY = 'helder.titles';
  var REPLIES_KEY = 'helder.replies';
  var NOTICES_KEY = 'helder.notices';
  var OPEN_KEY = 'helder.open';
  var SESSION_DAYS = 30;
  var MAX_CHARS = 4000;
  var TYPING_MS = 20000;
  var SESSION_ID = /^[0-9a-fA-F]{32,128}$/;

  var STRINGS = {
    nl: {
      launcher: 'Chat met ons', unread: 'nieuw bericht', title: 'Klantenservice Helder',
      subtitle: 'Digitale assistent. Vraag gerust naar een medewerker.',
      close: 'Chat sluiten', log: 'Gesprek', input: 'Uw bericht', placeholder: 'Typ uw bericht…',
      send: 'Versturen', typing: 'De assistent typt…', you: 'U', bot: 'Assistent', agent: 'Medewerker',
      joined: '{name} neemt nu deel aan het gesprek', back: 'U praat weer met de assistent',
      empty: 'Stel uw vraag in uw eigen woorden.', replies: 'Snelle antwoorden',
      connecting: 'Verbinden…', reconnecting: 'Verbinding verbroken. Opnieuw verbinden…',
      queued: 'Wordt verstuurd zodra er weer verbinding is', failed: 'Niet verstuurd.', retry: 'Opnieuw versturen'
    },
    en: {
      launcher: 'Chat with us', unread: 'new message', title: 'Helder customer service',
      subtitle: 'Digital assistant. Ask for a person at any time.',
      close: 'Close chat', log: 'Conversation', input: 'Your message', placeholder: 'Type your message…',
      send: 'Send', typing: 'The assistant is typing…', you: 'You', bot: 'Assistant', agent: 'Agent',
      joined: '{name} joined', back: "You're back with the assistant",
      empty: 'Ask your question in your own words.', replies: 'Quick replies',
      connecting: 'Connecting…', reconnecting: 'Connection lost. Reconnecting…',
      queued: 'Will be sent when the connection is back', failed: 'Not sent.', retry: 'Send again'
    }
  };

  // ---- configuration ------------------------------------------------------------------------
  function attr(name) {
    var value = script.getAttribute(name);
    return value && value.trim() ? value.trim() : null;
  }
  var base = new URL('.', script.src).href;
  var cfg = {
    rasaUrl: (attr('data-rasa-url') || location.origin).replace(/\/+$/, ''),
    historyUrl: (attr('data-history-url') || '').replace(/\/+$/, ''),
    socketPath: attr('data-socket-path') || '/socket.io',
    locale: attr('data-locale') || document.documentElement.lang || navigator.language || 'nl-NL',
    token: attr('data-shop-token'),
    tokenUrl: attr('data-token-url')
  };
  var lang = /^en\b/i.test(cfg.locale) ? 'en' : 'nl';
  var t = STRINGS[lang];

  // ---- storage (localStorage may be unavailable: then the conversation lasts one page) --------
  var memory = {};
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return key in memory ? memory[key] : fallback;
    }
  }
  function save(key, value) {
    memory[key] = value;
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* private mode */ }
  }
  function sessionFlag(key, value) {
    try {
      if (value === undefined) return window.sessionStorage.getItem(key) === '1';
      if (value) window.sessionStorage.setItem(key, '1'); else window.sessionStorage.removeItem(key);
    } catch (e) { /* ignore */ }
    return false;
  }

  function newSessionId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      return window.crypto.randomUUID().replace(/-/g, '');
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function claims(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      var binary = window.atob(part + '==='.slice((part.length + 3) % 4));
      return JSON.parse(decodeURIComponent(Array.prototype.map.call(binary, function (c) {
        return '%' + ('0' + c.charCodeAt(0).toString(16)).slice(-2);
      }).join('')));
    } catch (e) {
      return {};
    }
  }

  /* One conversation per browser and customer: a signed-in customer who signs out, or another
     customer signing in on the same browser, starts a new one (never sees the other's history). */
  function chooseSession() {
    var sub = cfg.token ? (claims(cfg.token).sub || null) : null;
    var stored = load(STORE_KEY, null);
    var fresh = !stored || !SESSION_ID.test(stored.id || '') ||
      Date.now() - (stored.at || 0) > SESSION_DAYS * 864e5 || (stored.sub && stored.sub !== sub);
    var session = fresh ? { id: newSessionId(), sub: sub } : { id: stored.id, sub: stored.sub || sub, used: !!stored.used };
    session.at = Date.now();
    if (fresh) { save(TITLES_KEY, {}); save(REPLIES_KEY, null); save(NOTICES_KEY, {}); }
    save(STORE_KEY, session);
    return session;
  }

  // ---- state --------------------------------------------------------------------------------
  var session = chooseSession();
  var state = {
    history: [],      // lines of the last transcript fetch, oldest first (annotated)
    pending: [],      // live items not (yet) in the fetched transcript
    socket: null,
    confirmed: false, // the socket joined our session's room
    everConfirmed: false,
    open: false,
    typing: false,
    agent: null,      // name of the person in the conversation now (null: the bot)
    rendered: [],     // keys of the rendered view nodes
    seq: 0
  };
  var typingTimer = null;
  var sendChain = Promise.resolve();

  // ---- DOM ------------------------------------------------------------------------------------
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === 'text') node.textContent = props[key];
      else if (key === 'className') node.className = props[key];
      else if (key === 'hidden') node.hidden = !!props[key];
      else node.setAttribute(key, props[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  var host = el('div', { id: 'helder-chat-widget', 'data-testid': 'helder-widget' });
  host.hidden = true; // until its stylesheet is there
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var stylesheet = el('link', { rel: 'stylesheet', href: base + 'helder-widget.css' });
  stylesheet.addEventListener('load', function () { host.hidden = false; });
  stylesheet.addEventListener('error', function () { host.hidden = false; });

  var launcherText = el('span', { className: 'hw-launcher-text', text: t.launcher });
  var unread = el('span', { className: 'hw-unread', hidden: true }, [el('span', { className: 'hw-sr', text: ' (' + t.unread + ')' })]);
  var launcher = el('button', {
    type: 'button', className: 'hw-launcher', 'aria-expanded': 'false', 'aria-controls': 'hw-panel',
    'data-testid': 'hw-launcher'
  }, [el('span', { className: 'hw-launcher-icon', 'aria-hidden': 'true' }), launcherText, unread]);

  var closeButton = el('button', { type: 'button', className: 'hw-close', 'aria-label': t.close, 'data-testid': 'hw-close' },
    [el('span', { 'aria-hidden': 'true', text: '×' })]);
  var status = el('p', { className: 'hw-status', role: 'status', 'data-testid': 'hw-status' });
  var log = el('div', {
    className: 'hw-log', role: 'log', 'aria-live': 'polite', 'aria-label': t.log, tabindex: '0', 'data-testid': 'hw-log'
  });
  var empty = el('p', { className: 'hw-empty', text: t.empty });
  var typing = el('div', { className: 'hw-typing', hidden: true, 'data-testid': 'hw-typing' }, [
    el('span', { className: 'hw-dot', 'aria-hidden': 'true' }), el('span', { className: 'hw-dot', 'aria-hidden': 'true' }),
    el('span', { className: 'hw-dot', 'aria-hidden': 'true' }), el('span', { className: 'hw-sr', text: t.typing })
  ]);
  var input = el('textarea', {
    id: 'hw-input', className: 'hw-input', rows: '1', maxlength: String(MAX_CHARS), placeholder: t.placeholder,
    autocomplete: 'off', 'data-testid': 'hw-input'
  });
  var sendButton = el('button', { type: 'submit', className: 'hw-send', 'aria-label': t.send, 'data-testid': 'hw-send' },
    [el('span', { 'aria-hidden': 'true', className: 'hw-send-icon' })]);
  var form = el('form', { className: 'hw-form', novalidate: 'novalidate' }, [
    el('label', { 'for': 'hw-input', className: 'hw-sr', text: t.input }), input, sendButton
  ]);
  var panel = el('section', {
    id: 'hw-panel', className: 'hw-panel', role: 'dialog', 'aria-labelledby': 'hw-title', 'aria-describedby': 'hw-subtitle',
    lang: lang, hidden: true, 'data-testid': 'hw-panel'
  }, [
    el('header', { className: 'hw-header' }, [
      el('div', { className: 'hw-heading' }, [
        el('h2', { id: 'hw-title', className: 'hw-title', text: t.title }),
        el('p', { id: 'hw-subtitle', className: 'hw-subtitle', text: t.subtitle })
      ]),
      closeButton
    ]),
    status, log, typing, form
  ]);
  var wrapper = el('div', { className: 'hw-root', lang: lang }, [launcher, panel]);
  root.appendChild(stylesheet);
  root.appendChild(wrapper);

  // ---- open / close / keyboard ----------------------------------------------------------------
  function openPanel(focus) {
    state.open = true;
    panel.hidden = false;
    wrapper.classList.add('hw-open');
    launcher.setAttribute('aria-expanded', 'true');
    unread.hidden = true;
    sessionFlag(OPEN_KEY, true);
    scrollToEnd();
    if (focus !== false) input.focus();
  }
  function closePanel() {
    state.open = false;
    panel.hidden = true;
    wrapper.classList.remove('hw-open');
    launcher.setAttribute('aria-expanded', 'false');
    sessionFlag(OPEN_KEY, false);
    launcher.focus();
  }
  launcher.addEventListener('click', function () { if (state.open) closePanel(); else openPanel(); });
  closeButton.addEventListener('click', closePanel);
  panel.addEventListener('keydown', function (event) {
    if (event.key === 'Escape') { event.preventDefault(); closePanel(); }
  });
  input.addEventListener('keydown', function (event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', autosize);
  form.addEventListener('submit', function (event) { event.preventDefault(); submit(); });

  function autosize() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 120) + 'px';
  }
  function submit() {
    var text = input.value.trim();
    if (!text) return;
    input.value = '';
    autosize();
    send(text.slice(0, MAX_CHARS), null);
    input.focus();
  }

  // ---- conversation model ------------------------------------------------------------------------
  function norm(text) { return String(text || '').replace(/\s+/g, ' ').trim(); }

  function titleOf(text) {
    var titles = load(TITLES_KEY, {}) || {};
    return titles[text] || text;
  }
  function rememberTitle(payload, title) {
    if (payload === title) return;
    var titles = load(TITLES_KEY, {}) || {};
    titles[payload] = title;
    var names = Object.keys(titles);
    if (names.length > 50) delete titles[names[0]];
    save(TITLES_KEY, titles);
  }

  /* "A person joined" notices come as bot messages with metadata.event = agent_joined; the
     transcript keeps only their text, so the texts seen live are remembered to show them the same
     way after a reload. */
  function rememberNotice(text, name) {
    var notices = load(NOTICES_KEY, {}) || {};
    notices[norm(text)] = name;
    var texts = Object.keys(notices);
    if (texts.length > 20) delete notices[texts[0]];
    save(NOTICES_KEY, notices);
  }

  function lineToItem(line, notices) {
    var from = line.from === 'agent' || line.from === 'customer' ? line.from : 'bot';
    var text = String(line.text || '');
    var item = {
      from: from, text: from === 'customer' ? titleOf(text) : text, match: text,
      agentName: line.agent_name || null, buttons: null
    };
    if (from === 'bot' && Object.prototype.hasOwnProperty.call(notices, norm(text))) {
      item.from = 'joined';
      item.agentName = notices[norm(text)];
    }
    return item;
  }

  /* A notice missed while offline: a bot line naming the agent whose first message follows it. */
  function markMissedNotices(items) {
    items.forEach(function (item, index) {
      if (item.from !== 'bot') return;
      for (var next = index + 1; next < items.length && items[next].from === 'customer'; next++) { /* skip */ }
      var agent = items[next];
      if (agent && agent.from === 'agent' && agent.agentName && item.text.indexOf(agent.agentName) >= 0) {
        item.from = 'joined';
        item.agentName = agent.agentName;
      }
    });
  }

  function matches(line, item) {
    return line.from === item.from && norm(line.match) === norm(item.match);
  }

  /* A transcript fetch: the service's lines are the truth. Live items it already holds are
     dropped (matched in order against the lines that are new since the last fetch); missed
     messages (sent while the connection was down) appear in their place. */
  function applyHistory(lines) {
    if (!Array.isArray(lines) || lines.length < state.history.length) return;
    var known = state.history.length;
    var notices = load(NOTICES_KEY, {}) || {};
    var fresh = lines.map(function (line) { return lineToItem(line, notices); });
    markMissedNotices(fresh);
    for (var i = 0; i < known; i++) {
      fresh[i].buttons = state.history[i].buttons;
      fresh[i].text = state.history[i].text;
    }
    var cursor = known;
    var remaining = [];
    state.pending.forEach(function (item) {
      if ((item.from === 'joined' && !item.match) || item.state === 'queued') { remaining.push(item); return; }
      for (var j = cursor; j < fresh.length; j++) {
        if (matches(fresh[j], item)) {
          fresh[j].buttons = item.buttons;
          fresh[j].text = item.text;
          cursor = j + 1;
          return;
        }
      }
      remaining.push(item);
    });
    var newAgents = fresh.slice(known).filter(function (line) { return line.from === 'agent'; })
      .map(function (line) { return line.agentName; });
    state.pending = remaining.filter(function (item) {
      return !(item.from === 'joined' && newAgents.indexOf(item.agentName) >= 0);
    });
    // Quick replies of the last bot message survive a reload.
    var replies = load(REPLIES_KEY, null);
    var last = fresh[fresh.length - 1];
    if (replies && last && !last.buttons && last.from !== 'customer' && norm(last.match) === norm(replies.text)) {
      last.buttons = replies.buttons;
    }
    state.history = fresh;
    render();
  }

  /* Has anyone (this tab or another) written in this session yet? If not there is no history
     and the service would only answer 404. */
  function used() {
    var stored = load(STORE_KEY, null);
    return !!(session.used || (stored && stored.id === session.id && stored.used));
  }

  function fetchHistory() {
    if (!cfg.historyUrl || !window.fetch || !used()) return Promise.resolve();
    var id = session.id;
    // The session id is the conversation's secret: in a header, never in the URL (URLs end up in
    // the access logs of every proxy on the way).
    var url = cfg.historyUrl + '/public/conversations/transcript';
    return window.fetch(url, {
      credentials: 'omit', cache: 'no-store', mode: 'cors', referrerPolicy: 'no-referrer',
      headers: { Accept: 'application/json', 'X-Helder-Session': id }
    })
      .then(function (response) {
        if (response.status === 404) return [];
        if (!response.ok) throw new Error('history ' + response.status);
        return response.json();
      })
      .then(function (lines) { if (id === session.id) applyHistory(lines); })
      .catch(function () { /* the service is down: the live conversation still works */ });
  }

  // ---- rendering ---------------------------------------------------------------------------------
  function fmt(template, name) { return template.replace('{name}', name || t.agent); }

  /* The view: the items plus system lines ("<name> joined" before an agent's first message of a
     turn, "back with the assistant" before the bot's first message after agents). */
  function view() {
    var items = state.history.concat(state.pending);
    var nodes = [];
    var agent = null;
    var counts = {};
    function key(base) { counts[base] = (counts[base] || 0) + 1; return base + '#' + counts[base]; }
    items.forEach(function (item) {
      if (item.from === 'joined') {
        if (agent !== item.agentName) nodes.push({ kind: 'system', text: fmt(t.joined, item.agentName), key: key('j:' + item.agentName) });
        agent = item.agentName || t.agent;
        return;
      }
      if (item.from === 'agent') {
        var name = item.agentName || t.agent;
        if (agent !== name) nodes.push({ kind: 'system', text: fmt(t.joined, name), key: key('j:' + name) });
        agent = name;
      } else if (item.from === 'bot' && agent) {
        nodes.push({ kind: 'system', text: t.back, key: key('back') });
        agent = null;
      }
      nodes.push({ kind: item.from, item: item, key: key(item.from + ':' + (item.agentName || '') + ':' + norm(item.text)) });
    });
    // Quick replies only on the last message, and only until the customer answers.
    var last = nodes[nodes.length - 1];
    state.agent = agent;
    return { nodes: nodes, active: last && last.item && last.kind !== 'customer' && last.item.buttons ? last : null };
  }

  function linkify(parent, text) {
    var pattern = /https?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]']/g;
    var at = 0;
    var match;
    while ((match = pattern.exec(text))) {
      if (match.index > at) parent.appendChild(document.createTextNode(text.slice(at, match.index)));
      parent.appendChild(el('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer', text: match[0] }));
      at = match.index + match[0].length;
    }
    if (at < text.length) parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function messageNode(node) {
    if (node.kind === 'system') {
      return el('p', { className: 'hw-system', 'data-testid': 'hw-system', text: node.text });
    }
    var item = node.item;
    var who = node.kind === 'customer' ? t.you : node.kind === 'agent' ? (item.agentName || t.agent) : t.bot;
    var bubble = el('div', { className: 'hw-bubble' });
    linkify(bubble, item.text);
    var children = [];
    if (node.kind === 'agent') {
      children.push(el('span', { className: 'hw-name', 'data-testid': 'hw-agent-name', text: who }));
      children.push(el('span', { className: 'hw-sr', text: ' (' + t.agent.toLowerCase() + '): ' }));
    } else {
      children.push(el('span', { className: 'hw-sr', text: who + ': ' }));
    }
    children.push(bubble);
    if (item.state === 'queued') children.push(el('span', { className: 'hw-note', text: t.queued }));
    if (item.state === 'failed') {
      var retry = el('button', { type: 'button', className: 'hw-retry', text: t.retry });
      retry.addEventListener('click', function () { item.state = 'sent'; emit(item); render(); });
      children.push(el('span', { className: 'hw-note', text: t.failed + ' ' }, [retry]));
    }
    return el('div', {
      className: 'hw-msg hw-msg--' + node.kind + (item.state === 'queued' || item.state === 'failed' ? ' hw-msg--unsent' : ''),
      'data-from': node.kind, 'data-testid': 'hw-message'
    }, children);
  }

  function repliesNode(item) {
    var group = el('div', { className: 'hw-replies', role: 'group', 'aria-label': t.replies, 'data-testid': 'hw-replies' });
    item.buttons.forEach(function (button) {
      var reply = el('button', { type: 'button', className: 'hw-reply', 'data-testid': 'hw-reply', text: button.title });
      reply.addEventListener('click', function () {
        send(String(button.title), String(button.payload || button.title));
        input.focus();
      });
      group.appendChild(reply);
    });
    return group;
  }

  function render() {
    var current = view();
    var keys = current.nodes.map(function (node) {
      var shown = node.item && (node.item.state === 'queued' || node.item.state === 'failed') ? '@' + node.item.state : '';
      return node.key + shown;
    });
    var same = 0;
    while (same < state.rendered.length && same < keys.length && state.rendered[same] === keys[same]) same++;
    var messages = log.querySelectorAll(':scope > .hw-msg, :scope > .hw-system');
    for (var i = messages.length - 1; i >= same; i--) log.removeChild(messages[i]);
    var old = log.querySelector('.hw-replies');
    if (old) old.parentNode.removeChild(old);
    for (var j = same; j < current.nodes.length; j++) log.appendChild(messageNode(current.nodes[j]));
    state.rendered = keys;
    if (current.active) {
      var all = log.querySelectorAll(':scope > .hw-msg, :scope > .hw-system');
      all[all.length - 1].appendChild(repliesNode(current.active.item));
    }
    if (current.nodes.length) { if (empty.parentNode) empty.parentNode.removeChild(empty); } else if (!empty.parentNode) log.appendChild(empty);
    scrollToEnd();
  }

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function setTyping(on) {
    clearTimeout(typingTimer);
    state.typing = on;
    typing.hidden = !on;
    if (on) typingTimer = setTimeout(function () { setTyping(false); }, TYPING_MS);
    scrollToEnd();
  }

  function setStatus(text) {
    status.textContent = text || '';
    status.hidden = !text;
  }

  // ---- sending -------------------------------------------------------------------------------------
  function freshToken() {
    if (!cfg.token || !cfg.tokenUrl || !window.fetch) return Promise.resolve();
    var exp = claims(cfg.token).exp;
    if (!exp || exp * 1000 - Date.now() > 120000) return Promise.resolve();
    return window.fetch(cfg.tokenUrl, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (response) { return response.ok ? response.json() : { token: null }; })
      .then(function (body) { cfg.token = body.token || null; })
      .catch(function () { /* keep the old one; the assistant asks who you are if it has expired */ });
  }

  function metadata() {
    var data = { locale: cfg.locale };
    if (cfg.token) data.shop_token = cfg.token;
    return data;
  }

  function emit(item) {
    sendChain = sendChain.then(freshToken).then(function () {
      if (!state.confirmed || !state.socket) { item.state = 'queued'; render(); return; }
      item.state = 'sent';
      state.socket.emit('user_uttered', { message: item.match, session_id: session.id, customData: metadata() }, function () {
        item.state = 'delivered';
        if (state.typing && item === lastCustomerItem()) setTyping(false); // processed without a reply (a person has it)
        // A reply may have come before the acknowledgement; nothing more to do.
      });
    });
  }

  function lastCustomerItem() {
    for (var i = state.pending.length - 1; i >= 0; i--) if (state.pending[i].from === 'customer') return state.pending[i];
    return null;
  }

  function send(text, payload) {
    var item = { id: ++state.seq, from: 'customer', text: text, match: payload || text, state: state.confirmed ? 'sent' : 'queued' };
    if (payload) rememberTitle(payload, text);
    save(REPLIES_KEY, null);
    state.pending.push(item);
    render();
    if (!state.agent && state.confirmed) setTyping(true);
    emit(item);
    touch();
  }

  function touch() {
    session.at = Date.now();
    session.used = true;
    save(STORE_KEY, session);
  }

  // ---- receiving -----------------------------------------------------------------------------------
  function onBotMessage(message) {
    if (!message || typeof message !== 'object') return;
    var meta = message.metadata || {};
    setTyping(false);
    if (meta.event === 'agent_joined') {
      var joined = norm(message.text) ? message.text : null;
      var who = meta.agent_name || meta.agent_id || t.agent;
      if (joined) rememberNotice(joined, who);
      state.pending.push({ id: ++state.seq, from: 'joined', agentName: who, text: joined, match: joined });
      render();
      notify();
      return;
    }
    var text = typeof message.text === 'string' ? message.text : '';
    var buttons = Array.isArray(message.buttons) ? message.buttons : Array.isArray(message.quick_replies) ? message.quick_replies : [];
    buttons = buttons.filter(function (b) { return b && b.title; });
    if (!norm(text)) return;
    var agent = !!meta.agent_id;
    var item = {
      id: ++state.seq, from: agent ? 'agent' : 'bot', text: text, match: text,
      agentName: agent ? (meta.agent_name || String(meta.agent_id)) : null, buttons: buttons.length ? buttons : null
    };
    save(REPLIES_KEY, item.buttons ? { text: text, buttons: item.buttons } : null);
    state.pending.push(item);
    render();
    notify();
  }

  function notify() {
    if (!state.open) unread.hidden = false;
  }

  // ---- the socket ----------------------------------------------------------------------------------
  function flushQueued() {
    state.pending.forEach(function (item) { if (item.state === 'queued') emit(item); });
  }

  function onSessionConfirm(id) {
    var reconnect = state.everConfirmed;
    if (typeof id === 'string' && id !== session.id) {
      // The server refused our id (malformed): start over with the one it gave.
      session = { id: id, sub: session.sub, at: Date.now(), used: false };
      save(STORE_KEY, session);
      state.history = [];
    }
    state.confirmed = true;
    state.everConfirmed = true;
    setStatus('');
    flushQueued();
    // Whatever was said while we were away (or between the first fetch and joining the room).
    fetchHistory().then(function () {
      if (!reconnect) return;
      setTimeout(function () {
        fetchHistory().then(function () {
          state.pending.forEach(function (item) { if (item.state === 'uncertain') item.state = 'failed'; });
          render();
        });
      }, 2000);
    });
  }

  function connect(io) {
    if (typeof io !== 'function') { setStatus(t.reconnecting); return; }
    // A websocket first: it stays on the one Rasa process that accepted it, so `make run`'s Rasa
    // workers (or replicas without sticky sessions) serve it; HTTP long-polling only where a
    // proxy blocks websockets (its requests need sticky sessions, see the README).
    var socket = io(cfg.rasaUrl, {
      path: cfg.socketPath, transports: ['websocket', 'polling'], tryAllTransports: true,
      reconnection: true, reconnectionDelay: 1000, reconnectionDelayMax: 8000, timeout: 10000
    });
    state.socket = socket;
    socket.on('connect', function () {
      socket.emit('session_request', { session_id: session.id });
    });
    socket.on('session_confirm', onSessionConfirm);
    socket.on('bot_uttered', onBotMessage);
    socket.on('disconnect', function (reason) {
      if (reason === 'io server disconnect') socket.connect(); // the server closed it: socket.io would not retry
      state.confirmed = false;
      state.pending.forEach(function (item) { if (item.state === 'sent') item.state = 'uncertain'; });
      setTyping(false);
      setStatus(t.reconnecting);
    });
    socket.on('connect_error', function () { setStatus(state.everConfirmed ? t.reconnecting : t.connecting); });
  }

  /* Our own copy of socket.io-client v4 (the page may have another version as window.io). */
  function loadSocketIo(callback) {
    var previous = window.io;
    var tag = document.createElement('script');
    tag.src = base + 'vendor/socket.io.min.js';
    tag.async = true;
    tag.addEventListener('load', function () {
      var ours = window.io;
      if (previous !== undefined) window.io = previous; // leave the page's own copy alone
      callback(ours);
    });
    tag.addEventListener('error', function () { setStatus(t.reconnecting); });
    document.head.appendChild(tag);
  }

  // ---- start ---------------------------------------------------------------------------------------
  window.HelderWidget = {
    open: function () { openPanel(); },
    close: closePanel,
    get sessionId() { return session.id; }
  };

  function start() {
    document.body.appendChild(host);
    setStatus(t.connecting);
    render();
    if (sessionFlag(OPEN_KEY)) openPanel(false);
    // History first, then the socket: what arrives live is newer than what the first fetch had.
    var history = fetchHistory();
    loadSocketIo(function (io) { history.then(function () { connect(io); }); });
  }

  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
})();
