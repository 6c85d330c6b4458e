// Package gateway is oneport's model-aware gateway: one OpenAI-compatible
// base URL in front of several model servers. A request to an endpoint
// such as /v1/chat/completions or /v1/embeddings goes to the upstream
// that serves the request's "model" (read from the JSON body by a
// streaming scan that re-encodes nothing, from the "model" field of a
// multipart form on /v1/audio/*, or from the X-Model header); GET
// /v1/models lists every upstream's models and the configured aliases.
//
// Models come from configuration (Model) and from the upstreams
// themselves, asked at Start and periodically (GET /v1/models, TEI's
// /info, Ollama's /api/tags). Replicas of a model share its requests by
// fewest outstanding; an upstream with MaxConcurrent set takes that many
// at once and queues the rest first in, first out (429 when the queue is
// full, 503 when a wait times out, both with Retry-After). Streamed
// responses pass as they come; usage (tokens, time to first token) is
// read from them on the way and recorded in Metrics and the access log.
//
// The package is HTTP only: a Gateway is the Serve handler of an
// httproute.Route.
package gateway
