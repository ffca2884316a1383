// The escalation desk: live countdowns, local times, and the consistency flag beside the decision form.
(function () {
  "use strict";
  function left(seconds) {
    if (seconds <= 0) return "past its deadline";
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60);
    return (d ? d + " d " : "") + (d || h ? h + " h " : "") + (d ? "" : m + " min ") + "left";
  }
  // Counted from what the server said was left when it drew the page, so a browser clock that is wrong (or a
  // server on another time zone) cannot make a deadline look passed or far away.
  const loaded = performance.now();
  function tick() {
    const elapsed = (performance.now() - loaded) / 1000;
    document.querySelectorAll("[data-remaining]").forEach(function (el) {
      el.textContent = left(Number(el.dataset.remaining) - elapsed);
    });
  }
  document.querySelectorAll("time[data-at]").forEach(function (el) {
    const at = new Date(Number(el.dataset.at) * 1000);
    el.dateTime = at.toISOString();
    if (/^\d+$/.test(el.textContent.trim())) el.textContent = at.toLocaleString();
  });
  tick();
  setInterval(tick, 30000);
  const form = document.getElementById("decision");
  if (form) {
    const flag = document.getElementById("consistency"), reason = document.getElementById("reason");
    form.addEventListener("change", function () {
      const chosen = form.querySelector("input[name=outcome]:checked");
      if (!chosen) return;
      const against = chosen.dataset.against;
      flag.hidden = !against;
      flag.textContent = against ? "This goes against " + against + ". Say why in the reason." : "";
      reason.required = Boolean(against) || chosen.value === "rejected";
    });
    form.dispatchEvent(new Event("change"));
  }
})();
