"""A stand-in for Text Embeddings Inference: /info names the model (model_id); there is no
/v1/models. /v1/embeddings answers in OpenAI's shape, /embed in TEI's own."""
import base64
import os
import struct

from fastapi import FastAPI, Request

MODEL = os.environ.get("MODEL", "BAAI/bge-small-en-v1.5")
app = FastAPI()


@app.get("/info")
async def info():
    return {"model_id": MODEL, "model_sha": None, "model_dtype": "float16", "model_type": {"embedding": {"pooling": "cls"}},
            "max_concurrent_requests": 512, "max_input_length": 512, "version": "1.5.0"}


@app.get("/health")
async def health():
    return {}


@app.post("/embed")
async def embed(request: Request):
    body = await request.json()
    inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
    return [[0.5, 0.25] for _ in inputs]


@app.post("/v1/embeddings")
async def embeddings(request: Request):
    body = await request.json()
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return {"object": "list", "model": MODEL,
            "data": [{"object": "embedding", "index": i, "embedding": encode([0.5, 0.25], body)} for i, _ in enumerate(inputs)],
            "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}}


def encode(vector, body):
    """Floats, or base64 of little-endian float32s when encoding_format is base64 (the SDKs ask for it)."""
    if body.get("encoding_format") == "base64":
        return base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode()
    return vector
