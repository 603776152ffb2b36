// Handbook's web page: plain JavaScript over the /v1 API.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null };

$("key").value = localStorage.getItem("handbook-key") || "";
$("key").addEventListener("change", () => {
  localStorage.setItem("handbook-key", $("key").value.trim());
  refresh();
});

function headers(extra = {}) {
  const key = $("key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function showError(error) { $("error").textContent = error ? String(error.message || error) : ""; }

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

// --- sources ---------------------------------------------------------------------------------

function showSource(citation, language) {
  $("source").hidden = false;
  $("source-title").textContent = citation.title;
  const page = language === "de" ? "Seite" : "page";
  const where = [citation.page != null ? `${page} ${citation.page}` : "", citation.section]
    .filter(Boolean).join(", ");
  $("source-where").textContent = `[${citation.n}] ${where}`;
  $("source-text").textContent = citation.text;
}
$("close-source").addEventListener("click", () => { $("source").hidden = true; });

function renderCitations(container, answer) {
  container.replaceChildren();
  for (const citation of answer.citations) {
    const page = citation.page != null ? `, p. ${citation.page}` : "";
    const button = element("button", { class: "citation", type: "button" },
      `[${citation.n}] ${citation.title}${page}`);
    button.addEventListener("click", () => showSource(citation, answer.language));
    container.append(button);
  }
}

function addTurn(question) {
  const turn = element("div", { class: "turn" });
  turn.append(element("div", { class: "question" }, question));
  const answer = element("div", { class: "answer" });
  const citations = element("div", { class: "citations" });
  turn.append(answer, citations);
  $("conversation").append(turn);
  return { turn, answer, citations };
}

function showAnswer(question, answer) {
  const view = addTurn(question);
  view.answer.textContent = answer.answer;
  renderCitations(view.citations, answer);
}

// --- asking (Server-Sent Events over fetch) ------------------------------------------------

async function ask(question) {
  const view = addTurn(question);
  const body = { question, mode: $("mode").value, stream: true };
  if (state.session) body.session = state.session;
  const response = await fetch("/v1/ask", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    view.turn.remove();
    let message = `${response.status}`;
    try { message = (await response.json()).message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "null");
      if (event === "token") view.answer.textContent += data.text;
      else if (event === "replaced") {
        view.answer.textContent = data.text;
        if (data.reason !== "cleaned") {
          view.answer.append(element("div", { class: "replaced" },
            "The model's answer was replaced by the manuals' own words."));
        }
      } else if (event === "done") {
        if (!view.answer.textContent.trim()) view.answer.textContent = data.answer;
        renderCitations(view.citations, data);
      } else if (event === "error") throw new Error(data.message);
    }
  }
  if (state.session) loadSessions();
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  showError(null);
  $("send").disabled = true;
  try {
    await ask(question);
    $("question").value = "";
  } catch (error) {
    showError(error);
  } finally {
    $("send").disabled = false;
  }
});

$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});

// --- sessions ------------------------------------------------------------------------------

async function loadSessions() {
  const sessions = await api("/v1/sessions");
  $("sessions").replaceChildren(...sessions.map((session) => {
    const item = element("li", { "data-id": session.id });
    if (session.id === state.session) item.classList.add("active");
    item.append(element("span", {}, session.title || "(new session)"));
    const remove = element("button", { type: "button", title: "Delete session" }, "×");
    remove.addEventListener("click", async (event) => {
      event.stopPropagation();
      await api(`/v1/sessions/${session.id}`, { method: "DELETE" });
      if (state.session === session.id) openSession(null);
      loadSessions();
    });
    item.append(remove);
    item.addEventListener("click", () => openSession(session.id).catch(showError));
    return item;
  }));
}

async function openSession(id) {
  state.session = id;
  $("conversation").replaceChildren();
  if (id) {
    const history = await api(`/v1/sessions/${id}`);
    for (const turn of history.turns) showAnswer(turn.answer.question, turn.answer);
  }
  loadSessions();
}

$("new-session").addEventListener("click", async () => {
  try {
    const session = await api("/v1/sessions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    await openSession(session.id);
  } catch (error) { showError(error); }
});

// --- documents -----------------------------------------------------------------------------

async function loadDocuments() {
  const documents = await api("/v1/documents");
  $("documents").replaceChildren(...documents.map((doc) => {
    const item = element("li", { "data-id": doc.id });
    const pages = doc.pages ? `, ${doc.pages} p.` : "";
    item.append(element("span", { title: doc.title }, `${doc.name} (${doc.language}${pages})`));
    const remove = element("button", { type: "button", title: "Remove from the index" }, "×");
    remove.addEventListener("click", async () => {
      if (!confirm(`Remove ${doc.name} from the index?`)) return;
      try {
        await api(`/v1/documents/${doc.id}`, { method: "DELETE" });
        loadDocuments();
      } catch (error) { showError(error); }
    });
    item.append(remove);
    return item;
  }));
}

async function followJob(job) {
  while (job.state === "queued" || job.state === "running") {
    $("upload-status").textContent = `${job.path}: ${job.state}…`;
    await new Promise((resolve) => setTimeout(resolve, 700));
    job = await api(`/v1/jobs/${job.id}`);
  }
  $("upload-status").textContent =
    job.state === "done" ? `${job.path}: indexed` : `${job.path}: failed: ${job.error}`;
  loadDocuments();
}

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  showError(null);
  try {
    const job = await api("/v1/documents", { method: "POST", body: form });
    $("file").value = "";
    await followJob(job);
  } catch (error) {
    $("upload-status").textContent = "";
    showError(error);
  }
});

function refresh() {
  showError(null);
  Promise.all([loadSessions(), loadDocuments()]).catch(showError);
}
refresh();
