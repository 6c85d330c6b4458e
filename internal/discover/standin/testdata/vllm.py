# A stand-in for vLLM's OpenAI-compatible server: the endpoints discovery probes.
import os
from fastapi import FastAPI

MODEL = os.environ["STANDIN_MODEL"]
app = FastAPI()


@app.get("/v1/models")
def models():
    return {"object": "list",
            "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "vllm"}]}


@app.get("/health")
def health():
    return {}
