# A FastAPI app for the real-client tests: uvicorn serves it on a socket
# the test passes in (uvicorn --fd 3).
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/hello")
def hello(request: Request):
    return {"hello": "from fastapi", "path": request.url.path}
