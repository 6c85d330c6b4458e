# A stand-in for Text Embeddings Inference: /info names the model; there is no /v1/models.
import os
from fastapi import FastAPI

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
