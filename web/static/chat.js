// The chat page: talks to /api/v1 and shows the conversation. Text is always inserted as text, never HTML.
// In the widget's frame (/embed: body.embed) it also answers the host page's widget.js by postMessage, and keeps
// its session in a header held in localStorage instead of a cookie, which a browser may refuse to a frame of
// another site (docs/widget.md).
// It lists the user's conversations, those a person answered since the user last looked first ("New answer"),
// opens the one named by ?conversation=ID (the link each notification e-mail carries, docs/notifications.md), and
// looks for a person's answer now and then while one may come.
(function () {
  "use strict";
  const API = "/api/v1";
  const embed = document.body.classList.contains("embed");
  const host = embed ? document.body.dataset.host || "" : "";  // the host page's origin, when the server allows it
  const framed = embed && window.parent !== window;
  const SESSION_HEADER = "X-Firstline-Session";
  const SESSION_KEY = "firstline.session";
  const IDENTITY_KEY = "firstline.identity";
  const thread = document.getElementById("thread");
  const log = document.getElementById("log");
  const form = document.getElementById("composer");
  const input = document.getElementById("message");
  const send = document.getElementById("send");
  const status = document.getElementById("status");
  const choices = document.getElementById("choices");
  const nav = document.getElementById("conversations");
  const navBox = document.getElementById("conversations-box");
  const navNew = document.getElementById("conversations-new");
  const listing = document.getElementById("conversation-list");
  const notice = document.getElementById("notice");
  const named = embed ? null : new URLSearchParams(window.location.search).get("conversation");
  const POLL_MS = 3000;
  const MARGIN = 8;  // px kept between what is revealed and the edge of the view
  // Stages in which a person's answer may land: a business request with a decider, and the rating question (asked
  // right after a hand-off to engineering, and while a request made earlier may still be decided).
  const WAITING = ["awaiting_decision", "rating"];
  const NOT_YOURS = "I can't show the conversation in that link: it isn't one of yours in this browser, or it " +
    "was deleted. If the link came by e-mail, open it in the browser you chatted in.";
  let conversation = null;
  let shown = 0;
  let poller = null;
  let stage = null;
  let owed = false;  // this conversation was handed to a person (engineering, a decider) who has not answered yet
  let busy = false;  // a turn is being sent: no look for new messages meanwhile
  let epoch = 0;  // moves on when a turn starts or another conversation opens: a look begun before is dropped
  let offered = "";  // the quick replies on screen, so a look that finds the same ones leaves them (and the focus)
  let rows = [];  // the user's conversations, as GET /conversations lists them
  let listed = "";  // what the list on screen shows, so a look that changes nothing leaves it alone
  let othersNew = 0;  // conversations other than this one holding a new answer
  const memory = {};  // where the frame keeps its session when the browser gives it no localStorage

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch (error) { return memory[key] || null; }
  }

  function keep(key, value) {
    memory[key] = value;
    try {
      if (value === null) window.localStorage.removeItem(key); else window.localStorage.setItem(key, value);
    } catch (error) { /* kept in memory for this page's life */ }
  }

  function stamp(at, className) {
    // Local time on the message, the full date when the pointer rests on it; an earlier day shows its date too.
    const when = new Date(at * 1000);
    const time = document.createElement("time");
    time.className = className || "at";
    time.dateTime = when.toISOString();
    const clock = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const today = new Date().toDateString() === when.toDateString();
    time.textContent = today ? clock : when.toLocaleDateString([], { day: "numeric", month: "short" }) + ", " + clock;
    time.title = when.toLocaleString([], { dateStyle: "full", timeStyle: "medium" });
    return time;
  }

  function add(role, text, detail, at) {
    const item = document.createElement("li");
    item.className = role;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = { user: "You: ", assistant: "Assistant: ", team: "Our team: ", error: "Problem: " }[role] || "";
    const body = document.createElement("span");
    body.className = "text";
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
    item.append(stamp(at === undefined ? Date.now() / 1000 : at));
    log.insertBefore(item, typingBubble());
    return item;
  }

  function typingBubble() {
    return log.querySelector("li.typing");
  }

  function typing(on) {
    // Three dots where the reply will appear, while the assistant works; the progress line says what it does.
    const bubble = typingBubble();
    if (on && !bubble) {
      const item = document.createElement("li");
      item.className = "typing";
      item.setAttribute("aria-hidden", "true");  // the role=status progress line speaks for it
      for (let i = 0; i < 3; i += 1) {
        const dot = document.createElement("span");
        dot.className = "dot";
        item.append(dot);
      }
      log.append(item);
    } else if (!on && bubble) {
      bubble.remove();
    }
  }

  function reveal(element) {
    // Scroll just enough that `element` is in view, its top first when it is taller than the view. In the frame
    // only the thread scrolls, so the host page never moves.
    const scroller = embed ? thread : document.scrollingElement;
    const view = embed ? thread.getBoundingClientRect() : { top: 0, bottom: window.innerHeight };
    let box = element.getBoundingClientRect();
    if (box.bottom + MARGIN > view.bottom) scroller.scrollTop += box.bottom + MARGIN - view.bottom;
    box = element.getBoundingClientRect();
    if (box.top - MARGIN < view.top) scroller.scrollTop -= view.top - box.top + MARGIN;
  }

  function detailOf(answer) {
    if (!answer) return "";
    const lines = ["Decision: " + answer.decision + " (confidence " + answer.confidence + ")"];
    if (answer.playbook) lines.push("Problem: " + answer.playbook + " (" + answer.category + ")");
    for (const a of answer.actions || []) lines.push("Action: " + a.name + " on " + a.target + ": " + a.status);
    const fired = new Map();  // a rule that fired once per unhealthy metric is one name with its count
    for (const rule of answer.rules_fired || []) fired.set(rule, (fired.get(rule) || 0) + 1);
    const rules = Array.from(fired, function ([rule, times]) { return times > 1 ? rule + " ×" + times : rule; });
    if (rules.length) lines.push("Rules: " + rules.join(", "));
    return lines.join("\n");
  }

  function showChoices(list) {
    const same = JSON.stringify(list || []);
    if (same === offered) return;  // a look found the same ones: a button in focus keeps it
    offered = same;
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

  async function request(path, options) {
    // The frame sends its session in a header and never a cookie; the server answers with the session renewed.
    options.headers = options.headers || {};
    if (embed) {
      options.headers[SESSION_HEADER] = stored(SESSION_KEY) || "new";
      options.credentials = "omit";
    }
    const response = await fetch(API + path, options);
    const renewed = embed ? response.headers.get(SESSION_HEADER) : null;
    if (renewed) keep(SESSION_KEY, renewed);
    return response;
  }

  async function call(method, path, body) {
    const options = { method: method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await request(path, options);
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      const error = new Error(data.error ? data.error.message : "Something went wrong.");
      error.status = response.status;  // 404: not this user's conversation, or none
      throw error;
    }
    return data;
  }

  // -- a person's answer, when it lands ---------------------------------------------------------------------

  function handsOver(answer) {
    // A business request goes to a decider; a problem the remedies did not fix goes to engineering.
    return answer.decision === "escalate" || (answer.actions || []).some(function (a) { return a.name === "handoff"; });
  }

  function owes(messages) {
    // Handed over and no word from the team since: their answer (a decision, engineering's note) is to come.
    let owing = false;
    for (const m of messages) {
      if (m.role === "team") owing = false;
      else if (m.detail && handsOver(m.detail)) owing = true;
    }
    return owing;
  }

  function watching() {
    return WAITING.includes(stage) || owed;
  }

  function othersWaiting() {
    return rows.some(function (row) { return row.id !== conversation && row.stage === "awaiting_decision"; });
  }

  function schedule() {
    // One look every POLL_MS while a person's answer may come, here or in another conversation of the list; none
    // while a turn is sent (it would show the message just sent a second time) or while the page is hidden (it
    // looks at once when shown again).
    clearTimeout(poller);
    poller = null;
    if (busy || document.hidden || !conversation) return;
    if (watching() || othersWaiting()) poller = setTimeout(look, POLL_MS);
  }

  async function look() {
    poller = null;
    try {
      if (watching()) await refresh();
      if (!busy && othersWaiting()) {
        await loadList();
        const here = rows.find(function (row) { return row.id === conversation; });
        if (here && here.unseen_answer) await refresh(); else renderList();
      }
    } catch (error) {
      // The server may be restarting: the next look tries again. A conversation gone (deleted from another tab)
      // has nothing more to show.
      if (error.status === 404) { stage = null; owed = false; }
    }
    schedule();
  }

  async function refresh() {
    // The conversation's messages not on screen yet; reading them marks a person's answer seen (no e-mail for it).
    const id = conversation;
    const started = epoch;
    const data = await call("GET", "/conversations/" + encodeURIComponent(id) + "/messages");
    if (started !== epoch) return;  // a turn started, or another conversation opened, meanwhile
    const row = rows.find(function (r) { return r.id === id; });
    const answered = shown === 0 && row && row.unseen_answer;  // opened for a person's answer (a link, the list)
    const added = data.messages.slice(shown).map(function (m) { return add(m.role, m.text, detailOf(m.detail), m.at); });
    shown = data.messages.length;
    showChoices(data.choices);
    stage = data.stage;
    owed = owes(data.messages);
    const last = data.messages[data.messages.length - 1];
    note(id, { stage: data.stage, messages: data.messages.length, unseen_answer: false, last_at: last ? last.at : null });
    schedule();
    if (added.length) {
      // What is new in view, from its start; opened for a person's answer, that answer.
      const team = answered ? added.filter(function (item) { return item.className === "team"; }).pop() : null;
      reveal(added[added.length - 1]);
      reveal(team || added[0]);
    }
  }

  // -- the user's conversations -------------------------------------------------------------------------------

  async function loadList() {
    rows = (await call("GET", "/conversations")).conversations;
  }

  function note(id, changes) {
    // What this page learnt about one conversation, kept in the list without asking the server again.
    let row = rows.find(function (r) { return r.id === id; });
    if (!row) {
      row = { id: id, stage: "open", messages: 0, unseen_answer: false, answered_at: null, last_at: null };
      rows.unshift(row);
    }
    for (const key of Object.keys(changes)) if (changes[key] !== null) row[key] = changes[key];
    renderList();
  }

  function stageWords(row) {
    // What the conversation waits for, when it waits: the rating question is optional, so it is not named.
    if (row.stage === "awaiting_decision") return "With our team";
    if (row.stage === "checking_answer") return "Answered by our team";
    if (["confirming", "choosing", "verifying"].includes(row.stage)) return "Waiting for your reply";
    return "";
  }

  function renderList() {
    // A person's new answers first (the latest answer first), then the rest, the latest active first.
    const order = rows.slice().sort(function (a, b) {
      if (a.unseen_answer !== b.unseen_answer) return a.unseen_answer ? -1 : 1;
      if (a.unseen_answer) return (b.answered_at || 0) - (a.answered_at || 0);
      return (b.last_at || b.started_at || 0) - (a.last_at || a.started_at || 0);
    });
    const others = order.filter(function (row) { return row.id !== conversation; });
    const fresh = others.filter(function (row) { return row.unseen_answer; }).length;
    const picture = JSON.stringify([conversation, order]);
    if (picture === listed) return;  // nothing new: links in focus keep it
    listed = picture;
    nav.hidden = others.length === 0;
    navNew.hidden = fresh === 0;
    navNew.textContent = fresh === 1 ? "1 new answer" : fresh + " new answers";
    if (fresh > othersNew) navBox.open = true;  // a person answered elsewhere: show where
    othersNew = fresh;
    listing.replaceChildren(...order.map(entry));
  }

  function entry(row) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.className = "conversation";
    link.href = embed ? "#" : "?conversation=" + encodeURIComponent(row.id);
    if (row.id === conversation) link.setAttribute("aria-current", "page");
    if (row.unseen_answer) {
      item.className = "unseen";
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "New answer";
      link.append(badge, " ");
    }
    link.append(stamp(row.last_at || row.started_at || Date.now() / 1000, "when"));
    const facts = [row.messages === 1 ? "1 message" : row.messages + " messages"];
    if (stageWords(row)) facts.push(stageWords(row));
    if (row.id === conversation) facts.push("shown below");
    const about = document.createElement("span");
    about.className = "about";
    about.textContent = " · " + facts.join(" · ");
    link.append(about);
    link.addEventListener("click", function (event) {
      if (!embed && (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) return;  // a new tab
      event.preventDefault();
      if (row.id !== conversation && !busy) switchTo(row.id);
    });
    item.append(link);
    return item;
  }

  function address(id) {
    // The address names the conversation on screen when the user picked it (a link, the list), so a reload
    // shows it again; otherwise it names none (an old or refused link is not tried again on reload).
    if (embed || !window.history.replaceState) return;
    const url = new URL(window.location.href);
    if (id) url.searchParams.set("conversation", id); else url.searchParams.delete("conversation");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function tellNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  async function show(id) {
    epoch += 1;
    clearTimeout(poller);
    poller = null;
    conversation = id;
    shown = 0;
    stage = null;
    owed = false;
    offered = "";
    log.replaceChildren();
    showChoices([]);
    status.textContent = "";
    await refresh();
  }

  async function switchTo(id) {
    tellNotice("");
    navBox.open = false;  // picked: the conversation gets the room
    try {
      await show(id);
      address(id);
    } catch (error) {
      add("error", error.message);
    }
    input.focus();
  }

  async function open() {
    await loadList();
    if (named) {
      try {
        await show(named);  // the server says whether it is this user's: 404 if not, as for none at all
        return;
      } catch (error) {
        if (error.status !== 404) throw error;
        tellNotice(NOT_YOURS);
        address(null);
      }
    }
    if (rows.length) await show(rows[0].id); else await fresh();
  }

  async function fresh() {
    const turn = await call("POST", "/conversations");
    note(turn.conversation_id, { stage: turn.stage, last_at: Date.now() / 1000 });
    await show(turn.conversation_id);
  }

  async function streamTurn(text) {
    // Server-sent events over fetch: `progress` lines while the engine works, then the `turn`.
    const response = await request("/conversations/" + encodeURIComponent(conversation) + "/messages", {
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
        if (event.type === "progress") progress(event.data.message);
        if (event.type === "error") throw new Error(event.data.error.message);
        if (event.type === "turn") return event.data;
      }
    }
  }

  function progress(message) {
    status.textContent = message;
    reveal(status);  // on a phone the line sits under the conversation: keep it, and the dots above it, in view
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
    if (busy) return;  // one turn at a time; what was typed stays in the box
    busy = true;
    epoch += 1;  // a look under way is dropped, and none starts until the turn is done
    clearTimeout(poller);
    poller = null;
    tellNotice("");
    add("user", text);
    input.value = "";
    send.disabled = true;
    showChoices([]);
    typing(true);
    progress("Let me check a few things…");
    try {
      const turn = await streamTurn(text);
      typing(false);
      const added = turn.replies.map(function (reply) {
        const isDecision = turn.answer && reply === turn.answer.reply;
        return add("assistant", reply, isDecision ? detailOf(turn.answer) : "");
      });
      shown += 1 + turn.replies.length;
      showChoices(turn.choices);
      stage = turn.stage;
      if (turn.answer && handsOver(turn.answer)) owed = true;
      note(conversation, { stage: turn.stage, messages: shown, unseen_answer: false, last_at: Date.now() / 1000 });
      status.textContent = "";
      if (added.length) {
        // The whole answer in view, down to its buttons; a reply taller than the screen shows from its start.
        reveal(!embed && choices.children.length ? choices : added[added.length - 1]);
        reveal(added[0]);
      }
    } catch (error) {
      typing(false);
      reveal(add("error", error.message || "I couldn't reach the server; please try again."));
      input.value = text;  // nothing typed is lost
      status.textContent = "";
    } finally {
      busy = false;
      send.disabled = false;
      schedule();
      input.focus();
    }
  }

  // -- in the widget's frame: the host page's widget.js opens, focuses and closes it --------------------------

  function tell(type) {
    if (framed && host) window.parent.postMessage({ type: type }, host);
  }

  async function identify(init) {
    // The host app vouches for its signed-in user (docs/conversation-api.md, Identity), and may sign their e-mail
    // address too (docs/notifications.md); when it no longer vouches (it signed out), this frame becomes a new
    // anonymous user, as DELETE /identity makes it.
    const userId = init.user_id;
    const userHash = init.user_hash;
    if (typeof userId === "string" && userId && typeof userHash === "string" && userHash) {
      const body = { user_id: userId, user_hash: userHash };
      if (typeof init.email === "string" && init.email) {
        body.email = init.email;
        body.email_hash = typeof init.email_hash === "string" ? init.email_hash : "";
      }
      try {
        await call("POST", "/identity", body);
        keep(IDENTITY_KEY, userId);
      } catch (error) {
        keep(IDENTITY_KEY, null);  // refused: the chat goes on unverified, as on the page
      }
    } else if (stored(IDENTITY_KEY)) {
      await call("DELETE", "/identity");
      keep(IDENTITY_KEY, null);
    }
  }

  async function start(init) {
    if (typeof init.colour === "string" && window.CSS && CSS.supports("color", init.colour)) {
      document.documentElement.style.setProperty("--accent", init.colour);
    }
    if (embed) await identify(init);
    await open();
  }

  function begin(init) {
    start(init || {}).catch(function (error) { add("error", error.message); });
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); say(input.value); });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  document.getElementById("new-conversation").addEventListener("click", function () {
    if (busy) return;
    tellNotice("");
    address(null);
    fresh().catch(function (error) { add("error", error.message); }).then(function () { input.focus(); });
  });
  document.getElementById("delete-history").addEventListener("click", async function () {
    if (busy) return;
    if (!window.confirm("Delete all your conversations and everything stored about them? This cannot be undone.")) return;
    try {
      await call("DELETE", "/history");
      rows = [];
      tellNotice("");
      address(null);
      await fresh();
      status.textContent = "Your history has been deleted.";
    } catch (error) {
      add("error", error.message);
    }
    input.focus();
  });

  document.addEventListener("visibilitychange", function () {
    // Hidden, the page stops looking (and the user counts as away after a while: a person's answer is e-mailed);
    // shown again, it looks at once.
    if (document.hidden) {
      clearTimeout(poller);
      poller = null;
    } else if (!busy && conversation && (watching() || othersWaiting())) {
      look();
    }
  });

  if (framed && host) {
    const close = document.getElementById("close");
    close.hidden = false;
    close.addEventListener("click", function () { tell("firstline:close"); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") tell("firstline:close");
    });
    let started = false;
    window.addEventListener("message", function (event) {
      if (event.source !== window.parent || event.origin !== host || !event.data) return;
      if (event.data.type === "firstline:init" && !started) {
        started = true;
        begin(event.data);
      }
      if (event.data.type === "firstline:focus") input.focus();
    });
    tell("firstline:ready");
  } else {
    begin({});
  }
})();
