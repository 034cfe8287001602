// keel: progressive enhancement only; every page works without this file.
// - live timeline: new entries arrive by server-sent events
// - SLA countdowns tick
// - the registration form previews the priority
// - the portal's report form looks for known issues while you type
(function () {
  "use strict";

  function relative(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var text;
    if (minutes >= 48 * 60) text = Math.floor(minutes / 1440) + " d";
    else if (minutes >= 60) text = Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
    else text = minutes + " min";
    return ms >= 0 ? "in " + text : text + " ago";
  }

  function countdowns() {
    var nodes = document.querySelectorAll("[data-countdown]");
    if (!nodes.length) return;
    var tick = function () {
      var now = Date.now();
      nodes.forEach(function (node) {
        var due = Date.parse(node.getAttribute("data-countdown"));
        if (!isNaN(due)) node.textContent = "(" + relative(due - now) + ")";
      });
    };
    tick();
    setInterval(tick, 15000);
  }

  var STATE_KINDS = ["accepted", "put_on_hold", "resumed", "resolved", "closed", "reopened", "cancelled", "assigned", "escalated"];

  function liveTimeline() {
    var list = document.querySelector("ol[data-stream]");
    if (!list || !window.EventSource) return;
    var url = list.getAttribute("data-stream") + "?after=" + encodeURIComponent(list.getAttribute("data-after") || "0");
    var source = new EventSource(url);
    source.addEventListener("entry", function (event) {
      if (document.getElementById("e" + event.lastEventId)) return;
      var holder = document.createElement("ol");
      holder.innerHTML = event.data; // server-rendered, escaped HTML of our own origin
      var item = holder.firstElementChild;
      if (!item) return;
      item.classList.add("fresh");
      list.insertBefore(item, list.firstChild);
      var kind = Array.prototype.find.call(item.classList, function (c) { return c.indexOf("kind-") === 0; });
      if (kind && STATE_KINDS.indexOf(kind.slice(5)) >= 0) {
        var banner = document.getElementById("changed");
        if (banner) banner.hidden = false;
      }
    });
  }

  function priorityPreview() {
    var output = document.getElementById("priority-preview");
    var impact = document.getElementById("impact");
    var urgency = document.getElementById("urgency");
    if (!output || !impact || !urgency) return;
    var matrix;
    try { matrix = JSON.parse(output.getAttribute("data-matrix")); } catch (e) { return; }
    var update = function () {
      var row = matrix[parseInt(impact.value, 10) - 1];
      var value = row && row[parseInt(urgency.value, 10) - 1];
      if (value) output.textContent = value;
    };
    impact.addEventListener("change", update);
    urgency.addEventListener("change", update);
    update();
  }

  function knownIssues() {
    var what = document.querySelector("textarea[data-known]");
    var target = document.getElementById("known-list");
    if (!what || !target) return;
    var service = document.getElementById("service");
    var timer = null;
    var lookup = function () {
      var params = new URLSearchParams({ q: what.value, service: service ? service.value : "" });
      fetch(what.getAttribute("data-known") + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) target.innerHTML = html; })
        .catch(function () {});
    };
    var soon = function () { clearTimeout(timer); timer = setTimeout(lookup, 300); };
    what.addEventListener("input", soon);
    if (service) service.addEventListener("change", soon);
  }

  document.addEventListener("DOMContentLoaded", function () {
    countdowns();
    liveTimeline();
    priorityPreview();
    knownIssues();
  });
})();
