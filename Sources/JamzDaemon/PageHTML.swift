/// The phone page: one self-contained document (no external assets: the car's jamzd is a static
/// binary without resource bundles, and the phones on the hotspot have no internet).
enum PageHTML {
    static let page = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>TrafficJamz</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{background:#c40;padding:.6em 1em;font-weight:bold}
section{padding:.5em 1em;border-bottom:1px solid #333}
h2{font-size:1em;color:#fa6;margin:.3em 0}
button{font-size:1em;padding:.4em .8em;margin:.15em;border-radius:.4em;border:0;background:#444;color:#eee}
button.main{background:#c40}
input{font-size:1.4em;width:7em;padding:.2em;letter-spacing:.2em}
li{margin:.25em 0} ol,ul{padding-left:1.4em}
.cur{color:#fa6;font-weight:bold} .dim{color:#999;font-size:.9em}
#msg{color:#f88;min-height:1.2em}
</style></head><body>
<header>TrafficJamz</header>
<div id="login" hidden><section><h2>Enter the car's PIN</h2>
<form id="loginform"><input id="pin" inputmode="numeric" autocomplete="off" maxlength="64">
<button class="main" id="loginbtn">Open</button></form></section></div>
<div id="app" hidden>
<section><h2>Now playing</h2><div id="now">—</div><div id="pos" class="dim"></div>
<button id="prev">Back</button><button id="toggle" class="main">Play / Pause</button><button id="next">Next</button></section>
<section><h2>DJ</h2><div id="dj">—</div><button id="take">Take control</button></section>
<section><h2>Playlist</h2><ol id="queue"></ol></section>
<section><h2>Cars</h2><ul id="cars"></ul></section>
<section><h2>Join</h2><div id="invitebox" hidden><div class="dim">Another car's passenger scans this code (or types it):</div>
<img id="qr" alt="join code as a QR code" width="240" height="240"><div id="code" class="dim"></div>
<button id="invite">Short code for a car nearby</button></div><div id="short"></div>
<form id="joinform"><input id="joincode" autocomplete="off" placeholder="code" style="width:12em;letter-spacing:0;font-size:1em">
<button id="joinbtn">Join this car to that convoy</button></form></section>
<section><h2>Library</h2><ul id="library"></ul></section>
<section><h2>Add an MP3 from this phone</h2><input type="file" id="file" accept=".mp3,audio/mpeg">
<button id="send">Upload</button> <progress id="prog" max="1" value="0" hidden></progress><div id="upmsg"></div></section>
</div>
<section><div id="msg"></div></section>
<script>
"use strict";
const $ = id => document.getElementById(id);
let st = null, got = 0, ws = null, access = "";
function msg(t){ $("msg").textContent = t || ""; }
function clock(s){ s = Math.max(0, s); const m = Math.floor(s/60); return m + ":" + String(Math.floor(s%60)).padStart(2,"0"); }
function item(text, cls, btn){ const li = document.createElement("li"); li.textContent = text; if (cls) li.className = cls; if (btn) li.appendChild(btn); return li; }
function button(text, f){ const b = document.createElement("button"); b.textContent = text; b.onclick = f; return b; }
function showLogin(){ $("app").hidden = true; $("login").hidden = false; }
async function api(path, body){
  const r = await fetch(path, body === undefined ? {} : {method:"POST", headers:{"Content-Type":"application/json"}, body:JSON.stringify(body)});
  if (r.status === 401) { showLogin(); throw new Error("not logged in"); }
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || j.message || ("HTTP " + r.status));
  return j;
}
async function cmd(name, args){
  try { const j = await api("/api/cmd", {cmd:name, args:args || []}); msg(""); $("msg").dataset.last = j.message; } catch (e) { msg(e.message); }
  refresh();
}
function render(s){
  st = s; got = performance.now();
  if (s.access) access = s.access;   // what opened this session (the live pushes leave it out)
  $("login").hidden = true; $("app").hidden = false;
  const d = s.status.data || {};
  $("now").textContent = d.track ? d.track.title + (d.track.artist ? " — " + d.track.artist : "") + " (" + d.state + ")" : "nothing (" + (d.state || "?") + ")";
  tick();
  const g = s.group.data || {};
  const dj = ((s.cars.data && s.cars.data.members) || []).find(m => m.member === g.dj);
  $("dj").textContent = g.inGroup ? (g.isDJ ? "This car is the DJ" : "DJ: " + (dj ? dj.name : g.dj)) + (g.name ? " · convoy " + g.name : "") : "Not in a convoy: this car plays its own queue";
  $("take").hidden = !g.inGroup || g.isDJ;
  $("invitebox").hidden = !(g.inGroup && g.joinCode);
  // Moving this car to another convoy needs the car's PIN, not the convoy's code.
  $("invite").hidden = access !== "pin"; $("joinform").hidden = access !== "pin";
  if (g.joinCode && $("code").textContent !== g.joinCode) { $("code").textContent = g.joinCode; $("qr").src = "/api/qr.svg?c=" + encodeURIComponent(g.joinCode.slice(0, 11)); }
  const q = $("queue"); q.replaceChildren();
  // The DJ (or this car alone) edits the entries after the one playing: up, remove.
  const entries = s.queue.data || [], cur = entries.findIndex(e => e.current), edits = !g.inGroup || g.isDJ;
  for (const e of entries) {
    const li = item(e.title + (e.artist ? " — " + e.artist : "") + " " + clock(e.duration) + " ", e.current ? "cur" : "");
    if (edits && e.index - 1 > cur) {
      if (e.index - 2 > cur) li.appendChild(button("↑", () => cmd("move", [String(e.index), String(e.index - 1)])));
      li.appendChild(button("✕", () => cmd("remove", [String(e.index)])));
    }
    q.appendChild(li);
  }
  const c = $("cars"); c.replaceChildren();
  const cars = (s.cars.data && s.cars.data.members) || [];
  if (!cars.length) c.appendChild(item("no other cars heard", "dim"));
  for (const m of cars) c.appendChild(item(describeCar(m)));
  const l = $("library"); l.replaceChildren();
  for (const t of s.library) l.appendChild(item(t.title + (t.artist ? " — " + t.artist : "") + " ", "", button("add", () => cmd("add", [t.id]))));
}
function describeCar(m){
  let t = m.name || m.member || "car";
  if (m.distanceM !== undefined && m.distanceM !== null) t += " · " + (m.distanceM >= 1000 ? (m.distanceM/1000).toFixed(1) + " km" : Math.round(m.distanceM) + " m");
  if (m.bearing !== undefined && m.bearing !== null) t += " · " + Math.round(m.bearing) + "° (" + m.position + ")";
  t += " · heard " + Math.round(m.lastHeardSeconds) + " s ago";
  return t;
}
function tick(){
  if (!st) return;
  const d = st.status.data || {};
  if (!d.track) { $("pos").textContent = ""; return; }
  const p = d.position + (d.state === "playing" ? (performance.now() - got) / 1000 : 0);
  $("pos").textContent = clock(Math.min(p, d.track.duration)) + " / " + clock(d.track.duration);
}
setInterval(tick, 500);
async function refresh(){ try { render(await api("/api/state")); } catch (e) { if (e.message !== "not logged in") msg(e.message); } }
function live(){
  if (ws) return;
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/live");
  ws.onmessage = ev => { try { render(JSON.parse(ev.data)); } catch (e) {} };
  ws.onclose = () => { ws = null; setTimeout(() => { if (!$("app").hidden) { refresh(); live(); } }, 3000); };
}
$("loginform").onsubmit = async ev => {
  ev.preventDefault();
  try { await api("/api/login", {pin: $("pin").value}); msg(""); await refresh(); live(); } catch (e) { msg(e.message); }
};
$("send").onclick = () => {
  const f = $("file").files[0], say = t => { $("upmsg").textContent = t; };
  if (!f) { say("choose a file first"); return; }
  if (st && f.size > st.maxUploadMB * 1048576) { say("refused: too large: the limit is " + st.maxUploadMB + " MB"); return; }
  const x = new XMLHttpRequest();
  x.open("POST", "/api/upload");
  x.setRequestHeader("Content-Type", "audio/mpeg");
  $("prog").hidden = false; $("prog").value = 0; say("sending…");
  x.upload.onprogress = e => { if (e.lengthComputable) $("prog").value = e.loaded / e.total; };
  x.onload = () => {
    let j = {}; try { j = JSON.parse(x.responseText); } catch (e) {}
    if (x.status === 401) showLogin();
    say(x.status === 200 ? "added: " + (j.title || j.ok) : "refused: " + (j.error || ("HTTP " + x.status)));
    refresh();
  };
  x.onerror = () => say("upload failed: the connection was closed");
  x.send(f);
};
async function group(args){
  try { const j = await api("/api/cmd", {cmd:"group", args:args}); $("short").textContent = j.message; msg(""); } catch (e) { msg(e.message); }
  refresh();
}
$("invite").onclick = () => group(["invite"]);
$("joinform").onsubmit = ev => { ev.preventDefault(); group(["join", $("joincode").value.trim()]); };
$("toggle").onclick = () => cmd("toggle");
$("next").onclick = () => cmd("next");
$("prev").onclick = () => cmd("prev");
$("take").onclick = () => cmd("take-control");
refresh().then(() => { if (!$("app").hidden) live(); });
</script></body></html>
"""#
}
