# A stand-in for Ollama: models at /api/tags (and, as Ollama does, /v1/models).
import os
from fastapi import FastAPI

MODELS = os.environ["STANDIN_MODEL"].split(",")
app = FastAPI()


@app.get("/")
def root():
    return "Ollama is running"


@app.get("/api/tags")
def tags():
    return {"models": [{"name": m, "model": m, "size": 1, "digest": "0"} for m in MODELS]}


@app.get("/v1/models")
def models():
    return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "library"} for m in MODELS]}


# Ollama's model download, open to anyone who reaches the port: an admin
# endpoint that oneport's deny list closes.
@app.post("/api/pull")
def pull():
    return {"served_by": "ollama", "status": "success"}
