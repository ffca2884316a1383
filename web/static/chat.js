// The chat page: talks to /api/v1 and shows the conversation. Text is always inserted as text, never HTML.
(function () {
  "use strict";
  const API = "/api/v1";
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const choices = document.getElementById("choices");
  const POLL_MS = 3000;
  let conversation = null;
  let shown = 0;
  let poller = null;

  function add(role, text, detail) {
    const item = document.createElement("li");
    item.className = role;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = { user: "You: ", assistant: "Assistant: ", team: "Our team: ", error: "Problem: " }[role] || "";
    const body = document.createElement("span");
    body.textContent = text;
    item.append(who, body);
    if (detail) {
      const more = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Technical detail";
      const pre = document.createElement("pre");
      pre.textContent = detail;
      more.append(summary, pre);
      item.append(more);
    }
    log.append(item);
    item.scrollIntoView({ block: "end" });
  }

  function detailOf(answer) {
    if (!answer) return "";
    const lines = ["Decision: " + answer.decision + " (confidence " + answer.confidence + ")"];
    if (answer.playbook) lines.push("Problem: " + answer.playbook + " (" + answer.category + ")");
    for (const a of answer.actions || []) lines.push("Action: " + a.name + " on " + a.target + ": " + a.status);
    if ((answer.rules_fired || []).length) lines.push("Rules: " + answer.rules_fired.join(", "));
    return lines.join("\n");
  }

  function showChoices(list) {
    choices.replaceChildren();
    for (const choice of list || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = choice.label;
      button.addEventListener("click", function () { say(choice.value); });
      choices.append(button);
    }
  }

  async function call(method, path, body) {
    const options = { method: method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, options);
    const data = await response.json();
    if (!response.ok) throw new Error(data.error ? data.error.message : "Something went wrong.");
    return data;
  }

  function watch(stage) {
    // A person decides business requests; their answer appears when it lands, so the page looks now and then.
    clearInterval(poller);
    poller = stage === "awaiting_decision" ? setInterval(refresh, POLL_MS) : null;
  }

  async function refresh() {
    const data = await call("GET", "/conversations/" + encodeURIComponent(conversation) + "/messages");
    for (const m of data.messages.slice(shown)) add(m.role, m.text);
    shown = data.messages.length;
    showChoices(data.choices);
    watch(data.stage);
  }

  async function open() {
    const list = await call("GET", "/conversations");
    if (list.conversations.length) {
      conversation = list.conversations[0].id;
      await refresh();
    } else {
      await fresh();
    }
  }

  async function fresh() {
    const turn = await call("POST", "/conversations");
    conversation = turn.conversation_id;
    log.replaceChildren();
    shown = 0;
    await refresh();
  }

  async function streamTurn(text) {
    // Server-sent events over fetch: `progress` lines while the engine works, then the `turn`.
    const response = await fetch(API + "/conversations/" + encodeURIComponent(conversation) + "/messages", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ text: text })
    });
    if (!response.ok) {
      const data = await response.json();
      throw new Error(data.error ? data.error.message : "Something went wrong.");
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The connection closed before the answer arrived; please try again.");
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parse(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.type === "progress") status.textContent = event.data.message;
        if (event.type === "error") throw new Error(event.data.error.message);
        if (event.type === "turn") return event.data;
      }
    }
  }

  function parse(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) type = line.slice(7);
      if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    return { type: type, data: JSON.parse(data.join("\n")) };
  }

  async function say(text) {
    text = text.trim();
    if (!text) { status.textContent = "Type a message first."; input.focus(); return; }
    add("user", text);
    input.value = "";
    send.disabled = true;
    showChoices([]);
    status.textContent = "Let me check a few things…";
    try {
      const turn = await streamTurn(text);
      turn.replies.forEach(function (reply) {
        const isDecision = turn.answer && reply === turn.answer.reply;
        add("assistant", reply, isDecision ? detailOf(turn.answer) : "");
      });
      shown += 1 + turn.replies.length;
      showChoices(turn.choices);
      watch(turn.stage);
      status.textContent = "";
    } catch (error) {
      add("error", error.message || "I couldn't reach the server; please try again.");
      input.value = text;  // nothing typed is lost
      status.textContent = "";
    } finally {
      send.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); say(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("new-conversation").addEventListener("click", function () {
    fresh().then(function () { input.focus(); });
  });
  document.getElementById("delete-history").addEventListener("click", async function () {
    if (!window.confirm("Delete all your conversations and everything stored about them? This cannot be undone.")) return;
    try {
      await call("DELETE", "/history");
      clearInterval(poller);
      await fresh();
      status.textContent = "Your history has been deleted.";
    } catch (error) {
      add("error", error.message);
    }
    input.focus();
  });

  open().catch(function (error) { add("error", error.message); });
})();
