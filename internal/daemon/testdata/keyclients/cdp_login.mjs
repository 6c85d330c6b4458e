// Logs in to oneport in a real Chromium through the DevTools protocol:
// node cdp_login.mjs BROWSER_WS_URL APP_URL KEY.
// Opens APP_URL (oneport sends the browser to its login page), types the key
// into the form, submits it, then waits for the app page, whose script opens a
// WebSocket through oneport and writes the echo into document.title. Prints
// one JSON line: the pages seen, the final title and the session cookie's flags.
import WebSocket from 'ws';

const [browserURL, appURL, key] = process.argv.slice(2);
const ws = new WebSocket(browserURL, { perMessageDeflate: false });
let nextID = 0;
const pending = new Map();
ws.on('message', (data) => {
  const msg = JSON.parse(data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
  }
});
const send = (method, params = {}, sessionId) =>
  new Promise((resolve, reject) => {
    const id = ++nextID;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, sessionId }));
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// poll evaluates expr in the page until it returns a truthy value.
async function poll(session, expr, what) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await send('Runtime.evaluate', { expression: expr, returnByValue: true }, session);
      if (r.result && r.result.value) return r.result.value;
    } catch (e) {
      // the page is navigating; try again
    }
    await sleep(50);
  }
  throw new Error('timed out waiting for ' + what);
}

const result = {};
try {
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Page.enable', {}, sessionId);
  await send('Network.enable', {}, sessionId);
  await send('Page.navigate', { url: appURL }, sessionId);
  result.loginPage = await poll(sessionId,
    `document.readyState === 'complete' && document.getElementById('key') ? location.pathname + location.search : ''`, 'the login page');
  await send('Runtime.evaluate', { expression: `document.getElementById('key').focus()` }, sessionId);
  await send('Input.insertText', { text: key }, sessionId);
  await send('Runtime.evaluate', { expression: `document.getElementById('submit').click()` }, sessionId);
  result.appPage = await poll(sessionId, `document.readyState === 'complete' && !document.getElementById('key') ? location.pathname : ''`, 'the app page');
  result.title = await poll(sessionId, `document.title.startsWith('echo:') || document.title.startsWith('error') ? document.title : ''`, 'the WebSocket echo');
  const { cookies } = await send('Network.getCookies', { urls: [appURL] }, sessionId);
  const c = cookies.find((c) => c.name === 'oneport_session');
  result.cookie = c ? { httpOnly: c.httpOnly, sameSite: c.sameSite, secure: c.secure, path: c.path } : null;
} catch (e) {
  result.error = String(e.message);
}
console.log(JSON.stringify(result));
ws.close();
process.exit(0);
