// Live updates for oneport's status page: polls status.json every 2 s and
// redraws the tables. The page works without it; it only keeps it fresh.
"use strict";
(function () {
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) {
      var td = el("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    });
    return tr;
  }
  function frag(parts) {
    var f = document.createDocumentFragment();
    parts.forEach(function (p) { f.appendChild(typeof p === "string" ? document.createTextNode(p) : p); });
    return f;
  }
  function fill(id, rows, empty) {
    var tb = document.getElementById(id);
    if (!tb) return;
    tb.replaceChildren();
    if (rows.length === 0) {
      var tr = el("tr"), td = el("td", "muted", empty);
      td.colSpan = 5;
      tr.appendChild(td);
      tb.appendChild(tr);
      return;
    }
    rows.forEach(function (r) { tb.appendChild(r); });
  }
  function text(id, v) {
    var e = document.getElementById(id);
    if (e && e.textContent !== String(v)) e.textContent = String(v);
  }
  function render(f) {
    text("listen", f.listen);
    text("ssh", f.ssh);
    text("tls", f.tls);
    text("updated", new Date(f.time).toISOString().replace("T", " ").replace(/\..*/, " UTC"));
    fill("routes", (f.routes || []).map(function (r) {
      var ups = frag([]);
      (r.upstreams || []).forEach(function (u) {
        ups.appendChild(el("span", "badge " + u.state, u.state));
        ups.appendChild(el("span", "mono", u.address));
        if (u.active) ups.appendChild(el("span", "muted", " (" + u.active + " in flight)"));
        ups.appendChild(el("br"));
      });
      var name = frag([r.name]);
      if (r.discovered) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", "badge disc", "discovered")); }
      return row([el("span", "mono", r.host || "*"), el("span", "mono", r.path), ups, name]);
    }), "no routes: HTTP answers with a welcome page");
    fill("models", (f.models || []).map(function (m) {
      var s = frag([el("span", "mono", m.servers.join(", "))]);
      if (m.replicas) { s.appendChild(document.createTextNode(" ")); s.appendChild(el("span", "badge disc", m.servers.length + " replicas")); }
      return row([el("span", "mono", m.name), m.kind, s, el("span", "mono", m.path || "")]);
    }), f.discovering ? "no model servers found" : "discovery is off (discover = true turns it on)");
    fill("servers", (f.servers || []).map(function (s) {
      return row([el("span", "mono", s.listen), s.kind, el("span", "mono", (s.models || []).join(", ")),
        el("span", "mono", (s.process || "") + (s.pid ? "[" + s.pid + "]" : "")), el("span", "muted", s.detail || "")]);
    }), f.discovering ? "none found yet" : "discovery is off");
    var conns = Object.keys(f.connections || {}).sort().filter(function (p) { return f.connections[p]; });
    fill("conns", conns.map(function (p) { return row([p, String(f.connections[p])]); }), "none");
    fill("certs", (f.certs || []).map(function (c) {
      return row([el("span", "mono", c.names), frag([c.issuer + " ", el("span", "muted", "(" + c.source + ")")]), c.days_left + " days"]);
    }), "none yet");
    var rq = f.requests || { buckets: [] };
    text("req-minute", rq.last_minute);
    text("req-total", rq.total);
    var bars = document.getElementById("bars");
    if (bars) {
      var max = Math.max.apply(null, [0].concat(rq.buckets));
      bars.replaceChildren();
      rq.buckets.forEach(function (n) {
        var d = el("div");
        d.style.height = (max && n ? 2 + Math.floor(98 * n / max) : 0) + "%";
        bars.appendChild(d);
      });
    }
  }
  function poll() {
    fetch("status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("status " + r.status); return r.json(); })
      .then(render)
      .catch(function () { /* oneport restarting: keep the last view, try again */ })
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
