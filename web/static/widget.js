// Firstline's widget: <script src="https://FIRSTLINE/widget.js" defer></script> on a host app's page puts a
// launcher button in a corner; it opens the chat in a frame (FIRSTLINE/embed), so the chat's code and styles stay
// apart from the page's. The page's Content-Security-Policy needs only script-src and frame-src for Firstline's
// origin: this script adds no <style> and no inline code (its styles are set through the CSSOM), loads nothing
// itself, and talks to the frame by postMessage, to Firstline's origin only. See docs/widget.md.
//
// data- attributes of the script tag: data-position ("right", the default, or "left"), data-title (the
// launcher's and the frame's name, default "Support"), data-colour (any CSS colour; the launcher and the chat's
// accent), data-user-id and data-user-hash (the identity the host app vouches for: HMAC-SHA256 of the id under the
// shared identity secret, hex), data-email and data-email-hash (the user's address, signed the same way), read when
// the chat first opens.
(function () {
  "use strict";
  if (window.FirstlineWidget) return;  // the tag twice on one page: one launcher
  const script = document.currentScript || document.querySelector("script[src$='/widget.js']");
  if (!script) return;
  const origin = new URL(script.src, window.location.href).origin;
  const data = script.dataset;
  const side = data.position === "left" ? "left" : "right";
  const title = (data.title || "Support").slice(0, 80);
  const wanted = data.colour || data.color || "";
  const colour = wanted && window.CSS && CSS.supports("color", wanted) ? wanted : "#2456d3";
  const phone = window.matchMedia("(max-width: 480px)");
  const SVG = "http://www.w3.org/2000/svg";
  let frame = null;
  let loaded = false;
  let isOpen = false;

  function styled(element, styles) {
    Object.assign(element.style, styles);  // the CSSOM, which a page's style-src does not govern
    return element;
  }

  function icon(path) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const shape = document.createElementNS(SVG, "path");
    shape.setAttribute("d", path);
    shape.setAttribute("fill", "currentColor");
    svg.append(shape);
    return svg;
  }

  // A shadow root keeps the page's own CSS off the launcher and the panel.
  const anchor = document.createElement("div");
  anchor.id = "firstline-widget";
  const root = anchor.attachShadow({ mode: "open" });

  const launcher = styled(document.createElement("button"), {
    position: "fixed", bottom: "20px", [side]: "20px", width: "56px", height: "56px", borderRadius: "50%",
    border: "0", padding: "0", margin: "0", background: colour, color: "#fff", cursor: "pointer",
    boxShadow: "0 4px 12px rgba(0,0,0,.25)", zIndex: "2147483000", display: "flex", alignItems: "center",
    justifyContent: "center"
  });
  launcher.type = "button";
  launcher.id = "firstline-launcher";
  const chatIcon = icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2h-7l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
  const closeIcon = icon("M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z");
  launcher.append(chatIcon);

  const panel = styled(document.createElement("div"), {
    position: "fixed", display: "none", zIndex: "2147483001", background: "#fff", overflow: "hidden",
    boxShadow: "0 8px 32px rgba(0,0,0,.3)"
  });
  panel.id = "firstline-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  launcher.setAttribute("aria-controls", panel.id);

  function layout() {
    // A phone gets the whole screen; a wider window a panel above the launcher.
    const full = phone.matches;
    styled(panel, full ? {
      top: "0", bottom: "0", left: "0", right: "0", width: "100%", height: "100%", borderRadius: "0"
    } : {
      top: "auto", bottom: "88px", left: side === "left" ? "20px" : "auto", right: side === "right" ? "20px" : "auto",
      width: "380px", height: "min(640px, calc(100vh - 108px))", borderRadius: "12px"
    });
    launcher.style.display = full && isOpen ? "none" : "flex";
  }

  function label() {
    launcher.setAttribute("aria-expanded", String(isOpen));
    launcher.setAttribute("aria-label", (isOpen ? "Close " : "Open ") + title);
    launcher.replaceChildren(isOpen ? closeIcon : chatIcon);
  }

  function post(message) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(message, origin);
  }

  function focusChat() {
    frame.focus();
    post({ type: "firstline:focus" });
  }

  function build() {
    frame = styled(document.createElement("iframe"), {
      border: "0", width: "100%", height: "100%", display: "block", colorScheme: "normal"
    });
    frame.title = title;
    // The frame may run its scripts on its own origin, submit its form and ask before deleting history; it may not
    // navigate this page or open windows.
    frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms allow-modals");
    frame.addEventListener("load", function () {
      loaded = true;
      if (isOpen) focusChat();
    });
    frame.src = origin + "/embed?host=" + encodeURIComponent(window.location.origin);
    panel.append(frame);
  }

  function open() {
    if (isOpen) return;
    isOpen = true;
    if (!frame) build();
    panel.style.display = "block";
    label();
    layout();
    if (loaded) focusChat();
  }

  function close() {
    if (!isOpen) return;
    isOpen = false;
    panel.style.display = "none";
    label();
    layout();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });
  root.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isOpen) close();
  });
  window.addEventListener("message", function (event) {
    // Only the frame, from Firstline's origin, speaks to this script.
    if (!frame || event.source !== frame.contentWindow || event.origin !== origin || !event.data) return;
    if (event.data.type === "firstline:ready") {
      const who = script.dataset;
      post({ type: "firstline:init", user_id: who.userId || null, user_hash: who.userHash || null,
             email: who.email || null, email_hash: who.emailHash || null, colour: colour });
    }
    if (event.data.type === "firstline:close") close();
  });
  phone.addEventListener("change", layout);

  root.append(launcher, panel);  // Tab goes from the launcher into the open chat
  label();
  layout();
  (document.body || document.documentElement).append(anchor);
  window.FirstlineWidget = { open: open, close: close };
})();
