package discover

import (
	"encoding/json"
	"strings"
)

// maxModels bounds how many model names one server may report: a list
// longer than this is cut, so a misbehaving server cannot grow the route
// table without bound.
const maxModels = 64

// ParseOpenAIModels reads an OpenAI-style model list
// ({"object":"list","data":[{"id":...}]}, GET /v1/models) and returns the
// model ids in order, without empty ones or duplicates. ok is false when b
// is not such a list.
func ParseOpenAIModels(b []byte) (models []string, ok bool) {
	var v struct {
		Data *[]struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(b, &v) != nil || v.Data == nil {
		return nil, false
	}
	for _, m := range *v.Data {
		models = addModel(models, m.ID)
	}
	return models, true
}

// ParseOllamaTags reads Ollama's model list ({"models":[{"name":...}]},
// GET /api/tags). ok is false when b is not such a list.
func ParseOllamaTags(b []byte) (models []string, ok bool) {
	var v struct {
		Models *[]struct {
			Name  string `json:"name"`
			Model string `json:"model"`
		} `json:"models"`
	}
	if json.Unmarshal(b, &v) != nil || v.Models == nil {
		return nil, false
	}
	for _, m := range *v.Models {
		models = addModel(models, cmpOr(m.Name, m.Model))
	}
	return models, true
}

// ParseInfo reads the /info document of Text Embeddings Inference or Text
// Generation Inference: both carry model_id; only TEI has model_type. ok
// is false without a model_id.
func ParseInfo(b []byte) (model string, kind Kind, ok bool) {
	var v struct {
		ModelID   string          `json:"model_id"`
		ModelType json.RawMessage `json:"model_type"`
	}
	if json.Unmarshal(b, &v) != nil || strings.TrimSpace(v.ModelID) == "" {
		return "", "", false
	}
	kind = KindTGI
	if len(v.ModelType) > 0 && string(v.ModelType) != "null" {
		kind = KindTEI
	}
	return strings.TrimSpace(v.ModelID), kind, true
}

// jsonKeys reports whether b is a JSON object holding every one of keys.
func jsonKeys(b []byte, keys ...string) bool {
	var v map[string]json.RawMessage
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	for _, k := range keys {
		if _, ok := v[k]; !ok {
			return false
		}
	}
	return true
}

func addModel(models []string, m string) []string {
	m = strings.TrimSpace(m)
	if m == "" || len(models) >= maxModels || len(m) > 256 {
		return models
	}
	for _, x := range models {
		if x == m {
			return models
		}
	}
	return append(models, m)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
