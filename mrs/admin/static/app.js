// Live dashboard: replace the table of connected clients with each
// server-sent status event.  Text goes in with textContent only.
"use strict";
(function () {
  var table = document.getElementById("sessions");
  if (!table || !window.EventSource) { return; }
  var headers = Array.prototype.map.call(table.querySelectorAll("thead th"),
    function (th) { return th.textContent; });
  var state = document.getElementById("live-state");

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    if (m) { return m + "m " + s + "s"; }
    return s + "s";
  }
  function rate(bps) {
    if (bps >= 1e6) { return (bps / 1e6).toFixed(1) + " Mbit/s"; }
    if (bps >= 1e3) { return Math.round(bps / 1e3) + " kbit/s"; }
    return Math.round(bps) + " bit/s";
  }
  function rates(map) {
    return Object.keys(map).map(function (k) { return k + " " + rate(map[k]); }).join(", ");
  }
  function link(s) {
    if (!s.encrypted) { return "plaintext"; }
    var text = [s.tlsVersion, s.cipher].filter(Boolean).join(" ");
    return text.indexOf("TLS") === 0 ? text : ("TLS " + text).trim();
  }
  function audience(s) {
    if (s.role !== "monitor") { return String(s.subscribers); }
    var watched = s.subscriptions.join(", ") || "nothing";
    if (s.droppedFrames) { watched += " (" + s.droppedFrames + " frames dropped)"; }
    return "watches " + watched;
  }
  function cells(s) {
    var where = "";
    if (s.lastLocation) {
      where = s.lastLocation.lat.toFixed(5) + ", " + s.lastLocation.lon.toFixed(5);
      if (s.lastLocationAge !== null) { where += " (" + duration(s.lastLocationAge) + " ago)"; }
    }
    return [s.role, s.name, s.address, link(s),
            s.connectedSeconds === null ? "" : duration(s.connectedSeconds),
            rates(s.bitrateIn), rates(s.bitrateOut), audience(s), where];
  }
  function render(status) {
    var body = document.createElement("tbody");
    status.sessions.forEach(function (s) {
      var tr = document.createElement("tr");
      cells(s).forEach(function (text, i) {
        var td = document.createElement("td");
        td.setAttribute("data-label", headers[i] || "");
        if (i === 3) {
          var span = document.createElement("span");
          span.className = s.encrypted ? "ok" : "warn";
          span.textContent = text;
          td.appendChild(span);
        } else {
          td.textContent = text;
        }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    if (!status.sessions.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = headers.length; td.className = "empty";
      td.textContent = "No devices or monitors are connected.";
      tr.appendChild(td); body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    document.getElementById("uptime").textContent = duration(status.uptimeSeconds);
    document.getElementById("devices-online").textContent = status.devicesOnline;
    document.getElementById("monitors-online").textContent = status.monitorsOnline;
    if (state) { state.textContent = "Live, updated " + new Date().toLocaleTimeString() + "."; }
  }
  var source = new EventSource("/admin/events");
  source.addEventListener("status", function (event) { render(JSON.parse(event.data)); });
  source.addEventListener("ended", function () { source.close(); window.location.reload(); });
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      // The server refused the stream (the session ended): reloading
      // shows the login page or a fresh dashboard.
      window.setTimeout(function () { window.location.reload(); }, 5000);
    }
    if (state) { state.textContent = "Live updates paused; retrying."; }
  };
}());
