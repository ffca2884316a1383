// The chat page: posts messages to the JSON API and shows replies. Text is always inserted as text, never HTML.
(function () {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const KEY = "firstline.conversation";

  function add(role, text, detail) {
    const item = document.createElement("li");
    item.className = role;
    item.textContent = text;
    if (detail) {
      const more = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "What I did";
      const body = document.createElement("pre");
      body.textContent = detail;
      more.append(summary, body);
      item.append(more);
    }
    log.append(item);
    item.scrollIntoView({ block: "end" });
  }

  function detailOf(answer) {
    const lines = [];
    if (answer.playbook) lines.push("Problem: " + answer.playbook + " (" + answer.category + ")");
    for (const a of answer.actions || []) lines.push("Action: " + a.name + " on " + a.target + ": " + a.status);
    if ((answer.rules_fired || []).length) lines.push("Rules: " + answer.rules_fired.join(", "));
    return lines.join("\n");
  }

  async function loadHistory() {
    const id = localStorage.getItem(KEY);
    if (!id) return;
    const response = await fetch("/api/v1/conversations/" + encodeURIComponent(id) + "/messages");
    if (!response.ok) { localStorage.removeItem(KEY); return; }
    const body = await response.json();
    for (const m of body.messages) add(m.role, m.text);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) { status.textContent = "Type a message first."; return; }
    add("user", text);
    input.value = "";
    send.disabled = true;
    status.textContent = "Let me check a few things…";
    try {
      const payload = { text: text };
      const id = localStorage.getItem(KEY);
      if (id) payload.conversation_id = id;
      const response = await fetch("/api/v1/messages", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload)
      });
      const body = await response.json();
      if (!response.ok) { add("error", body.error ? body.error.message : "Something went wrong."); return; }
      localStorage.setItem(KEY, body.conversation_id);
      add("assistant", body.reply, detailOf(body));
    } catch (error) {
      add("error", "I couldn't reach the server. Your message was not sent; please try again.");
    } finally {
      send.disabled = false;
      status.textContent = "";
      input.focus();
    }
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });

  document.getElementById("new-conversation").addEventListener("click", function () {
    localStorage.removeItem(KEY);
    log.replaceChildren();
    input.focus();
  });

  loadHistory();
})();
