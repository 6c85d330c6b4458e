// Calls oneport with the official OpenAI SDK: node openai_client.mjs BASE_URL KEY N.
// Lists models, then makes N chat completions; prints one JSON line of the results,
// with the SDK's error class for each failure. Retries are off so a 429 shows.
import OpenAI from 'openai';

const [baseURL, apiKey, n] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });
const out = { models: null, chats: [] };
const failure = (e) => ({ ok: false, cls: e.constructor.name, status: e.status ?? null, message: String(e.message) });
try {
  const page = await client.models.list();
  out.models = { ok: true, ids: page.data.map((m) => m.id) };
} catch (e) {
  out.models = failure(e);
}
for (let i = 0; i < Number(n); i++) {
  try {
    const r = await client.chat.completions.create({ model: 'test-model', messages: [{ role: 'user', content: 'hi' }] });
    out.chats.push({ ok: true, content: r.choices[0].message.content });
  } catch (e) {
    out.chats.push(failure(e));
  }
}
console.log(JSON.stringify(out));
