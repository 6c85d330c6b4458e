package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// apiError is OpenAI's error body: {"error":{"message","type","param","code"}}.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// writeError answers with OpenAI's error JSON; retry, if positive, is sent
// as Retry-After (whole seconds, at least 1) and retry-after-ms.
func writeError(w http.ResponseWriter, status int, typ, code, param, msg string, retry time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(max(1, int((retry+time.Second-1)/time.Second))))
		h.Set("Retry-After-Ms", strconv.FormatInt(retry.Milliseconds(), 10))
	}
	w.WriteHeader(status)
	e := apiError{Error: apiErrorBody{Message: msg, Type: typ, Code: code}}
	if param != "" {
		e.Error.Param = &param
	}
	json.NewEncoder(w).Encode(e)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
