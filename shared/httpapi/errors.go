package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/kilometers-ai/kilometers/shared/backend"
)

// ErrorBody is the JSON shape of every error answer:
// {"error":{"code":"...","message":"..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    backend.Code `json:"code"`
	Message string       `json:"message"`
}

// StatusOf maps an application error code to its HTTP status. It is the one
// place where codes become statuses.
func StatusOf(code backend.Code) int {
	switch code {
	case backend.EINVALID:
		return http.StatusBadRequest
	case backend.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case backend.EFORBIDDEN:
		return http.StatusForbidden
	case backend.ENOTFOUND:
		return http.StatusNotFound
	case backend.EMETHOD:
		return http.StatusMethodNotAllowed
	case backend.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case backend.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case backend.ERATELIMIT:
		return http.StatusTooManyRequests
	case backend.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// retryAfterSeconds is what 429 and 503 answers suggest to clients.
const retryAfterSeconds = "5"

// writeError answers err. Errors without an application code are internal:
// they are logged in full and the caller sees only "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := backend.ErrorCode(err)
	status := StatusOf(code)
	var e *backend.Error
	if !errors.As(err, &e) || status == http.StatusInternalServerError {
		s.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		code, status = backend.EINTERNAL, http.StatusInternalServerError
	} else if status == http.StatusServiceUnavailable {
		s.logger.WarnContext(r.Context(), "service unavailable", "path", r.URL.Path, "err", err)
	}
	switch status {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		retry := retryAfterSeconds
		if e.RetryAfter > 0 {
			retry = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
		}
		w.Header().Set("Retry-After", retry)
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="kilometers"`)
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: backend.ErrorMessage(errOrInternal(err, status))}})
}

func errOrInternal(err error, status int) error {
	if status == http.StatusInternalServerError {
		return errors.New("internal error")
	}
	return err
}

// writeJSON answers v as JSON with status. HTML characters are not
// escaped (the answers are application/json with nosniff, never HTML): a
// payload of "<" would otherwise grow sixfold on the way out, and an
// activity page's byte bound (activity.MaxPageBytes) counts the bytes as
// stored.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var body []byte
	if err := enc.Encode(v); err != nil {
		slog.Default().Error("encode answer", "err", err)
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
	} else {
		body = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
