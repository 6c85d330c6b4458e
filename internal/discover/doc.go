// Package discover finds the servers listening on this box and tells what
// each one is: an OpenAI-compatible model server (vLLM, SGLang, llama.cpp),
// Text Embeddings Inference, Ollama, Triton, or an app such as Jupyter,
// Gradio, ComfyUI or TensorBoard.
//
// Listening TCP sockets come from the kernel through netlink sock_diag
// (Linux only; elsewhere Listeners returns an error wrapping
// errors.ErrUnsupported), their owners from /proc. Probing is polite: GET
// requests only, to loopback addresses only, each bounded by a short
// timeout, a bounded number at once. A server that hangs or answers with
// garbage is classed KindUnknown within the probe timeout; nothing it does
// stalls a scan.
//
// A Scan returns an immutable Snapshot. A Watcher scans again at an
// interval and hands each new Snapshot to its owner, who turns it into
// routes (Routes) and gives it to whatever else needs to know the models
// served here.
package discover
