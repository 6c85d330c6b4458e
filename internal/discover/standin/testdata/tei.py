# A stand-in for Text Embeddings Inference: /info names the model; there is no /v1/models.
import os
from fastapi import FastAPI, Request

MODEL = os.environ["STANDIN_MODEL"]
app = FastAPI()


@app.get("/info")
def info():
    return {"model_id": MODEL, "model_sha": None, "model_dtype": "float16",
            "model_type": {"embedding": {"pooling": "cls"}}, "max_concurrent_requests": 512,
            "version": "1.5.0"}


@app.get("/health")
def health():
    return {}


@app.post("/v1/embeddings")
async def embeddings(request: Request):
    body = await request.json()
    return {"object": "list", "model": body["model"], "served_by": "tei",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0, 1.0]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}
