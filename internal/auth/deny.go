package auth

import (
	"net/http"
	"strings"
)

// denyRule closes one admin endpoint of a model server.
type denyRule struct {
	// method is the HTTP method it applies to; "" means any.
	method string
	// path is matched segment by segment against the path the upstream
	// receives; "*" matches one segment, a trailing "/**" any rest.
	path string
	// why is the one-line reason a client reads.
	why string
}

// denyList is the built-in list of model servers' control, profiling,
// weight-update, cache-reset and model-store endpoints: oneport answers
// them with 403 unless the route sets allow_admin or the key has the
// admin scope. It applies with no keys configured too: these servers
// leave them open, and on a box with one public port oneport is their
// only door. One table, one source per entry.
var denyList = []denyRule{
	// vLLM: docs/usage/security.md ("--api-key covers only /v1"); the
	// endpoints of vllm/entrypoints/openai/api_server.py and
	// vllm/entrypoints/serve/* served with VLLM_SERVER_DEV_MODE=1 or
	// --enable-* flags.
	{"", "/sleep", "vLLM: puts the engine to sleep, freeing its GPU memory"},
	{"", "/wake_up", "vLLM: wakes a sleeping engine"},
	{"", "/collective_rpc", "vLLM: runs a method on every worker"},
	{"", "/reset_prefix_cache", "vLLM: drops the prefix cache"},
	{"", "/reset_mm_cache", "vLLM: drops the multimodal cache"},
	{"", "/scale_elastic_ep", "vLLM: rescales expert parallelism"},
	{"", "/pause", "vLLM: pauses generation"},
	{"", "/resume", "vLLM: resumes generation"},
	{"", "/start_profile", "vLLM and SGLang: starts the profiler"},
	{"", "/stop_profile", "vLLM and SGLang: stops the profiler"},
	{"", "/v1/load_lora_adapter", "vLLM: loads a LoRA adapter from a path (VLLM_ALLOW_RUNTIME_LORA_UPDATING)"},
	{"", "/v1/unload_lora_adapter", "vLLM: unloads a LoRA adapter"},
	{"", "/abort_requests", "vLLM: aborts other clients' requests"},
	// vLLM's weight transfer for RL trainers (vllm/entrypoints/serve/rlhf).
	{"", "/init_weight_transfer_engine", "vLLM: joins a weight-transfer group"},
	{"", "/start_weight_update", "vLLM: starts replacing the model's weights"},
	{"", "/finish_weight_update", "vLLM: finishes replacing the model's weights"},
	{"", "/update_weight_version", "vLLM and SGLang: changes the weights' version"},
	// SGLang: python/sglang/srt/entrypoints/http_server.py.
	{"", "/flush_cache", "SGLang: drops the radix cache"},
	{"", "/update_weights_from_disk", "SGLang: replaces the model's weights"},
	{"", "/update_weights_from_tensor", "SGLang: replaces the model's weights"},
	{"", "/update_weights_from_distributed", "SGLang: replaces the model's weights"},
	{"", "/init_weights_update_group", "SGLang: joins a weight-update process group"},
	{"", "/destroy_weights_update_group", "SGLang: leaves a weight-update process group"},
	{"", "/update_weights_from_ipc", "SGLang: replaces the model's weights"},
	{"", "/release_memory_occupation", "SGLang: releases GPU memory"},
	{"", "/resume_memory_occupation", "SGLang: takes GPU memory back"},
	{"", "/abort_request", "SGLang and lmdeploy: aborts other clients' requests"},
	{"", "/configure_logging", "SGLang: changes request logging (may log prompts)"},
	{"", "/load_lora_adapter", "SGLang: loads a LoRA adapter from a path"},
	{"", "/unload_lora_adapter", "SGLang: unloads a LoRA adapter"},
	// llama.cpp: tools/server/README.md (POST /slots/{id}?action=save|restore|erase,
	// POST /props, POST /lora-adapters).
	{http.MethodPost, "/slots/*", "llama.cpp: saves, restores or erases a slot's cache on disk"},
	{http.MethodPost, "/props", "llama.cpp: changes server properties"},
	{http.MethodPost, "/lora-adapters", "llama.cpp: changes LoRA adapter scales"},
	// Ollama: docs/api.md (no authentication at all).
	{"", "/api/pull", "Ollama: downloads a model"},
	{"", "/api/push", "Ollama: uploads a model"},
	{"", "/api/delete", "Ollama: deletes a model"},
	{"", "/api/create", "Ollama: creates a model"},
	{"", "/api/copy", "Ollama: copies a model"},
	{"", "/api/blobs/*", "Ollama: writes to the model store"},
	// Triton: docs/protocol/extension_model_repository.md, extension_logging.md,
	// extension_trace.md, extension_shared_memory.md.
	{"", "/v2/repository/index", "Triton: lists the model repository"},
	{"", "/v2/repository/models/*/load", "Triton: loads a model"},
	{"", "/v2/repository/models/*/unload", "Triton: unloads a model"},
	{http.MethodPost, "/v2/logging", "Triton: changes logging settings"},
	{http.MethodPost, "/v2/trace/setting", "Triton: changes trace settings"},
	{http.MethodPost, "/v2/models/*/trace/setting", "Triton: changes trace settings"},
	{"", "/v2/systemsharedmemory/**", "Triton: registers shared memory"},
	{"", "/v2/cudasharedmemory/**", "Triton: registers CUDA shared memory"},
	// lmdeploy: lmdeploy/serve/openai/api_server.py.
	{"", "/wakeup", "lmdeploy: wakes a sleeping engine"},
	{"", "/update_weights", "lmdeploy and vLLM: replace the model's weights"},
	// TGI (text-generation-inference router): no control endpoints beyond
	// inference, /info, /health and /metrics; nothing to close.
}

// denyIndex holds denyList's rules by their path's first segment (always
// a literal), so most requests are checked with one map lookup.
var denyIndex = func() map[string][]denyRule {
	m := map[string][]denyRule{}
	for _, d := range denyList {
		first := firstSegment(d.path)
		m[first] = append(m[first], d)
	}
	return m
}()

func firstSegment(p string) string {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// Denied returns why method and path (as the upstream receives it) name
// an admin endpoint of the deny list, or "".
func Denied(method, path string) string {
	for _, d := range denyIndex[firstSegment(path)] {
		if (d.method == "" || d.method == method) && matchSegments(d.path, path) {
			return d.why
		}
	}
	return ""
}

// matchSegments matches path against pattern segment by segment; a
// trailing slash on path is ignored.
func matchSegments(pattern, path string) bool {
	path = strings.TrimSuffix(path, "/")
	for {
		pp, prest, pmore := strings.Cut(strings.TrimPrefix(pattern, "/"), "/")
		if pp == "**" {
			return path != ""
		}
		sp, srest, smore := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if pp != "*" && pp != sp || pp == "*" && sp == "" {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, path = "/"+prest, "/"+srest
	}
}
