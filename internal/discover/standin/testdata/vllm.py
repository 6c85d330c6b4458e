# A stand-in for vLLM's OpenAI-compatible server: the endpoints discovery probes.
import os
from fastapi import FastAPI, Request

MODEL = os.environ["STANDIN_MODEL"]
app = FastAPI()


@app.get("/v1/models")
def models():
    return {"object": "list",
            "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "vllm"}]}


@app.get("/health")
def health():
    return {}


@app.post("/v1/chat/completions")
async def chat(request: Request):
    body = await request.json()
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"], "served_by": "vllm",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


# vLLM serves /sleep with VLLM_SERVER_DEV_MODE=1: an admin endpoint that
# oneport's deny list closes, here so a test can tell one that got through.
@app.post("/sleep")
def sleep():
    return {"served_by": "vllm", "slept": True}
