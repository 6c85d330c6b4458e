"""A stand-in for vLLM's OpenAI-compatible server: /v1/models, /v1/chat/completions
(streamed as server-sent events with a usage chunk and [DONE] when asked), /v1/embeddings.

The served model's name comes from $MODEL. A chat message "hold" waits until GET /release;
GET /holding answers once a request is held. A streamed chat message "slow" sends one chunk
and then waits for the client to leave; GET /disconnected answers once it has.
"""
import asyncio
import json
import base64
import os
import struct
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

MODEL = os.environ.get("MODEL", "llama-3")
app = FastAPI()
held = asyncio.Event()
release = asyncio.Event()
disconnected = asyncio.Event()


@app.get("/v1/models")
async def models():
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": int(time.time()), "owned_by": "vllm"}]}


@app.get("/health")
async def health():
    return {}


@app.get("/holding")
async def holding():
    await asyncio.wait_for(held.wait(), 20)
    return {"held": True}


@app.get("/release")
async def do_release():
    release.set()
    return {"released": True}


@app.get("/disconnected")
async def was_disconnected():
    await asyncio.wait_for(disconnected.wait(), 20)
    return {"disconnected": True}


def chunk(content=None, usage=None):
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": []}
    if content is not None:
        c["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    if usage is not None:
        c["usage"] = usage
    return "data: " + json.dumps(c) + "\n\n"


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    if body.get("model") != MODEL:
        return JSONResponse(status_code=404, content={"object": "error", "message": f"The model `{body.get('model')}` does not exist.", "type": "NotFoundError", "code": 404})
    text = body["messages"][-1]["content"]
    if text == "hold":
        held.set()
        await asyncio.wait_for(release.wait(), 20)
    words = ["Hello", " from", " " + MODEL]
    usage = {"prompt_tokens": 9, "completion_tokens": len(words), "total_tokens": 9 + len(words)}
    if not body.get("stream"):
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
                "usage": usage}

    async def events():
        if text == "slow":
            # Starlette cancels a streaming response whose client left, or
            # is_disconnected says so first: either way, it is seen here.
            try:
                yield chunk("first")
                while not await request.is_disconnected():
                    await asyncio.sleep(0.01)
            finally:
                disconnected.set()
            return
        for w in words:
            yield chunk(w)
        if (body.get("stream_options") or {}).get("include_usage"):
            yield chunk(usage=usage)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/v1/embeddings")
async def embeddings(request: Request):
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": MODEL,
            "data": [{"object": "embedding", "index": i, "embedding": encode([0.1, 0.2, 0.3], body)} for i, _ in enumerate(inputs)],
            "usage": {"prompt_tokens": 2 * len(inputs), "total_tokens": 2 * len(inputs)}}


def encode(vector, body):
    """Floats, or base64 of little-endian float32s when encoding_format is base64 (the SDKs ask for it)."""
    if body.get("encoding_format") == "base64":
        return base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode()
    return vector
