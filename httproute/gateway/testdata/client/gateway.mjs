// The official OpenAI SDK for Node against oneport's model gateway. Each check prints
// "ok NAME" or throws; the Go test runs this and reads the output.
// Environment: BASE_URL (the gateway, ending in /v1), VLLM_URL (the llama-3 stand-in),
// HOLD_URL (the stand-in behind max_concurrent = 1 with no queue).
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: "sk-unused", maxRetries: 0, timeout: 20000 });

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function check(name, f) {
  await f();
  console.log("ok " + name);
}

await check("models", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of ["llama-3", "gpt-4o-mini", "BAAI/bge-small-en-v1.5", "qwen2.5:0.5b", "slow-model"]) {
    assert(ids.includes(want), `models ${ids} lack ${want}`);
  }
});

await check("chat-stream-alias-usage", async () => {
  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "", usage = null;
  for await (const c of stream) {
    if (c.choices.length) text += c.choices[0].delta.content ?? "";
    if (c.usage) usage = c.usage;
  }
  assert(text === "Hello from llama-3", `text ${JSON.stringify(text)}`);
  assert(usage && usage.completion_tokens === 3, `usage ${JSON.stringify(usage)}`);
});

await check("embeddings-tei", async () => {
  const r = await client.embeddings.create({ model: "BAAI/bge-small-en-v1.5", input: ["a", "b"] });
  assert(r.data.length === 2 && r.data[0].embedding.length === 2, JSON.stringify(r));
});

await check("chat-ollama", async () => {
  const r = await client.chat.completions.create({ model: "qwen2.5:0.5b", messages: [{ role: "user", content: "hi" }] });
  assert(r.choices[0].message.content === "hi from ollama", JSON.stringify(r));
});

await check("unknown-model", async () => {
  try {
    await client.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "hi" }] });
  } catch (e) {
    assert(e instanceof OpenAI.NotFoundError, `got ${e}`);
    assert(e.code === "model_not_found", `code ${e.code}`);
    return;
  }
  throw new Error("no error for an unknown model");
});

await check("queue-full", async () => {
  const held = client.chat.completions.create({ model: "slow-model", messages: [{ role: "user", content: "hold" }] });
  await fetch(process.env.HOLD_URL + "/holding");
  try {
    await client.chat.completions.create({ model: "slow-model", messages: [{ role: "user", content: "hi" }] });
    throw new Error("no error while the upstream is full");
  } catch (e) {
    assert(e instanceof OpenAI.RateLimitError, `got ${e}`);
    const h = e.headers ?? {};
    assert(typeof h.get === "function" ? h.get("retry-after") : h["retry-after"], "no Retry-After");
  }
  await fetch(process.env.HOLD_URL + "/release");
  const r = await held;
  assert(r.choices[0].message.content === "Hello from slow-model", JSON.stringify(r));
});

await check("client-cancel", async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: "llama-3", messages: [{ role: "user", content: "slow" }], stream: true },
    { signal: ac.signal },
  );
  try {
    for await (const c of stream) {
      assert(c.choices[0].delta.content === "first", JSON.stringify(c));
      ac.abort();
    }
  } catch (e) {
    assert(e.name === "AbortError" || e instanceof OpenAI.APIUserAbortError, `got ${e}`);
  }
  const r = await fetch(process.env.VLLM_URL + "/disconnected");
  assert(r.ok, "the model server never saw the client leave");
});
