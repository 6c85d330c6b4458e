"""A stand-in for Ollama: its models are listed at /api/tags (this stand-in leaves out the
/v1/models that Ollama also serves, so the gateway's /api/tags probe is what finds them), and
/v1/chat/completions answers in OpenAI's shape."""
import os

from fastapi import FastAPI, Request

MODEL = os.environ.get("MODEL", "qwen2.5:0.5b")
app = FastAPI()


@app.get("/api/tags")
async def tags():
    return {"models": [{"name": MODEL, "model": MODEL, "modified_at": "2024-01-01T00:00:00Z", "size": 397821319,
                        "digest": "a" * 64, "details": {"family": "qwen2", "parameter_size": "494M"}}]}


@app.get("/")
async def root():
    return "Ollama is running"


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    return {"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": MODEL, "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi from ollama"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}
