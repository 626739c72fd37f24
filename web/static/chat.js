// The Multichat browser client: several rooms over one WebSocket.
// Speaks the multichat example's protocol (join, leave, send) and its
// extensions (rooms, history, own, since, edit and delete, presence,
// whispers). Every text from the server is
// inserted with textContent, never as HTML.

const ERROR_TEXT = {
  ROOM_INVALID: 'That room does not exist.',
  ROOM_ACCESS_DENIED: 'You may not enter that room.',
  USER_HAS_TO_LOGIN: 'Please log in again.',
  BAD_REQUEST: 'The server did not understand that request.',
  UNKNOWN_COMMAND: 'The server does not know that command.',
  MESSAGE_EMPTY: 'Type a message first.',
  MESSAGE_TOO_LONG: 'That message is too long.',
  MESSAGE_INVALID: 'That message no longer exists.',
  NOT_ALLOWED: 'You are not allowed to do that.',
  USER_INVALID: 'There is no such user.',
  RATE_LIMITED: 'You are sending too fast; wait a moment.',
  SERVER_BUSY: 'The server is busy; try again in a moment.',
  TOO_MANY_ROOMS: 'You have too many rooms open; leave one first.',
};

// The close code of a socket whose login is over (MC_CLOSE_SESSION_ENDED in
// common/wire.h): logout, expiry, deactivation, a new password.
const CLOSE_SESSION_ENDED = 4001;

const state = {
  socket: null,
  rooms: new Map(),      // id -> {id, title, staff_only}
  panes: new Map(),      // id -> {el, list, lastId, firstId, seen:Set, loadingOlder, truncatedTop}
  wanted: new Set(),     // rooms the user has open, rejoined after a reconnect
  whispers: new Map(),   // username -> {el, list, seen:Set}
  lastWhisper: 0,        // the newest whisper id shown, asked after on reconnect
  outbox: new Map(),     // client_id -> {kind, room, id, to, text, li, timer}: done, not yet seen done
  attempts: 0,
  loggingOut: false,     // the logout form is on its way: the page is leaving
};

const $ = (sel, root = document) => root.querySelector(sel);

function setConnection(text, online) {
  const el = $('#connection');
  el.textContent = text;
  el.classList.toggle('online', online);
}

function notify(text) {
  const box = document.createElement('div');
  box.className = 'notice-box';
  box.textContent = text;
  $('#notices').append(box);
  setTimeout(() => box.remove(), 6000);
}

// Names a message, so that the server stores and delivers it once even if
// its worker dies and the command is handled again.
function newClientId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function send(obj) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    paced(state.socket, obj);
    return true;
  }
  notify('Not connected; trying to reconnect…');
  return false;
}

// ---- Pacing: within the socket's budget ----
// The interface lets a socket send so many frames a second (by default 20,
// in bursts of 60: docs/protocol.md). A person typing never comes near it,
// but a reconnect may: a join per open room, then what the outbox holds. So
// every frame goes out through paced: at most PACE_FRAMES per PACE_MS, the
// rest queued in order, for that socket only, each text once. Over a
// tighter budget the interface answers RATE_LIMITED, naming no command, and
// drops what follows unanswered, whatever it was: the page sends nothing
// for PACE_MS, then asks for what it may have missed as after a resync,
// which sends the outbox again.
const PACE_FRAMES = 20;
const PACE_MS = 1500;
const pace = {socket: null, queue: [], since: 0, sent: 0, timer: null};

function paced(socket, obj) {
  if (pace.socket !== socket) {
    clearTimeout(pace.timer);
    Object.assign(pace, {socket, queue: [], since: 0, sent: 0, timer: null});
  }
  const text = JSON.stringify(obj);
  if (!pace.queue.includes(text)) pace.queue.push(text);
  drain();
}

function drain() {
  const now = Date.now();
  if (now - pace.since >= PACE_MS) {
    pace.since = now;
    pace.sent = 0;
  }
  while (pace.queue.length && pace.sent < PACE_FRAMES && pace.socket.readyState === WebSocket.OPEN) {
    pace.socket.send(pace.queue.shift());
    pace.sent++;
  }
  if (pace.queue.length && !pace.timer && pace.socket.readyState === WebSocket.OPEN) {
    pace.timer = setTimeout(() => {
      pace.timer = null;
      drain();
    }, pace.since + PACE_MS - now);
  }
}

function rateLimited() {
  const socket = state.socket;
  if (pace.socket !== socket) return;
  clearTimeout(pace.timer);
  pace.since = Date.now();
  pace.sent = PACE_FRAMES;
  pace.timer = setTimeout(() => {
    pace.timer = null;
    drain();
    if (state.socket === socket && socket.readyState === WebSocket.OPEN) catchUp(socket);
  }, PACE_MS);
}

// ---- The outbox: what the person did, until the server has it ----
// Every message typed, edit, deletion and whisper gets a client_id and
// stays here, shown as pending, until its effect comes back: a message's
// own copy (live, or in the history of a join); the edited, deleted or
// whisper event that the server sends the socket that asked, naming the
// client_id (each time it is asked); or an error naming the client_id. A
// deletion is also done when anyone deletes the message. After a reconnect
// or a resync each is sent again, with the same client_id, once what was
// missed has been asked for: a room's entries when the room is joined again
// (with since), whispers when the whispers since the last one shown have
// come; after SERVER_BUSY or RATE_LIMITED, a moment later. The server does
// a client_id once: nothing is lost, nothing is shown or done twice.
const RETRY_MS = 1500;

function pendingElement(text) {
  const li = document.createElement('li');
  li.className = 'message own pending';
  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = 'sending…';
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = document.body.dataset.username;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(meta, author, body);
  return li;
}

// Puts an entry in the outbox ({kind, room, id, to, text, li}: what its
// kind needs) and sends it now if the socket is open.
function enqueue(entry) {
  const cid = newClientId();
  state.outbox.set(cid, {...entry, timer: null});
  post(cid);
  return cid;
}

function typeMessage(room, text) {
  const li = pendingElement(text);
  const pane = state.panes.get(room);
  if (pane) {
    pane.list.append(li);
    pane.list.scrollTop = pane.list.scrollHeight;
  }
  enqueue({kind: 'send', room, text, li});
}

function typeWhisper(to, list, text) {
  const li = pendingElement(text);
  list.append(li);
  list.scrollTop = list.scrollHeight;
  enqueue({kind: 'whisper', to, text, li});
}

function requestEdit(room, id, text) {
  enqueue({kind: 'edit', room, id, text});
  showPending(room, id);
}

function requestDelete(room, id) {
  enqueue({kind: 'delete', room, id});
  showPending(room, id);
}

// The command that carries an outbox entry.
function commandOf(cid, e) {
  if (e.kind === 'send') return {command: 'send', room: e.room, message: e.text, client_id: cid};
  if (e.kind === 'edit') return {command: 'edit', room: e.room, id: e.id, message: e.text, client_id: cid};
  if (e.kind === 'delete') return {command: 'delete', room: e.room, id: e.id, client_id: cid};
  return {command: 'whisper', to: e.to, message: e.text, client_id: cid};
}

// Sends an outbox entry now if the socket is open (else after the
// reconnect, once what was missed has been asked for), as its pace allows.
function post(cid) {
  const e = state.outbox.get(cid);
  if (e && state.socket && state.socket.readyState === WebSocket.OPEN) {
    paced(state.socket, commandOf(cid, e));
  }
}

function retryLater(cid) {
  const e = state.outbox.get(cid);
  if (!e || e.timer) return;
  e.timer = setTimeout(() => {
    e.timer = null;
    post(cid);
  }, RETRY_MS);
}

// The line of message id in room, or null.
function messageLine(room, id) {
  const pane = state.panes.get(room);
  return pane ? messageById(pane, id) : null;
}

// Shows a message's line as the outbox has it: the text of its newest
// pending edit, else what the server said last; marked while an edit or a
// deletion of it waits.
function showPending(room, id) {
  const li = messageLine(room, id);
  const text = li && $('.text', li);
  if (!text) return; // not shown, or deleted
  let shown = li.confirmed;
  let label = null;
  for (const e of state.outbox.values()) {
    if (e.room !== room || e.id !== id) continue;
    if (e.kind === 'edit') shown = e.text;
    label = e.kind === 'delete' ? 'deleting…' : label || 'saving…';
  }
  text.textContent = shown;
  li.classList.toggle('pending', label !== null);
  let mark = $('.state', li);
  if (label && !mark) {
    mark = document.createElement('span');
    mark.className = 'state';
    li.append(mark);
  }
  if (label) mark.textContent = label;
  else if (mark) mark.remove();
}

// The entry took effect (why is undefined) or was refused for good (why
// says why): a message's or whisper's pending line goes, or says it was
// not sent; a message's line shows what the server has, and a refused edit
// or deletion is told.
function settle(cid, why) {
  const e = state.outbox.get(cid);
  clearTimeout(e.timer);
  state.outbox.delete(cid);
  if (e.li) {
    if (!why) return e.li.remove();
    e.li.classList.add('failed');
    $('.meta', e.li).textContent = 'not sent';
    e.li.title = why;
    return;
  }
  showPending(e.room, e.id);
  if (why) notify(`${e.kind === 'edit' ? 'Not saved' : 'Not deleted'}: ${why}`);
}

// An event that names an entry by its client_id: the copy for the socket
// that sent it, which the server sends each time it is sent.
function effectSeen(cid) {
  if (cid && state.outbox.has(cid)) settle(cid);
}

// A message of the person's own came back in room (its copy names no
// client_id): the oldest pending one with its text is stored.
function delivered(room, m) {
  if (!m.own && m.username !== document.body.dataset.username) return;
  for (const [cid, e] of state.outbox) {
    if (e.kind === 'send' && e.room === room && e.text === m.message) return settle(cid);
  }
}

// The room is joined (again): its messages, edits and deletions still
// pending go out again; and after the whispers missed, the whispers.
function resendPending(room) {
  for (const [cid, e] of state.outbox) if (e.room === room) post(cid);
}

function resendWhispers() {
  for (const [cid, e] of state.outbox) if (e.kind === 'whisper') post(cid);
}

// An error about an outbox entry, named by its client_id: sent again
// later, or refused. Returns whether it was one.
function outboxFailed(data) {
  if (!data.client_id || !state.outbox.has(data.client_id)) return false;
  if (data.error === 'SERVER_BUSY' || data.error === 'RATE_LIMITED') retryLater(data.client_id);
  else settle(data.client_id, ERROR_TEXT[data.error] || data.error);
  return true;
}

function renderRoomList() {
  const list = $('#room-list');
  list.replaceChildren();
  for (const room of state.rooms.values()) {
    const li = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room-link';
    button.dataset.roomId = room.id;
    button.classList.toggle('joined', state.panes.has(room.id));
    button.setAttribute('aria-pressed', state.panes.has(room.id) ? 'true' : 'false');
    button.title = room.title;
    const title = document.createElement('span');
    title.className = 'room-title';
    title.textContent = room.title;
    button.append(title);
    if (room.staff_only) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'staff';
      button.append(badge);
    }
    button.addEventListener('click', () => toggleRoom(room.id));
    li.append(button);
    list.append(li);
  }
}

function toggleRoom(id) {
  if (state.panes.has(id)) {
    state.wanted.delete(id);
    send({command: 'leave', room: id});
  } else {
    state.wanted.add(id);
    send({command: 'join', room: id});
  }
}

function formatTime(ms) {
  if (typeof ms !== 'number') return '';
  return new Date(ms).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'});
}

function isStaff() {
  return document.body.dataset.staff === 'true';
}

function editedMark() {
  const mark = document.createElement('span');
  mark.className = 'edited';
  mark.textContent = '(edited)';
  return mark;
}

function messageElement(m, roomId) {
  const li = document.createElement('li');
  li.className = 'message';
  const own = m.own || m.username === document.body.dataset.username;
  if (own) li.classList.add('own');
  if (m.id !== undefined) li.dataset.id = m.id;
  const time = document.createElement('time');
  time.className = 'meta';
  time.textContent = formatTime(m.ts);
  if (typeof m.ts === 'number') time.dateTime = new Date(m.ts).toISOString();
  const author = document.createElement('span');
  author.className = 'author';
  author.textContent = m.username;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = m.message;
  li.confirmed = m.message; // the text the server has; an edit pending shows its own
  li.append(time, author, text);
  if (m.edited) li.append(editedMark());
  // Authors change their own messages; staff any. The server checks again.
  if (m.id !== undefined && roomId !== undefined && (own || isStaff())) {
    const actions = document.createElement('span');
    actions.className = 'actions';
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.className = 'msg-edit';
    edit.textContent = 'Edit';
    edit.addEventListener('click', () => startEdit(li, roomId, m.id));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'msg-delete';
    del.textContent = 'Delete';
    del.addEventListener('click', () => requestDelete(roomId, m.id));
    actions.append(edit, del);
    li.append(actions);
  }
  return li;
}

// Turns a message's text into a field: Enter saves, Escape gives up.
function startEdit(li, roomId, id) {
  if ($('.edit-text', li)) return;
  const text = $('.text', li);
  li.classList.add('editing');
  const form = document.createElement('form');
  form.className = 'edit';
  const input = document.createElement('input');
  input.className = 'edit-text';
  input.maxLength = 4096;
  input.value = text.textContent;
  input.setAttribute('aria-label', 'Edit message');
  form.append(input);
  text.hidden = true;
  text.after(form);
  const stop = () => { form.remove(); text.hidden = false; li.classList.remove('editing'); };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) return notify(ERROR_TEXT.MESSAGE_EMPTY);
    stop();
    requestEdit(roomId, id, input.value);
  });
  input.addEventListener('keydown', (event) => { if (event.key === 'Escape') stop(); });
  input.focus();
}

function messageById(pane, id) {
  return pane.list.querySelector(`.message[data-id="${Number(id)}"]`);
}

function noticeElement(text) {
  const li = document.createElement('li');
  li.className = 'notice';
  li.textContent = text;
  return li;
}

function scrolledToBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

// Adds messages to a pane once each (by id), at the end or the top.
function addMessages(pane, messages, atTop) {
  const stick = scrolledToBottom(pane.list);
  const fresh = messages.filter((m) => m.id === undefined || !pane.seen.has(m.id));
  const nodes = fresh.map((m) => {
    if (m.id !== undefined) {
      pane.seen.add(m.id);
      pane.lastId = Math.max(pane.lastId, m.id);
      pane.firstId = pane.firstId === null ? m.id : Math.min(pane.firstId, m.id);
    }
    return messageElement(m, pane.id);
  });
  if (atTop) {
    const before = pane.list.scrollHeight;
    pane.list.prepend(...nodes);
    pane.list.scrollTop += pane.list.scrollHeight - before;
  } else {
    pane.list.append(...nodes);
    if (stick || atTop === undefined) pane.list.scrollTop = pane.list.scrollHeight;
  }
}

// A long title is cut short on screen; the whole of it shows on hover.
function setPaneTitle(el, title) {
  const h = $('.pane-title', el);
  h.textContent = title;
  h.title = title;
}

function openPane(id, title) {
  let pane = state.panes.get(id);
  if (pane) {
    setPaneTitle(pane.el, title);
    return pane;
  }
  const el = $('#pane-template').content.firstElementChild.cloneNode(true);
  el.dataset.roomId = id;
  setPaneTitle(el, title);
  const input = $('.send-text', el);
  input.id = `send-${id}`;
  $('label', el).htmlFor = input.id;
  $('.pane-close', el).addEventListener('click', () => toggleRoom(id));
  $('.send', el).addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return notify(ERROR_TEXT.MESSAGE_EMPTY);
    typeMessage(id, text);
    input.value = '';
  });
  pane = {id, el, list: $('.messages', el), members: new Set(), lastId: 0, firstId: null, seen: new Set(),
          loadingOlder: false, noOlder: false};
  pane.list.addEventListener('scroll', () => {
    if (pane.list.scrollTop === 0 && !pane.loadingOlder && !pane.noOlder && pane.firstId) {
      pane.loadingOlder = true;
      send({command: 'history', room: id, before: pane.firstId, limit: 50});
    }
  });
  state.panes.set(id, pane);
  $('#empty').hidden = true;
  $('#panes').append(el);
  el.scrollIntoView({block: 'nearest'}); // on a phone, panes stack: show the new one
  renderRoomList();
  return pane;
}

// The room's member list: each name once, sorted; a click on another
// person's name opens a whisper pane with them. One's own name is a plain
// chip, marked as oneself (a disabled button would look greyed, as if away).
function renderMembers(pane) {
  const list = $('.members', pane.el);
  list.replaceChildren();
  for (const name of [...pane.members].sort()) {
    const li = document.createElement('li');
    const me = name === document.body.dataset.username;
    const chip = document.createElement(me ? 'span' : 'button');
    chip.className = me ? 'member me' : 'member';
    chip.dataset.username = name;
    chip.textContent = name;
    if (me) {
      chip.title = 'You';
    } else {
      chip.type = 'button';
      chip.title = `Whisper to ${name}`;
      chip.addEventListener('click', () => openWhisper(name, true));
    }
    li.append(chip);
    list.append(li);
  }
}

// A whisper pane per person: opened from a member's name, or by a whisper
// that arrives. Closing it only hides it; whispers are kept on the server.
function openWhisper(name, focus) {
  let w = state.whispers.get(name);
  if (!w) {
    const el = $('#pane-template').content.firstElementChild.cloneNode(true);
    el.classList.add('whisper');
    el.dataset.whisper = name;
    setPaneTitle(el, `Whispers with ${name}`);
    $('.members', el).remove();
    const input = $('.send-text', el);
    input.id = `whisper-${name}`;
    input.placeholder = `Whisper to ${name}…`;
    $('label', el).htmlFor = input.id;
    const close = $('.pane-close', el);
    close.setAttribute('aria-label', 'Close whispers');
    close.addEventListener('click', () => {
      el.remove();
      state.whispers.delete(name);
      $('#empty').hidden = state.panes.size + state.whispers.size > 0;
    });
    $('.send', el).addEventListener('submit', (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim()) return notify(ERROR_TEXT.MESSAGE_EMPTY);
      typeWhisper(name, $('.messages', el), text);
      input.value = '';
    });
    w = {el, list: $('.messages', el), seen: new Set()};
    state.whispers.set(name, w);
    $('#empty').hidden = true;
    $('#panes').append(el);
  }
  if (focus) $('.send-text', w.el).focus();
  return w;
}

function addWhisper(m) {
  const me = document.body.dataset.username;
  const other = m.from === me ? m.to : m.from;
  const w = openWhisper(other, false);
  if (w.seen.has(m.whisper)) return;
  w.seen.add(m.whisper);
  state.lastWhisper = Math.max(state.lastWhisper, m.whisper);
  w.list.append(messageElement({id: m.whisper, ts: m.ts, username: m.from, message: m.message,
                                own: m.from === me}));
  w.list.scrollTop = w.list.scrollHeight;
}

function closePane(id, why) {
  const pane = state.panes.get(id);
  if (!pane) return;
  pane.el.remove();
  state.panes.delete(id);
  $('#empty').hidden = state.panes.size + state.whispers.size > 0;
  if (why) notify(why);
  renderRoomList();
}

function roomTitle(id) {
  const room = state.rooms.get(id);
  return room ? room.title : `room ${id}`;
}

function onMessage(data) {
  if (data.resync === true) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) catchUp(state.socket);
  } else if (data.error && outboxFailed(data)) {
    // an entry of the outbox: sent again later, or marked as refused
  } else if (data.error) {
    const text = ERROR_TEXT[data.error] || `Error: ${data.error}`;
    if (data.error === 'RATE_LIMITED' && data.command === undefined) rateLimited();
    if (data.error === 'USER_HAS_TO_LOGIN') leaveIfSessionEnded();
    if (data.room !== undefined && data.error === 'ROOM_ACCESS_DENIED') {
      state.wanted.delete(String(data.room));
    }
    notify(data.room !== undefined ? `${roomTitle(String(data.room))}: ${text}` : text);
  } else if (typeof data.whisper === 'number') {
    addWhisper(data);
    effectSeen(data.client_id);
  } else if (Array.isArray(data.whispers)) {
    for (const w of data.whispers) addWhisper(w);
    resendWhispers();
  } else if (data.rooms) {
    state.rooms = new Map(data.rooms.map((r) => [String(r.id), r]));
    for (const id of [...state.panes.keys()]) {
      if (!state.rooms.has(id)) closePane(id, `${roomTitle(id)} is no longer available.`);
    }
    renderRoomList();
  } else if (data.join !== undefined) {
    const id = String(data.join);
    state.wanted.add(id);
    const pane = openPane(id, data.title);
    if (Array.isArray(data.history)) {
      addMessages(pane, data.history);
      for (const m of data.history) delivered(id, m);
    }
    resendPending(id);
    if (Array.isArray(data.members)) {
      pane.members = new Set(data.members);
      renderMembers(pane);
    }
    if (data.truncated) pane.list.prepend(noticeElement('Older messages were skipped.'));
  } else if (data.leave !== undefined) {
    const id = String(data.leave);
    const deliberate = !state.wanted.has(id);
    state.wanted.delete(id);
    closePane(id, deliberate ? null : `You left ${roomTitle(id)}.`);
  } else if (data.who !== undefined && Array.isArray(data.members)) {
    const pane = state.panes.get(String(data.who));
    if (pane) {
      pane.members = new Set(data.members);
      renderMembers(pane);
    }
  } else if (data.history !== undefined && Array.isArray(data.messages)) {
    const pane = state.panes.get(String(data.history));
    if (pane) {
      pane.loadingOlder = false;
      if (data.messages.length === 0) pane.noOlder = true;
      addMessages(pane, data.messages, true);
    }
  } else if (data.edited !== undefined && data.msg_type === undefined) {
    const room = String(data.room);
    const li = messageLine(room, data.edited);
    if (li && $('.text', li)) {
      li.confirmed = data.message;
      if (!$('.edited', li)) $('.text', li).after(editedMark());
    }
    effectSeen(data.client_id);
    showPending(room, data.edited);
  } else if (data.deleted !== undefined) {
    const room = String(data.room);
    const li = messageLine(room, data.deleted);
    if (li) {
      li.replaceChildren(noticeElement('message deleted').firstChild);
      li.className = 'message deleted';
    }
    // Whatever waited to change it is done with: the message is gone.
    for (const [cid, e] of state.outbox) if (e.room === room && e.id === data.deleted) settle(cid);
  } else if (data.room !== undefined) {
    const pane = state.panes.get(String(data.room));
    if (!pane) return;
    if (data.msg_type === 0 || data.msg_type === undefined) {
      addMessages(pane, [data], false);
      delivered(pane.id, data);
    } else {
      if (data.msg_type === 4) pane.members.add(data.username);
      if (data.msg_type === 5) pane.members.delete(data.username);
      if (data.msg_type === 4 || data.msg_type === 5) renderMembers(pane);
      const what = {4: 'joined', 5: 'left'}[data.msg_type];
      const text = what ? `${data.username} ${what}` : String(data.message ?? '');
      pane.list.append(noticeElement(text));
      if (scrolledToBottom(pane.list)) pane.list.scrollTop = pane.list.scrollHeight;
    }
  }
}

// The login page, then back here with the same rooms open.
function toLogin() {
  const back = state.wanted.size ? `/#room=${[...state.wanted].join(',')}` : '/';
  location.assign(`/accounts/login/?next=${encodeURIComponent(back)}`);
}

// Asks the server whether this page's session still holds: without one, /
// redirects to the login page. True or false; null when the server cannot
// say (it is down or restarting), and the page keeps retrying.
async function sessionValid() {
  try {
    const response = await fetch('/', {method: 'HEAD', redirect: 'manual', credentials: 'same-origin',
                                       cache: 'no-store'});
    if (response.type === 'opaqueredirect') return false;
    return response.ok ? true : null;
  } catch {
    return null;
  }
}

async function leaveIfSessionEnded() {
  if (await sessionValid() === false) {
    toLogin();
    return true;
  }
  return false;
}

// Asks for what was missed while away: whispers (the recent ones, on first
// connecting), and every room that was open, joined again with since. On
// a new socket, and when the server says it may have lost messages for
// this one ({"resync":true}); what comes twice is shown once (by id).
function catchUp(socket) {
  paced(socket, state.lastWhisper ? {command: 'whispers', since: state.lastWhisper}
                                  : {command: 'whispers'});
  for (const id of state.wanted) {
    const pane = state.panes.get(id);
    const join = {command: 'join', room: id};
    if (pane && pane.lastId) join.since = pane.lastId;
    paced(socket, join);
  }
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = new WebSocket(`${scheme}://${location.host}/chat/stream/`);
  state.socket = socket;
  setConnection('connecting…', false);
  socket.addEventListener('open', () => {
    state.attempts = 0;
    setConnection('online', true);
    catchUp(socket);
  });
  socket.addEventListener('message', (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    onMessage(data);
  });
  socket.addEventListener('close', async (event) => {
    if (state.socket !== socket || state.loggingOut) return;
    if (event.code === CLOSE_SESSION_ENDED) return toLogin();
    // Any other close, or a refused handshake (1006: the browser is told
    // no more), may also mean the session is over: ask before retrying.
    setConnection('offline', false);
    if (await leaveIfSessionEnded()) return;
    // Exponential backoff with full jitter, at most 15 s.
    const delay = Math.random() * Math.min(15000, 500 * 2 ** state.attempts++);
    setConnection(`offline, retrying in ${Math.ceil(delay / 1000)} s`, false);
    setTimeout(connect, delay);
  });
}

// A link like /#room=3 or /#room=3,5 opens those rooms once connected; the
// server decides whether this user may enter them.
function roomsFromHash() {
  const match = /^#room=([0-9,]+)$/.exec(location.hash);
  if (!match) return;
  for (const id of match[1].split(',')) {
    if (!id || state.wanted.has(id)) continue;
    state.wanted.add(id);
    if (state.socket && state.socket.readyState === WebSocket.OPEN) send({command: 'join', room: id});
  }
}

document.addEventListener('DOMContentLoaded', () => {
  if (document.body.dataset.staff === 'true') $('#admin-link').hidden = false;
  roomsFromHash();
  window.addEventListener('hashchange', roomsFromHash);
  // The logout ends this page's own socket too (4001) before the form's
  // answer arrives; going to the login page then would cut that answer off.
  $('.logout')?.addEventListener('submit', () => { state.loggingOut = true; });
  connect();
});
