// Keeps the dashboard live: applies /events (Server-Sent Events) to the server-rendered page.
// Values arrive already formatted by the hub; this file only places text, never HTML.
(function () {
  "use strict";

  var table = document.getElementById("things");
  if (!table || !window.EventSource) return;
  var tbody = table.tBodies[0];
  var rowTemplate = document.getElementById("thing-row");
  var live = document.getElementById("live");
  // Seconds to add to this browser's clock to get the hub's.
  var skew = parseFloat(table.dataset.now) - Date.now() / 1000;

  var rows = new Map();
  tbody.querySelectorAll("tr[data-thing]").forEach(function (tr) {
    rows.set(tr.dataset.thing, tr);
  });

  function setLive(state, text) {
    live.dataset.state = state;
    live.querySelector(".live-text").textContent = text;
  }

  // Mirrors hub.web.display.age_text.
  function ageText(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    if (s < 120) return s + " s ago";
    if (s < 7200) return Math.floor(s / 60) + " min ago";
    if (s < 172800) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function tickAges() {
    var now = Date.now() / 1000 + skew;
    tbody.querySelectorAll("time.seen").forEach(function (t) {
      var epoch = parseFloat(t.dataset.epoch);
      if (!isNaN(epoch)) t.textContent = ageText(now - epoch);
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function rowFor(thing) {
    var tr = rows.get(thing.id);
    if (tr) return tr;
    tr = rowTemplate.content.firstElementChild.cloneNode(true);
    tr.dataset.thing = thing.id;
    tr.querySelector(".thing-id").textContent = thing.id;
    tr.querySelector(".source").textContent = thing.source;
    // Keep rows sorted by id, as the server renders them.
    var next = null;
    rows.forEach(function (other, id) {
      if (id > thing.id && (!next || id < next.dataset.thing)) next = other;
    });
    tbody.insertBefore(tr, next);
    rows.set(thing.id, tr);
    table.hidden = false;
    document.getElementById("no-things").hidden = true;
    return tr;
  }

  function applyThing(thing) {
    var tr = rowFor(thing);
    var badge = tr.querySelector(".badge");
    badge.dataset.status = thing.status;
    badge.textContent = thing.status;
    var list = tr.querySelector("ul.values");
    list.replaceChildren.apply(list, thing.values.map(function (v) {
      var li = el("li", v.alarm ? "alarm" : "");
      li.dataset.name = v.name;
      li.append(el("span", "name", v.label), " ", el("span", "value", v.text));
      return li;
    }));
    var seen = tr.querySelector("time.seen");
    seen.dataset.epoch = thing.last_seen;
    seen.setAttribute("datetime", thing.last_seen_iso);
    seen.textContent = thing.last_seen_text;
    tr.classList.remove("changed");
    void tr.offsetWidth; // restart the highlight animation
    tr.classList.add("changed");
  }

  function applyScans(scans) {
    var scanTable = document.getElementById("scans");
    scanTable.tBodies[0].replaceChildren.apply(scanTable.tBodies[0], scans.map(function (s) {
      var tr = el("tr");
      var code = el("code", "", s.tag);
      var when = el("time", "", s.time_text);
      when.setAttribute("datetime", s.time_iso);
      [["Reader", s.reader], ["Tag", code], ["Time", when]].forEach(function (cell) {
        var td = el("td");
        td.dataset.label = cell[0];
        td.append(cell[1]);
        tr.append(td);
      });
      return tr;
    }));
    scanTable.hidden = scans.length === 0;
    document.getElementById("no-scans").hidden = scans.length > 0;
  }

  // Mirrors the "Active alerts" list of dashboard.html.
  function applyAlerts(alerts) {
    var list = document.getElementById("alerts");
    if (!list) return;
    list.replaceChildren.apply(list, alerts.map(function (a) {
      var li = el("li", "alert");
      li.dataset.alert = a.id;
      li.dataset.severity = a.severity;
      li.dataset.state = a.state;
      var badge = el("span", "badge severity", a.severity);
      badge.dataset.severity = a.severity;
      var state = a.state + (a.state === "claimed" && a.claimed_by ? " by " + a.claimed_by : "");
      var head = el("p", "alert-head");
      head.append(badge, " ", el("strong", "alert-title", a.title), " ", el("span", "alert-state", state));
      li.append(head, el("p", "alert-body", a.body), el("p", "muted alert-since", "since " + a.opened_text));
      return li;
    }));
    list.hidden = alerts.length === 0;
    document.getElementById("no-alerts").hidden = alerts.length > 0;
  }

  function applyStatus(status) {
    document.querySelectorAll("#status-line dd[data-key]").forEach(function (dd) {
      if (dd.dataset.key in status) dd.textContent = status[dd.dataset.key];
    });
  }

  function on(source, name, apply) {
    source.addEventListener(name, function (e) {
      try {
        apply(JSON.parse(e.data));
      } catch (err) {
        if (window.console) console.error("hub: bad " + name + " event", err);
      }
    });
  }

  var source = new EventSource("/events?since=" + encodeURIComponent(table.dataset.version));
  setLive("connecting", "Connecting…");
  source.onopen = function () { setLive("on", "Live"); };
  source.onerror = function () { setLive("off", "Reconnecting…"); };
  on(source, "things", function (data) {
    skew = data.now - Date.now() / 1000;
    table.dataset.version = data.version;
    data.things.forEach(applyThing);
  });
  on(source, "scans", function (data) { applyScans(data.scans); });
  on(source, "status", applyStatus);
  on(source, "alerts", function (data) { applyAlerts(data.alerts); });
  setInterval(tickAges, 1000);
})();
