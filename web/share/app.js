// The web terminal page: takes the one-time token from the URL fragment,
// removes it from the address bar, and sends it as the first WebSocket message.
"use strict";
(function () {
  const status = document.getElementById("status");
  const token = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname); // the token leaves the address bar and the history
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000 });
  term.open(document.getElementById("term"));
  const box = document.getElementById("term");
  const fit = () => {
    const cell = term._core && term._core._renderService && term._core._renderService.dimensions.css.cell;
    if (!cell || !cell.width || !cell.height) return;
    term.resize(Math.max(10, Math.floor(box.clientWidth / cell.width)), Math.max(5, Math.floor(box.clientHeight / cell.height)));
  };
  fit();
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/share/ws");
  ws.binaryType = "arraybuffer";
  let id = "";
  ws.onopen = () => ws.send(JSON.stringify({ token: token, rows: term.rows, cols: term.cols }));
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") { term.write(new Uint8Array(ev.data)); return; }
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m.type === "session") { id = m.session.id; status.textContent = "session " + id; term.focus(); }
    else if (m.type === "exit") status.textContent = "session " + id + " exited (" + m.exit_code + ")";
    else if (m.type === "detached") status.textContent = "detached from session " + id;
    else if (m.type === "error") status.textContent = "error: " + m.message;
  };
  ws.onclose = () => { if (!/exited|error|detached/.test(status.textContent)) status.textContent = "disconnected"; };
  const enc = new TextEncoder();
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onResize((s) => { if (ws.readyState === 1) ws.send(JSON.stringify({ type: "resize", rows: s.rows, cols: s.cols })); });
  window.addEventListener("resize", fit);
})();
