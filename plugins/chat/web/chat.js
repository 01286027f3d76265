// The example app's page: rooms, messages and who is here, over pxl.js.
// pxl-serve serves this folder (static.root) and /pxl.js itself.
import { connect } from '/pxl.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_ROOMS = ['lobby', 'random', 'help'];

const state = {
  name: localStorage.getItem('pxl-chat-name') ||
        'guest-' + Math.random().toString(36).slice(2, 6),
  clientId: null,
  current: null,
  open: false,
  rooms: new Map(),   // name -> { joined, messages: [], members: Map(clientId -> name) }
  names: new Map(),   // every clientId seen in a room -> its name (old messages)
  mine: new Set(),    // this page's clientIds, one per connection
};

function room(name) {
  if (!state.rooms.has(name)) {
    state.rooms.set(name, { joined: false, messages: [], members: new Map() });
  }
  return state.rooms.get(name);
}

const client = connect('/ws', { minDelay: 250, maxDelay: 5000 });

function setStatus(text, open) {
  state.open = open;
  $('status').textContent = text;
  $('status').classList.toggle('open', open);
  $('status').classList.toggle('connecting', !open);
  const ready = open && state.current !== null;
  $('text').disabled = !ready;
  $('send').disabled = !ready;
}

client.addEventListener('open', (e) => {
  state.clientId = e.clientId;
  state.mine.add(e.clientId);
  state.names.set(e.clientId, state.name);
  setStatus('connected', true);
  render();
});
client.addEventListener('close', (e) => {
  if (e.willReconnect) setStatus('reconnecting…', false);
  else setStatus('offline', false);
});
client.addEventListener('reconnecting', (e) => {
  setStatus(`reconnecting… (try ${e.attempt})`, false);
});
client.addEventListener('failed', () => setStatus('offline', false));
// After a reconnect the library has joined our rooms again: catch up.
client.addEventListener('rejoined', () => {
  for (const [name, r] of state.rooms) if (r.joined) refresh(name);
});
client.addEventListener('resumed', () => {
  for (const [name, r] of state.rooms) if (r.joined) refresh(name);
});

client.on('chat', 'message', (data) => {
  const r = room(data.roomName);
  r.messages.push(data);
  if (data.roomName === state.current) renderMessages();
});
client.on('system', 'clientJoined', (data) => {
  room(data.roomName).members.set(data.clientId, String(data.userId));
  state.names.set(data.clientId, String(data.userId));
  if (data.roomName === state.current) renderMembers();
  renderRooms();
});
client.on('system', 'clientLeft', (data) => {
  room(data.roomName).members.delete(data.clientId);
  if (data.roomName === state.current) renderMembers();
  renderRooms();
});

// The room's members and its earlier messages, from the server.
async function refresh(name) {
  const r = room(name);
  try {
    const m = await client.request('system', 'roomMembers', { roomName: name });
    r.members = new Map(m.members.map((x) => [x.clientId, String(x.userId)]));
    for (const [id, name] of r.members) state.names.set(id, name);
    const h = await client.request('chat', 'history', { roomName: name, limit: 50 });
    r.messages = h.messages;
  } catch (err) {
    note(`could not load ${name}: ${err.message}`);
  }
  if (name === state.current) render();
}

async function enter(name) {
  const r = room(name);
  state.current = name;
  if (!r.joined) {
    try {
      await client.join(name, { userId: state.name });
      r.joined = true;
    } catch (err) {
      note(`could not join ${name}: ${err.message}`);
      return;
    }
  }
  await refresh(name);
  setStatus($('status').textContent, state.open);
  $('text').focus();
}

function note(text) {
  const li = document.createElement('li');
  li.className = 'note';
  li.textContent = text;
  $('messages').append(li);
}

function who(msg) {
  return room(msg.roomName).members.get(msg.clientId) ||
    state.names.get(msg.clientId) || 'someone';
}

function renderMessages() {
  const list = $('messages');
  list.replaceChildren();
  const r = state.current ? room(state.current) : null;
  if (!r) return;
  if (r.messages.length === 0) note('No messages yet: say something.');
  for (const m of r.messages) {
    const li = document.createElement('li');
    if (state.mine.has(m.clientId)) li.classList.add('mine');
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = who(m);
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = m.text;
    const time = document.createElement('time');
    const at = new Date(m.sentAt);
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.append(name, text, time);
    list.append(li);
  }
  list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const list = $('members');
  list.replaceChildren();
  const r = state.current ? room(state.current) : null;
  $('members-room').textContent = state.current || 'this room';
  if (!r) return;
  for (const [clientId, name] of [...r.members].sort((a, b) => a[1].localeCompare(b[1]))) {
    const li = document.createElement('li');
    li.textContent = name;
    if (clientId === state.clientId) li.classList.add('me');
    list.append(li);
  }
}

function renderRooms() {
  const names = [...new Set([...DEFAULT_ROOMS, ...state.rooms.keys()])];
  const list = $('rooms');
  list.replaceChildren();
  for (const name of names) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = '# ' + name;
    b.dataset.room = name;
    if (name === state.current) b.classList.add('current');
    const r = state.rooms.get(name);
    if (r && r.joined) {
      const c = document.createElement('span');
      c.className = 'count';
      c.textContent = r.members.size;
      b.append(c);
    }
    b.addEventListener('click', () => enter(name));
    li.append(b);
    list.append(li);
  }
}

function render() {
  $('room-title').textContent = state.current ? '# ' + state.current : 'Choose a room';
  renderRooms();
  renderMembers();
  renderMessages();
}

$('name').value = state.name;
$('name-form').addEventListener('submit', (e) => e.preventDefault());
$('name').addEventListener('change', async () => {
  const name = $('name').value.trim();
  if (!name || name === state.name) return;
  state.name = name;
  state.names.set(state.clientId, name);
  localStorage.setItem('pxl-chat-name', name);
  // Memberships carry the name: join again under the new one.
  for (const [room_, r] of state.rooms) {
    if (!r.joined) continue;
    await client.leave(room_).catch(() => {});
    r.joined = false;
    await client.join(room_, { userId: name }).then(() => { r.joined = true; })
      .catch((err) => note(`could not join ${room_}: ${err.message}`));
  }
  if (state.current) refresh(state.current);
});
$('room-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('new-room').value.trim();
  if (name) enter(name);
  $('new-room').value = '';
});
$('say-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !state.current) return;
  $('text').value = '';
  try {
    await client.request('chat', 'say', { roomName: state.current, text });
  } catch (err) {
    note(`not sent: ${err.message}`);
  }
});

render();
