// The staff admin page: rooms and users through /admin/api/, CSRF protected
// with the X-CSRFToken header. Every value is inserted as text.
//
// It shows only what its viewer may do; the server refuses the rest (403)
// whatever a page sends. Staff manage rooms and the users who are not staff,
// and their own password; superusers manage everyone, rights included.

const csrf = document.body.dataset.csrf;
const me = document.body.dataset.username;
const superuser = document.body.dataset.superuser === 'true';
const $ = (sel) => document.querySelector(sel);

function status(text, isError = false) {
  const el = $('#status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

async function api(method, path, body) {
  const response = await fetch(`/admin/api/${path}`, {
    method,
    headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrf},
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    // An empty or non-JSON body: keep the status only.
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// A table cell; its label names it where narrow screens hide the header.
function cell(text, label) {
  const td = document.createElement('td');
  td.textContent = text;
  if (label) td.dataset.label = label;
  else td.className = 'primary';
  return td;
}

function actionsCell(...buttons) {
  const td = document.createElement('td');
  td.className = 'actions';
  td.append(...buttons);
  return td;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', () => onClick().catch((e) => status(e.message, true)));
  return b;
}

async function loadRooms() {
  const {rooms} = await api('GET', 'rooms');
  const rows = rooms.map((room) => {
    const tr = document.createElement('tr');
    tr.dataset.roomId = room.id;
    const actions = actionsCell(
      button('Rename', async () => {
        const title = prompt('New title', room.title);
        if (title === null) return;
        await api('POST', `rooms/${room.id}`, {title});
        status(`Room renamed to ${title}.`);
        await loadRooms();
      }),
      button(room.staff_only ? 'Open to all' : 'Make staff only', async () => {
        await api('POST', `rooms/${room.id}`, {staff_only: !room.staff_only});
        status(`${room.title} is now ${room.staff_only ? 'open to all' : 'staff only'}.`);
        await loadRooms();
      }),
      button('Delete', async () => {
        if (!confirm(`Delete ${room.title}?`)) return;
        await api('DELETE', `rooms/${room.id}`);
        status(`${room.title} deleted.`);
        await loadRooms();
      }),
    );
    tr.append(cell(room.id, 'Id'), cell(room.title), cell(room.staff_only ? 'yes' : 'no', 'Staff only'), actions);
    return tr;
  });
  $('#room-rows').replaceChildren(...rows);
}

const RIGHTS = ['user', 'staff', 'superuser'];

function rightsOf(user) {
  return user.is_superuser ? 'superuser' : user.is_staff ? 'staff' : 'user';
}

// What the rights a select or the form names mean to the API.
function rightsBody(rights) {
  return {is_staff: rights !== 'user', is_superuser: rights === 'superuser'};
}

// The rights cell: a choice for superusers, the rights as text for staff.
function rightsCell(user) {
  const td = cell(rightsOf(user), 'Rights');
  if (!superuser) return td;
  const select = document.createElement('select');
  select.setAttribute('aria-label', `Rights of ${user.username}`);
  for (const rights of RIGHTS) select.append(new Option(rights, rights, false, rights === rightsOf(user)));
  select.addEventListener('change', async () => {
    try {
      await api('POST', `users/${user.id}`, rightsBody(select.value));
      status(`${user.username} is now ${select.value === 'user' ? 'a user' : select.value}.`);
    } catch (e) {
      status(e.message, true);
    }
    await loadUsers();
  });
  td.replaceChildren(select);
  return td;
}

async function loadUsers() {
  const {users} = await api('GET', 'users');
  const rows = users.map((user) => {
    const tr = document.createElement('tr');
    tr.dataset.username = user.username;
    const manages = superuser || (!user.is_staff && !user.is_superuser);
    const actions = actionsCell();
    if (manages || user.username === me) {
      actions.append(button('Set password', async () => {
        const password = prompt(`New password for ${user.username}`);
        if (!password) return;
        await api('POST', `users/${user.id}`, {password});
        status(`Password of ${user.username} changed.`);
      }));
    }
    if (manages && user.is_active) {
      actions.append(button('Deactivate', async () => {
        await api('POST', `users/${user.id}`, {is_active: false});
        status(`${user.username} deactivated.`);
        await loadUsers();
      }));
    }
    tr.append(cell(user.username), rightsCell(user), cell(user.is_active ? 'yes' : 'no', 'Active'), actions);
    return tr;
  });
  $('#user-rows').replaceChildren(...rows);
}

$('#room-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const title = form.title.value;
    await api('POST', 'rooms', {title, staff_only: form.staff_only.checked});
    form.reset();
    status(`Room ${title} created.`);
    await loadRooms();
  } catch (e) {
    status(e.message, true);
  }
});

$('#user-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    const username = form.username.value;
    await api('POST', 'users', {username, password: form.password.value, ...rightsBody(form.rights.value)});
    form.reset();
    status(`User ${username} created.`);
    await loadUsers();
  } catch (e) {
    status(e.message, true);
  }
});

for (const el of document.querySelectorAll('.superuser-only')) el.hidden = !superuser;
Promise.all([loadRooms(), loadUsers()]).catch((e) => status(e.message, true));
